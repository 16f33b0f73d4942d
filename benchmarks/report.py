"""Turn saved benchmark runs into charts and benchmarks.md.

    pytest benchmarks -p no:xdist --placement same-cpu --benchmark-json=same-cpu.json
    pytest benchmarks -p no:xdist --placement any --benchmark-json=any.json
    python3 -m benchmarks.report same-cpu.json any.json      # one run per placement
    python3 -m benchmarks.report                             # newest run under .benchmarks/

The tables put every implementation next to the references of the same run: the Node.js
echo (ratios ``x node``) and, for the 64 B round trip, sockperf's own client and server
(``x sockperf``). Given runs with different CPU placements, every section shows each run's
table, labelled with its placement, and each target is judged on the placement it is about:
the round-trip floor on ``same-cpu``, throughput and load on ``any`` (the scheduler's choice).
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from impls.table import IMPLEMENTATIONS

NODE, SOCKPERF, SOCAT_TLS = "node", "sockperf", "socat-tls"
TLS_SUFFIX = "-tls"  # a row over TLS: "cpp-tls" is cpp's server with --tls-cert/--tls-key
TLS_RTT_SIZES = ("64B", "16KiB")
TLS_LOAD = "tls-load-100"
RTT_SIZES = ("64B", "1KiB", "16KiB", "64KiB")
LOAD_COUNTS = (100, 1000, 10000)
# The original project's README: 16 KB x 1000 round trips against its async server.
PUBLISHED_ORIGINAL = {"avg_ms": 0.089, "p95_ms": 0.122, "mb_per_s": 172.61}
PUBLISHED_MACHINE = "Apple M2, the original project's async server (published figures)"
QUIET_LOAD_AVERAGE = 0.5
ROOT = Path(__file__).resolve().parent.parent  # the clone
PROFILES = ROOT / "benchmarks" / "profiles.md"  # hand-written: where the time goes, with evidence
# Which run each kind of figure is judged on, best first: a round trip compared with sockperf's
# is about one CPU doing both sides; rates and streams are about what the machine can do.
LATENCY_PLACEMENTS = ("same-cpu", "cross-cpu", "any")
THROUGHPUT_PLACEMENTS = ("any", "cross-cpu", "same-cpu")
PLACEMENT_MEANING = {
    "same-cpu": "server and client pinned to the same CPU",
    "cross-cpu": "server and client pinned to different CPUs",
    "any": "no pinning: the scheduler places server and client",
}


@dataclass(frozen=True)
class Run:
    """One saved pytest-benchmark run: its results by (workload, server), and how it was made."""

    source: Path
    datetime: str
    description: dict[str, Any]
    machine: dict[str, Any]
    results: dict[tuple[str, str], dict[str, Any]]

    def get(self, workload: str, server: str, key: str) -> float | None:
        value = self.results.get((workload, server), {}).get(key)
        return float(value) if isinstance(value, int | float) else None

    def servers(self, workload: str | None = None) -> list[str]:
        present = {server for (load, server) in self.results if workload in (None, load)}
        known = [impl.name + suffix for suffix in ("", TLS_SUFFIX) for impl in IMPLEMENTATIONS]
        references = [NODE, SOCAT_TLS, SOCKPERF]
        order = [*known, *sorted(present - {*known, *references}), *references]
        return [server for server in order if server in present]

    @property
    def has_tls(self) -> bool:
        return any(workload.startswith("tls-") for workload, _ in self.results)

    @property
    def profile(self) -> str:
        return str(self.description.get("profile", "unknown"))

    @property
    def placement(self) -> str:
        return str(self.description.get("placement", "unknown"))


@dataclass(frozen=True)
class Runs:
    """The runs of one report, at most one per placement."""

    by_placement: dict[str, Run]

    @classmethod
    def of(cls, runs: list[Run]) -> Runs:
        by_placement: dict[str, Run] = {}
        for run in runs:
            if run.placement in by_placement:
                other = by_placement[run.placement].source
                raise SystemExit(f"{run.source} and {other} are both {run.placement} runs: give one")
            by_placement[run.placement] = run
        return cls(by_placement)

    def ordered(self, preference: tuple[str, ...]) -> list[Run]:
        """Every run, the preferred placements first."""
        rank = {placement: index for index, placement in enumerate(preference)}
        return sorted(self.by_placement.values(), key=lambda run: rank.get(run.placement, len(rank)))

    def best(self, preference: tuple[str, ...]) -> Run:
        return self.ordered(preference)[0]


def load_run(path: Path) -> Run:
    data = json.loads(path.read_text())
    results = {
        (bench["extra_info"]["workload"], bench["extra_info"]["server"]): {
            **bench["extra_info"],
            "median_s": bench["stats"]["median"],
        }
        for bench in data["benchmarks"]
        if "workload" in bench.get("extra_info", {})
    }
    return Run(path, data.get("datetime", "?"), data.get("echo", {}), data.get("machine_info", {}), results)


def newest_run(directory: Path) -> Path:
    runs = sorted(directory.rglob("*.json"), key=lambda path: path.stat().st_mtime)
    if not runs:
        raise SystemExit(f"no saved run under {directory}: run pytest benchmarks --benchmark-autosave first")
    return runs[-1]


# --- formatting -------------------------------------------------------------------------------


def ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None or reference == 0:
        return None
    return value / reference


def fmt(value: float | None, digits: int = 1, suffix: str = "") -> str:
    return "-" if value is None or math.isnan(value) else f"{value:,.{digits}f}{suffix}"


def times(value: float | None) -> str:
    return fmt(value, 2, "x")


def table(headers: list[str], rows: Iterable[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def us(run: Run, workload: str, server: str, key: str) -> float | None:
    value = run.get(workload, server, key)
    return None if value is None else value * 1e3


# --- tables -----------------------------------------------------------------------------------


def latency_table(run: Run) -> str:
    def cell(server: str, size: str) -> str:
        workload = f"rtt-{size}"
        p50, p99 = us(run, workload, server, "p50_ms"), us(run, workload, server, "p99_ms")
        versus = ratio(p50, us(run, workload, NODE, "p50_ms")) if server != NODE else None
        return f"{fmt(p50)} / {fmt(p99)}" + (f" ({times(versus)} node)" if versus else "")

    rows = [[server, *(cell(server, size) for size in RTT_SIZES)] for server in run.servers("rtt-64B")]
    return table(["server", *(f"{size} p50 / p99 µs" for size in RTT_SIZES)], rows)


def native_table(run: Run) -> str:
    servers = [
        *run.servers("rtt-64B-native"),
        *([SOCKPERF] if run.results.get(("reference-sockperf", SOCKPERF)) else []),
    ]

    def workload(server: str) -> str:
        return "reference-sockperf" if server == SOCKPERF else "rtt-64B-native"

    floor_avg = us(run, "reference-sockperf", SOCKPERF, "avg_ms")
    floor_p50 = us(run, "reference-sockperf", SOCKPERF, "p50_ms")
    rows = []
    for server in servers:
        avg, p50 = us(run, workload(server), server, "avg_ms"), us(run, workload(server), server, "p50_ms")
        p99 = us(run, workload(server), server, "p99_ms")
        node_avg = us(run, "rtt-64B-native", NODE, "avg_ms")
        rows.append(
            [
                server,
                *(fmt(avg, 2), fmt(p50, 0), fmt(p99, 0)),
                *(times(ratio(avg, floor_avg)), times(ratio(p50, floor_p50)), times(ratio(avg, node_avg))),
            ]
        )
    headers = ["server", "avg µs", "p50 µs", "p99 µs", "avg x sockperf", "p50 x sockperf", "avg x node"]
    return table(headers, rows)


def original_table(run: Run) -> str:
    rows = [
        [
            server,
            fmt(run.get("original-16KB", server, "avg_ms"), 3),
            fmt(run.get("original-16KB", server, "p95_ms"), 3),
            fmt(run.get("original-16KB", server, "mb_per_s"), 2),
        ]
        for server in run.servers("original-16KB")
    ]
    published = PUBLISHED_ORIGINAL
    rows.append(
        [
            f"*{PUBLISHED_MACHINE}*",
            fmt(published["avg_ms"], 3),
            fmt(published["p95_ms"], 3),
            fmt(published["mb_per_s"], 2),
        ]
    )
    return table(["server", "avg RTT ms", "p95 ms", "MB/s"], rows)


def bulk_table(run: Run) -> str:
    node = run.get("bulk-stream", NODE, "mb_per_s")
    rows = [
        [server, fmt(mb := run.get("bulk-stream", server, "mb_per_s"), 0), times(ratio(mb, node))]
        for server in run.servers("bulk-stream")
    ]
    return table(["server", "MB/s", "x node"], rows)


def load_table(run: Run) -> str:
    rows = []
    for count in LOAD_COUNTS:
        workload = f"load-{count}"
        node = run.get(workload, NODE, "rate_per_s")
        for server in run.servers(workload):
            result = run.results[(workload, server)]
            errors = ", ".join(f"{kind} {n}" for kind, n in result.get("errors", {}).items() if n) or "none"
            rate = run.get(workload, server, "rate_per_s")
            rows.append(
                [
                    *(f"{count:,}", server, fmt(rate, 0), times(ratio(rate, node))),
                    *(fmt(run.get(workload, server, key), 2) for key in ("p50_ms", "p99_ms")),
                    *(fmt(run.get(workload, server, "server_cpu_us_per_rt"), 2), errors),
                ]
            )
    headers = ["connections", "server", "round trips/s", "x node", "p50 ms", "p99 ms", "server CPU µs/RT"]
    return table([*headers, "errors"], rows)


def connection_table(run: Run) -> str:
    node = run.get("connect-echo-close", NODE, "connections_per_s")
    rows = [
        [
            server,
            fmt(rate := run.get("connect-echo-close", server, "connections_per_s"), 0),
            times(ratio(rate, node)),
        ]
        for server in run.servers("connect-echo-close")
    ]
    return table(["server", "connections/s", "x node"], rows)


# --- TLS tables: every TLS row against socat-tls, and against its own row over TCP ------------


def over_tcp(server: str) -> str:
    """The same implementation's row over plain TCP ("cpp-tls" -> "cpp")."""
    return server.removesuffix(TLS_SUFFIX)


def tls_handshake_table(run: Run) -> str:
    socat = run.get("tls-handshake", SOCAT_TLS, "rate_per_s")
    rows = [
        [
            server,
            fmt(rate := run.get("tls-handshake", server, "rate_per_s"), 0),
            times(ratio(rate, socat)),
            *(fmt(run.get("tls-handshake", server, key), 2) for key in ("p50_ms", "p95_ms", "p99_ms")),
            negotiated(run, "tls-handshake", server),
        ]
        for server in run.servers("tls-handshake")
    ]
    headers = ["server", "handshakes/s", "x socat-tls", "p50 ms", "p95 ms", "p99 ms", "TLS"]
    return table(headers, rows)


def negotiated(run: Run, workload: str, server: str) -> str:
    result = run.results.get((workload, server), {})
    return f"{result.get('tls_version', '?')} {result.get('cipher', '?')}"


def tls_rtt_table(run: Run) -> str:
    def cell(server: str, workload: str, key: str) -> str:
        value = us(run, workload, server, key)
        versus = ratio(value, us(run, workload, SOCAT_TLS, key)) if server != SOCAT_TLS else None
        tcp = ratio(value, us(run, workload.removeprefix("tls-"), over_tcp(server), key))
        notes = [f"{times(versus)} socat"] if versus else []
        notes += [f"{times(tcp)} tcp"] if tcp and server != SOCAT_TLS else []
        return fmt(value) + (f" ({', '.join(notes)})" if notes else "")

    sizes = [(f"tls-rtt-{size}", f"{size} p50 µs") for size in TLS_RTT_SIZES]
    columns = [*sizes, ("tls-rtt-64B-native", "64 B native p50 µs")]
    rows = [
        [server, *(cell(server, workload, "p50_ms") for workload, _ in columns)]
        for server in run.servers("tls-rtt-64B")
    ]
    return table(["server", *(title for _, title in columns)], rows)


def tls_bulk_table(run: Run) -> str:
    socat = run.get("tls-bulk-stream", SOCAT_TLS, "mb_per_s")
    rows = []
    for server in run.servers("tls-bulk-stream"):
        mb = run.get("tls-bulk-stream", server, "mb_per_s")
        tcp = run.get("bulk-stream", over_tcp(server), "mb_per_s") if server != SOCAT_TLS else None
        rows.append([server, fmt(mb, 0), times(ratio(mb, socat)), fmt(tcp, 0), times(ratio(mb, tcp))])
    return table(["server", "MB/s", "x socat-tls", "same row over TCP, MB/s", "x tcp"], rows)


def tls_load_table(run: Run) -> str:
    socat = run.get(TLS_LOAD, SOCAT_TLS, "rate_per_s")
    rows = []
    for server in run.servers(TLS_LOAD):
        result = run.results[(TLS_LOAD, server)]
        errors = ", ".join(f"{kind} {n}" for kind, n in result.get("errors", {}).items() if n) or "none"
        rate = run.get(TLS_LOAD, server, "rate_per_s")
        late = "" if result.get("handshakes_in_warmup", True) else " (handshakes ran into the window)"
        rows.append(
            [
                *(server, fmt(rate, 0) + late, times(ratio(rate, socat))),
                *(fmt(run.get(TLS_LOAD, server, key), 2) for key in ("p50_ms", "p99_ms")),
                fmt(run.get(TLS_LOAD, server, "server_cpu_us_per_rt"), 2),
                fmt(run.get(TLS_LOAD, server, "handshake_p50_ms"), 1),
                errors,
            ]
        )
    headers = ["server", "round trips/s", "x socat-tls", "p50 ms", "p99 ms", "server CPU µs/RT"]
    return table([*headers, "100 handshakes p50 ms", "errors"], rows)


# --- targets ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    goal: str
    placement: str  # the run the figure comes from
    measured: str
    met: bool | None  # None: not measured, or not on the placement the target is about
    note: str = ""


def _at_least(goal: str, run: Run, value: float | None, threshold: float) -> Check:
    note = "" if run.placement == "any" else "judged on this run: no --placement any run given"
    return Check(goal, run.placement, times(value), None if value is None else value >= threshold, note)


def checks(runs: Runs) -> list[Check]:
    fast = runs.best(THROUGHPUT_PLACEMENTS)

    def rate_ratio(server: str) -> float | None:
        return ratio(fast.get("load-100", server, "rate_per_s"), fast.get("load-100", NODE, "rate_per_s"))

    bulk = ratio(fast.get("bulk-stream", "cpp", "mb_per_s"), fast.get("bulk-stream", NODE, "mb_per_s"))
    return [
        floor_check(runs.best(LATENCY_PLACEMENTS)),
        _at_least("cpp 100-connection rate >= 1.4x node", fast, rate_ratio("cpp"), 1.4),
        _at_least("cpp bulk throughput >= 1.9x node", fast, bulk, 1.9),
        lowest_cpu_check(fast),
        _at_least("asyncio-uvloop 100-connection rate >= 1.3x node", fast, rate_ratio("asyncio-uvloop"), 1.3),
        _at_least("asyncio 100-connection rate >= 1.0x node", fast, rate_ratio("asyncio"), 1.0),
    ]


def floor_check(run: Run) -> Check:
    floor = ratio(
        run.get("rtt-64B-native", "cpp", "p50_ms"), run.get("reference-sockperf", SOCKPERF, "p50_ms")
    )
    same_cpu = run.placement == "same-cpu"
    return Check(
        "cpp same-CPU 64 B RTT <= 1.10x sockperf (p50, C++ client vs sockperf pp)",
        run.placement,
        times(floor),
        None if floor is None or not same_cpu else floor <= 1.10,
        "" if same_cpu else "not judged: no --placement same-cpu run given",
    )


def lowest_cpu_check(run: Run) -> Check:
    verdicts, lowest = [], []
    for count in LOAD_COUNTS:
        costs = {
            server: cost
            for server in run.servers(f"load-{count}")
            if (cost := run.get(f"load-{count}", server, "server_cpu_us_per_rt")) is not None
        }
        if "cpp" in costs and len(costs) > 1:
            best, runner_up = sorted(costs, key=costs.__getitem__)[:2]
            verdicts.append(best == "cpp")
            lowest.append(
                f"{count:,} conns: {best} {costs[best]:.2f} µs, then {runner_up} {costs[runner_up]:.2f}"
            )
    met = all(verdicts) if verdicts else None
    note = "" if run.placement == "any" else "judged on this run: no --placement any run given"
    return Check("cpp lowest server CPU per round trip", run.placement, "; ".join(lowest) or "-", met, note)


def checks_table(runs: Runs) -> str:
    label = {True: "met", False: "**not met**", None: "not judged"}
    return table(
        ["target", "placement", "measured", "verdict", "note"],
        (
            [check.goal, check.placement, check.measured, label[check.met], check.note]
            for check in checks(runs)
        ),
    )


# --- charts -----------------------------------------------------------------------------------


def draw_charts(runs: Runs, directory: Path) -> list[Path]:
    """One chart per kind of figure, each from the run of the placement it is judged on."""
    import matplotlib as mpl  # noqa: PLC0415 - optional dependency (extra "plots")

    mpl.use("Agg")
    directory.mkdir(parents=True, exist_ok=True)
    drawn = []
    for name, draw, preference in (
        ("latency", _latency_chart, LATENCY_PLACEMENTS),
        ("throughput", _throughput_chart, THROUGHPUT_PLACEMENTS),
        ("load", _load_chart, THROUGHPUT_PLACEMENTS),
    ):
        path = directory / f"{name}.png"
        draw(runs.best(preference), path)
        drawn.append(path)
    if (tls_run := runs.best(THROUGHPUT_PLACEMENTS)).has_tls:
        _tls_chart(tls_run, path := directory / "tls.png")
        drawn.append(path)
    return drawn


def _figure(columns: int = 1) -> tuple[Any, Any]:
    import matplotlib.pyplot as plt  # noqa: PLC0415

    return plt.subplots(1, columns, figsize=(4.2 * columns + 1.4, 3.4), dpi=80, layout="constrained")


def _save(figure: Any, path: Path) -> None:
    import matplotlib.pyplot as plt  # noqa: PLC0415

    figure.savefig(path)
    plt.close(figure)


def _latency_chart(run: Run, path: Path) -> None:
    figure, axes = _figure(2)
    servers = run.servers("rtt-64B")
    width = 0.8 / max(1, len(servers))
    for index, server in enumerate(servers):
        positions = [size + index * width for size in range(len(RTT_SIZES))]
        for axis, key in zip(axes, ("p50_ms", "p99_ms"), strict=True):
            values = [us(run, f"rtt-{size}", server, key) or 0.0 for size in RTT_SIZES]
            axis.bar(positions, values, width, label=server)
    for axis, key in zip(axes, ("p50", "p99"), strict=True):
        axis.set_xticks([size + 0.4 - width / 2 for size in range(len(RTT_SIZES))], RTT_SIZES)
        axis.set_ylabel(f"round trip {key} (µs)")
        axis.set_title(f"RTT {key}, one connection (Python client, {run.placement})", fontsize=9)
    axes[0].legend(fontsize=7)
    _save(figure, path)


def _throughput_chart(run: Run, path: Path) -> None:
    figure, axes = _figure(2)
    for axis, workload, title in (
        (axes[0], "bulk-stream", f"bulk stream, one connection (C++ client, {run.placement})"),
        (axes[1], "original-16KB", f"16 KB ping-pong, original case (Python, {run.placement})"),
    ):
        servers = run.servers(workload)
        axis.barh(servers, [run.get(workload, server, "mb_per_s") or 0.0 for server in servers])
        axis.set_xlabel("MB/s")
        axis.set_title(title, fontsize=9)
        axis.invert_yaxis()
    _save(figure, path)


def _tls_chart(run: Run, path: Path) -> None:
    figure, axes = _figure(2)
    for axis, workload, key, label, title in (
        (axes[0], "tls-handshake", "rate_per_s", "handshakes/s", "full TLS 1.3 handshakes, one by one"),
        (axes[1], "tls-bulk-stream", "mb_per_s", "MB/s", "bulk stream over TLS, one connection"),
    ):
        servers = run.servers(workload)
        axis.barh(servers, [run.get(workload, server, key) or 0.0 for server in servers])
        axis.set_xlabel(label)
        axis.set_title(f"{title} (C++ client, {run.placement})", fontsize=9)
        axis.invert_yaxis()
    _save(figure, path)


def _load_chart(run: Run, path: Path) -> None:
    figure, axes = _figure(2)
    for server in run.servers("load-100"):
        counts = [count for count in LOAD_COUNTS if (f"load-{count}", server) in run.results]
        for axis, key in zip(axes, ("rate_per_s", "server_cpu_us_per_rt"), strict=True):
            values = [run.get(f"load-{count}", server, key) or math.nan for count in counts]
            axis.plot(counts, values, marker="o", label=server)
    for axis, label in zip(axes, ("round trips/s", "server CPU µs per round trip"), strict=True):
        axis.set_xscale("log")
        axis.set_xlabel(f"concurrent connections (64 B, C++ load client, {run.placement})")
        axis.set_ylabel(label)
        axis.set_ylim(bottom=0)
    axes[0].legend(fontsize=7)
    _save(figure, path)


# --- the page ---------------------------------------------------------------------------------


def caveat(runs: Runs) -> str:
    notes = []
    for run in runs.ordered(LATENCY_PLACEMENTS):
        load = run.description.get("load_average_at_start", [math.nan])[0]
        if run.profile != "full":
            notes.append(f"the {run.placement} run is a **{run.profile}** run (short durations, small sizes)")
        if not load < QUIET_LOAD_AVERAGE:
            notes.append(
                f"the machine was busy when the {run.placement} run started "
                f"(1-minute load average {load:.2f})"
            )
    if not notes:
        return ""
    return "> **Noisy figures:** " + "; ".join(notes) + ". Ratios are indicative only.\n"


def source_of(run: Run) -> str:
    return str(run.source.relative_to(ROOT) if run.source.is_relative_to(ROOT) else run.source)


def header(runs: Runs) -> str:
    ordered = runs.ordered(LATENCY_PLACEMENTS)
    description, machine = ordered[0].description, ordered[0].machine
    cpu = description.get("cpu_model", machine.get("cpu", {}).get("brand_raw", "?"))
    kernel = description.get("kernel", machine.get("release", "?"))
    lines = [f"- Machine: {cpu}, {description.get('cpus', '?')} CPUs, Linux {kernel}"]
    for run in ordered:
        load = {
            moment: ", ".join(
                f"{value:.2f}" for value in run.description.get(f"load_average_at_{moment}", [])
            )
            or "?"
            for moment in ("start", "end")
        }
        lines += [
            f"- **{run.placement}** run ({PLACEMENT_MEANING.get(run.placement, '?')}), "
            f"{run.profile} profile, {run.datetime}",
            f"  - Command: `{run.description.get('command', '?')}`",
            f"  - Load average (1, 5, 15 min): {load['start']} at the start, {load['end']} at the end",
        ]
    lines.append(
        f"- Regenerate: `python3 -m benchmarks.report {' '.join(source_of(run) for run in ordered)}`"
    )
    return "\n".join(lines) + "\n"


TARGETS_INTRO = (
    "Median ratios. Each target is judged on the run of the placement it is about: the 64 B "
    "round trip against sockperf on `same-cpu` (as the target says), the rates, the bulk stream "
    "and the CPU cost on `any`."
)

SECTIONS: list[tuple[str, Callable[[Run], str], str, tuple[str, ...]]] = [
    (
        "Round-trip latency (Python client)",
        latency_table,
        "One connection, TCP_NODELAY, blocking socket; every echo checked. Ratios are p50 to node's.",
        LATENCY_PLACEMENTS,
    ),
    (
        "64 B round trip, native clients, against the floor",
        native_table,
        "The C++ client (`cpp/build/client --count N --size 64`) against each server, and sockperf's "
        "own client and server (`sockperf pp --tcp --full-rtt -m 64` against `sockperf sr --tcp`): "
        "the round trip of this machine's loopback with no echo logic at all. The C++ client prints "
        "percentiles to 1 µs, so the avg column (total time / count) is the sharper comparison.",
        LATENCY_PLACEMENTS,
    ),
    (
        "The original project's benchmark: 16 KB x 1000 round trips",
        original_table,
        "MB/s = count x size / elapsed / 1e6, as the original client computes it.",
        LATENCY_PLACEMENTS,
    ),
    (
        "Bulk throughput (C++ stream client)",
        bulk_table,
        "One connection: `cpp/build/client --stream BYTES --chunk 65536` writes a pseudo-random "
        "stream in 64 KiB writes while it reads (256 KiB reads) and checks the echo, then half-closes "
        "and reads to EOF. MB/s over the client's own time, median of the rounds.",
        THROUGHPUT_PLACEMENTS,
    ),
    (
        "Concurrency (C++ load client)",
        load_table,
        "Each connection keeps one 64 B message in flight for a fixed time (3 s after 0.5 s of "
        "warm-up in the full profile); the row is the median of the rounds by rate (3 in the full "
        "profile). Server CPU = user + system time of the server's process tree over the measured "
        "window / round trips.",
        THROUGHPUT_PLACEMENTS,
    ),
    (
        "Connection rate (Python client)",
        connection_table,
        "Connect, one 64 B echo, close, in a Python loop: the client's own cost is included.",
        THROUGHPUT_PLACEMENTS,
    ),
]


TLS_INTRO = (
    "Every row that speaks TLS (`NAME-tls`: the server started with the suite's trustme certificate, "
    "`--tls-cert`/`--tls-key`) and socat-tls, the third-party baseline: socat's `OPENSSL-LISTEN` "
    "(fork per connection, `nodelay`, `backlog=1024`) terminating TLS in front of `EXEC:cat`. The C++ "
    "client trusts the test CA (`--tls --cafile`). No targets exist for TLS: ratios are to socat-tls "
    "and, where shown, to the same implementation over plain TCP in the same run (`x tcp`)."
)

TLS_SECTIONS: list[tuple[str, Callable[[Run], str], str, tuple[str, ...]]] = [
    (
        "Full handshakes (C++ client)",
        tls_handshake_table,
        "`cpp/build/client --handshakes N --tls`: N connections one after another, each a TCP connect, "
        "a full handshake (no tickets, nothing to resume), one checked 64 B echo, close_notify, close. "
        "Latency = connect start to handshake done. socat-tls forks a process per connection, and "
        "socat 1.7.4 answers the client's first ClientHello with a HelloRetryRequest (one more round "
        "trip): both are in its handshake latency.",
        THROUGHPUT_PLACEMENTS,
    ),
    (
        "Round trips over TLS",
        tls_rtt_table,
        "p50 per round trip on one TLS connection, the handshake done before timing starts: the Python "
        "client (as in the TCP latency section) at 64 B and 16 KiB, and the C++ client "
        "(`--count N --size 64 --tls`) at 64 B. `x tcp`: against the same row's TCP figure.",
        LATENCY_PLACEMENTS,
    ),
    (
        "Bulk throughput over TLS (C++ stream client)",
        tls_bulk_table,
        "`cpp/build/client --stream BYTES --chunk 65536 --tls`, every byte checked, MB/s of plaintext "
        "at the median of the rounds; next to it the same row's TCP bulk stream from this run.",
        THROUGHPUT_PLACEMENTS,
    ),
    (
        "100 connections over TLS (C++ load client)",
        tls_load_table,
        "`cpp/build/client --load --connections 100 --tls`: all connections handshake at once during "
        "the warm-up (their p50 shown), then each keeps one 64 B message in flight for the measured "
        "window. Server CPU as in the concurrency section.",
        THROUGHPUT_PLACEMENTS,
    ),
]


def tls_part(runs: Runs) -> str:
    """The TLS section, when a run measured TLS."""
    tls_runs = Runs({placement: run for placement, run in runs.by_placement.items() if run.has_tls})
    if not tls_runs.by_placement:
        return ""
    body = "\n\n".join(section(tls_runs, *entry, level="###") for entry in TLS_SECTIONS)
    return f"## TLS\n\n{TLS_INTRO}\n\n{body}\n\n"


READING = """## Reading the figures

- Every echo is checked byte for byte; a wrong echo fails the benchmark instead of being timed.
- Latency, original 16 KB and connection-rate rows are driven from Python, so they include the
  Python client's own cost; they compare servers with each other within one run. The bulk
  stream, the concurrency rows and the native round trip use the C++ client, and the floor
  uses sockperf's own C client.
- The native round trip includes the C++ client's poll() before each read, which sockperf's
  blocking client does not make: part of any gap to sockperf is the client's, not the server's
  (a server that matches the blocking threaded server's figure is at the client's floor).
- With `--placement same-cpu` the client and the server share one CPU, so every round trip pays
  for both sides on that CPU; with `any` the scheduler spreads them over both.
- Server CPU per round trip is the server's user + system time over the last `duration`
  seconds of the load client's run, sampled every 50 ms, divided by round trips in that time.
"""


def section(
    runs: Runs,
    title: str,
    make: Callable[[Run], str],
    intro: str,
    preference: tuple[str, ...],
    *,
    level: str = "##",
) -> str:
    """The section's table from every run, the placement it is judged on first, each labelled."""
    tables = [
        f"Placement **{run.placement}** ({PLACEMENT_MEANING.get(run.placement, '?')}):\n\n{make(run)}"
        for run in runs.ordered(preference)
    ]
    return f"{level} {title}\n\n{intro}\n\n" + "\n\n".join(tables)


def render(runs: Runs, charts: list[Path], output: Path) -> str:
    images = "\n".join(f"![{path.stem}]({path.relative_to(output.parent).as_posix()})" for path in charts)
    profiles = Path(os.path.relpath(PROFILES, output.parent)).as_posix()
    targets = (
        f"## Targets\n\n{TARGETS_INTRO} What limits each figure, with the profiles: "
        f"[{PROFILES.name}]({profiles}).\n\n{checks_table(runs)}"
    )
    body = "\n\n".join(section(runs, *entry) for entry in SECTIONS)
    return (
        f"# Benchmarks\n\n{caveat(runs)}\n{header(runs)}\n{images}\n\n{targets}\n\n{body}\n\n"
        f"{tls_part(runs)}{READING}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Charts and benchmarks.md from saved benchmark runs.")
    parser.add_argument(
        "runs",
        nargs="*",
        type=Path,
        help="--benchmark-json / autosave files, at most one per --placement (default: the newest)",
    )
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks.md")
    parser.add_argument("--charts", type=Path, default=ROOT / "benchmarks" / "charts")
    args = parser.parse_args(argv)
    runs = Runs.of([load_run(path) for path in args.runs or [newest_run(ROOT / ".benchmarks")]])
    charts = draw_charts(runs, args.charts.resolve())
    output = args.output.resolve()
    output.write_text(render(runs, charts, output))
    print(f"wrote {output} and {len(charts)} charts in {args.charts}")


if __name__ == "__main__":
    main()
