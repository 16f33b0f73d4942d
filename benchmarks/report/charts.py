"""The charts of benchmarks.md, each from the run of the placement it is judged on.

Sized for the page: 784 px wide at 80 dpi, text at 11-13 pt so it reads at that size. A missing
result is a gap (no bar, no point), never a 0 bar; error bars span the rounds (min to max).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from benchmarks.catalogue import (
    BULK,
    LATENCY,
    LATENCY_PLACEMENTS,
    LOAD,
    ORIGINAL,
    SWEEP,
    THROUGHPUT_PLACEMENTS,
    TLS_BULK,
    TLS_HANDSHAKE,
)
from benchmarks.report.runs import Run, Runs

WIDTH_IN, DPI = 9.8, 80  # 784 px


def draw_charts(runs: Runs, directory: Path) -> list[Path]:
    """One chart per kind of figure, the sweep (the headline) first when a run swept."""
    import matplotlib as mpl  # noqa: PLC0415 - optional dependency (extra "plots")

    mpl.use("Agg")
    mpl.rc("font", size=11)
    mpl.rc("axes", titlesize=12, labelsize=11)
    mpl.rc("legend", fontsize=10)
    mpl.rc("figure", titlesize=13)
    directory.mkdir(parents=True, exist_ok=True)
    drawn = []
    fast = runs.best(THROUGHPUT_PLACEMENTS)
    charts = [("sweep", _sweep_chart, fast)] if fast.servers(SWEEP.name) else []
    charts += [
        ("latency", _latency_chart, runs.best(LATENCY_PLACEMENTS)),
        ("throughput", _throughput_chart, fast),
        ("load", _load_chart, fast),
    ]
    if fast.has_tls:
        charts.append(("tls", _tls_chart, fast))
    for name, draw, run in charts:
        path = directory / f"{name}.png"
        draw(run, path)
        drawn.append(path)
    return drawn


def _figure(columns: int = 1, height_in: float = 4.2) -> tuple[Any, Any]:
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt.subplots(1, columns, figsize=(WIDTH_IN, height_in), dpi=DPI, layout="constrained")


def _save(figure: Any, path: Path) -> None:
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure.savefig(path)
    plt.close(figure)


def _value(run: Run, workload: str, server: str, key: str) -> float:
    value = run.get(workload, server, key)
    return math.nan if value is None else value  # nan: no bar, no point


def _spread(middle: float, rounds: list[float]) -> tuple[float, float]:
    """(below, above) the median: to the rounds' min and max; none without rounds or a median."""
    if not rounds or math.isnan(middle):
        return 0.0, 0.0
    return middle - min(rounds), max(rounds) - middle


def _error_bars(run: Run, workload: str, servers: list[str], key: str) -> list[tuple[float, ...]]:
    """[below..., above...] for each server, as matplotlib's xerr/yerr take them."""
    spreads = [
        _spread(_value(run, workload, server, key), run.rounds(workload, server, key)) for server in servers
    ]
    return list(zip(*spreads, strict=True)) if spreads else [(), ()]


def _sweep_chart(run: Run, path: Path) -> None:
    """The headline: latency against offered load, p50 dashed and p99 solid, log latency axis."""
    figure, axis = _figure(1, 5.0)
    for server in run.servers(SWEEP.name):
        steps = run.steps(server, SWEEP.name)
        offered = [step["target_rate"] for step in steps]
        (line,) = axis.plot(offered, [step["p99_us"] for step in steps], marker="o", label=f"{server} p99")
        axis.plot(offered, [step["p50_us"] for step in steps], linestyle="--", color=line.get_color())
    axis.set_yscale("log")
    axis.set_xlabel("offered load (requests/s, 64 B, open loop, C++ client)")
    axis.set_ylabel("latency (µs, log): p99 solid, p50 dashed")
    axis.set_title(f"Latency against offered load ({run.placement} placement)")
    for limit in (1e3, 1e4):
        axis.axhline(limit, color="grey", linewidth=0.8, linestyle=":")
    axis.legend(ncol=2)
    _save(figure, path)


def _latency_chart(run: Run, path: Path) -> None:
    figure, axes = _figure(2)
    servers = run.servers(LATENCY.workloads[0].name)
    width = 0.8 / max(1, len(servers))
    labels = [workload.parameters["label"] for workload in LATENCY.workloads]
    for index, server in enumerate(servers):
        positions = [size + index * width for size in range(len(labels))]
        for axis, key in zip(axes, ("p50_us", "p99_us"), strict=True):
            values = [_value(run, workload.name, server, key) for workload in LATENCY.workloads]
            axis.bar(positions, values, width, label=server)
    for axis, key in zip(axes, ("p50", "p99"), strict=True):
        axis.set_xticks([size + 0.4 - width / 2 for size in range(len(labels))], labels)
        axis.set_ylabel(f"round trip {key} (µs)")
        axis.set_title(f"RTT {key}, closed loop, one connection")
    axes[0].legend()
    figure.suptitle(f"Python client, {run.placement} placement")
    _save(figure, path)


def _barh(axis: Any, run: Run, workload: str, key: str) -> None:
    servers = run.servers(workload)
    values = [_value(run, workload, server, key) for server in servers]
    axis.barh(servers, values, xerr=_error_bars(run, workload, servers, key), capsize=3)
    axis.invert_yaxis()


def _throughput_chart(run: Run, path: Path) -> None:
    figure, axes = _figure(2)
    for axis, workload, title in (
        (axes[0], BULK.name, "bulk stream, one connection (C++)"),
        (axes[1], ORIGINAL.name, "16 KB ping-pong, original case (Python)"),
    ):
        _barh(axis, run, workload, "mb_per_s")
        axis.set_xlabel("MB/s")
        axis.set_title(title)
    figure.suptitle(f"Throughput, {run.placement} placement (error bars: min-max of the rounds)")
    _save(figure, path)


def _tls_chart(run: Run, path: Path) -> None:
    figure, axes = _figure(2)
    for axis, workload, key, label, title in (
        (axes[0], TLS_HANDSHAKE.name, "rate_per_s", "handshakes/s", "full TLS 1.3 handshakes"),
        (axes[1], TLS_BULK.name, "mb_per_s", "MB/s", "bulk stream over TLS"),
    ):
        _barh(axis, run, workload, key)
        axis.set_xlabel(label)
        axis.set_title(title)
    figure.suptitle(f"TLS, C++ client, {run.placement} placement")
    _save(figure, path)


def _load_chart(run: Run, path: Path) -> None:
    figure, axes = _figure(2)
    counts = [workload.parameters["connections"] for workload in LOAD.workloads]
    for server in run.servers(LOAD.workloads[0].name):
        names = [workload.name for workload in LOAD.workloads]
        rates = [_value(run, name, server, "rate_per_s") for name in names]
        bars = [
            _spread(rate, run.rounds(name, server, "rate_per_s"))
            for name, rate in zip(names, rates, strict=True)
        ]
        axes[0].errorbar(
            counts, rates, yerr=list(zip(*bars, strict=True)), marker="o", capsize=3, label=server
        )
        costs = [_value(run, name, server, "server_cpu_us_per_rt") for name in names]
        axes[1].plot(counts, costs, marker="o", label=server)
    for axis, label, title in (
        (axes[0], "round trips/s", "Rate, closed loop (min-max of rounds)"),
        (axes[1], "server CPU µs per round trip", "Server CPU per round trip"),
    ):
        axis.set_xscale("log")
        axis.set_xlabel("concurrent connections (64 B)")
        axis.set_ylabel(label)
        axis.set_title(title)
        axis.set_ylim(bottom=0)
    axes[0].legend()
    figure.suptitle(f"C++ load client, {run.placement} placement")
    _save(figure, path)
