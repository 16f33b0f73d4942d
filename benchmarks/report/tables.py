"""One Markdown table per catalogue section, from one run. A missing figure is ``-``, never 0."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from benchmarks.catalogue import (
    BULK,
    CONNECTIONS,
    LATENCY,
    LATENCY_COLUMNS,
    LOAD,
    NATIVE,
    NODE,
    ORIGINAL,
    PUBLISHED_MACHINE,
    PUBLISHED_ORIGINAL,
    SOCAT_TLS,
    SOCKPERF,
    SWEEP,
    TLS_BULK,
    TLS_HANDSHAKE,
    TLS_LOAD,
    TLS_NATIVE,
    TLS_RTT,
    TLS_SUFFIX,
    Section,
)
from benchmarks.report.runs import Run

KNEE_LIMITS_US = (1_000.0, 10_000.0)  # the knee: the highest achieved rate with p99 within these


def ratio(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None or reference == 0:
        return None
    return value / reference


def fmt(value: float | None, digits: int = 1, suffix: str = "") -> str:
    return "-" if value is None or math.isnan(value) else f"{value:,.{digits}f}{suffix}"


def times(value: float | None) -> str:
    return fmt(value, 2, "x")


def spread(values: list[float], digits: int = 0) -> str:
    return f"{fmt(min(values), digits)}-{fmt(max(values), digits)}" if values else "-"


def table(section: Section, rows: Iterable[list[str]]) -> str:
    headers = list(section.columns)
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(f"{section.key}: a row of {len(row)} cells under {len(headers)} columns")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def errors(result: dict[str, Any]) -> str:
    found = result.get("errors", {})
    if isinstance(found, int | float):
        return fmt(found, 0) if found else "none"
    return ", ".join(f"{kind} {n}" for kind, n in found.items() if n) or "none"


def latency_cells(run: Run, workload: str, server: str, unit: str = "us") -> list[str]:
    """p50, p90, p99, p99.9, max and the sample count (µs, or ms as the load client prints them)."""
    cells = [fmt(run.get(workload, server, f"{key}_{unit}"), 1) for key in LATENCY_COLUMNS[:-1]]
    return [*cells, fmt(run.get(workload, server, "count"), 0)]


def over_tcp(server: str) -> str:
    """The same implementation's row over plain TCP ("cpp-tls" -> "cpp")."""
    return server.removesuffix(TLS_SUFFIX)


# --- TCP --------------------------------------------------------------------------------------


def latency_table(run: Run) -> str:
    rows = []
    for workload in LATENCY.workloads:
        node = run.get(workload.name, NODE, "p50_us")
        for server in run.servers(workload.name):
            versus = ratio(run.get(workload.name, server, "p50_us"), node) if server != NODE else None
            rows.append(
                [
                    server,
                    workload.parameters["label"],
                    *latency_cells(run, workload.name, server),
                    times(versus),
                ]
            )
    return table(LATENCY, rows)


def native_table(run: Run) -> str:
    native, floor = (workload.name for workload in NATIVE.workloads)
    floor_p50 = run.get(floor, SOCKPERF, "p50_us")
    rows = []
    for server in [*run.servers(native), *run.servers(floor)]:
        workload = floor if server == SOCKPERF else native
        keys = ("avg_us", "p50_us", "p90_us", "p99_us", "max_us")
        figures = [fmt(run.get(workload, server, key), 1) for key in keys]
        p50 = run.get(workload, server, "p50_us")
        rows.append(
            [server, *figures, fmt(run.get(workload, server, "count"), 0), times(ratio(p50, floor_p50))]
        )
    return table(NATIVE, rows)


def original_table(run: Run) -> str:
    name = ORIGINAL.name
    rows = [
        [
            server,
            fmt(run.get(name, server, "avg_ms"), 3),
            fmt(run.get(name, server, "p95_ms"), 3),
            fmt(run.get(name, server, "mb_per_s"), 2),
        ]
        for server in run.servers(name)
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
    return table(ORIGINAL, rows)


def bulk_table(run: Run) -> str:
    name = BULK.name
    node = run.get(name, NODE, "mb_per_s")
    rows = [
        [
            server,
            fmt(mb := run.get(name, server, "mb_per_s"), 0),
            spread(run.rounds(name, server, "mb_per_s")),
            times(ratio(mb, node)),
        ]
        for server in run.servers(name)
    ]
    return table(BULK, rows)


def load_table(run: Run) -> str:
    rows = []
    for workload in LOAD.workloads:
        name = workload.name
        node = run.get(name, NODE, "rate_per_s")
        for server in run.servers(name):
            rate = run.get(name, server, "rate_per_s")
            rows.append(
                [
                    f"{workload.parameters['connections']:,}",
                    server,
                    fmt(rate, 0),
                    spread(run.rounds(name, server, "rate_per_s")),
                    times(ratio(rate, node)),
                    *(fmt(run.get(name, server, f"{key}_ms"), 2) for key in LATENCY_COLUMNS[:-1]),
                    fmt(run.get(name, server, "count"), 0),
                    fmt(run.get(name, server, "server_cpu_us_per_rt"), 2),
                    errors(run.results[(name, server)]),
                ]
            )
    return table(LOAD, rows)


def connection_table(run: Run) -> str:
    name = CONNECTIONS.name
    node = run.get(name, NODE, "connections_per_s")
    rows = [
        [server, fmt(rate := run.get(name, server, "connections_per_s"), 0), times(ratio(rate, node))]
        for server in run.servers(name)
    ]
    return table(CONNECTIONS, rows)


# --- the open-loop sweep ----------------------------------------------------------------------


def sweep_table(run: Run) -> str:
    rows = [
        [
            server,
            fmt(step.get("target_rate"), 0),
            fmt(step.get("achieved_rate"), 0),
            "yes" if step.get("kept_up") else "**no**",
            *(fmt(step.get(key), 0) for key in ("p50_us", "p90_us", "p99_us", "p999_us", "max_us")),
            fmt(step.get("count"), 0),
            errors(step),
        ]
        for server in run.servers(SWEEP.name)
        for step in run.steps(server, SWEEP.name)
    ]
    return table(SWEEP, rows)


@dataclass(frozen=True)
class Knee:
    """The highest achieved rate whose p99 is within the limit, and what stopped the next step."""

    rate: float | None
    limit: str


def knee(steps: list[dict[str, Any]], limit_us: float) -> Knee:
    within = [step for step in steps if step["p99_us"] <= limit_us and not step.get("errors")]
    rate = max((float(step["achieved_rate"]) for step in within), default=None)
    beyond = [step for step in steps if step not in within]
    return Knee(rate, limiter(beyond[0]) if beyond else "not reached: the sweep's highest offered rate")


def limiter(step: dict[str, Any]) -> str:
    """What limited the first step past the knee: the client, the server's CPU, or the machine."""
    server, client = step.get("server_cpu_share"), step.get("client_cpu_share")
    shares = f"server {fmt(server, 2)} CPU, client {fmt(client, 2)} CPU"
    waits = [step.get("server_wait_share"), step.get("client_wait_share")]
    if not step.get("kept_up", True):
        return f"client (it could not keep its schedule; {shares})"
    if server is not None and client is not None and server + client >= MACHINE_BUSY_CPUS:
        return f"machine (both CPUs busy: {shares})"
    if server is not None and server >= SERVER_BUSY_CPUS:
        return f"server (one CPU saturated: {shares})"
    if any(wait is not None and wait >= RUN_QUEUE_WAIT_SHARE for wait in waits):
        server_ms, client_ms = (fmt(None if wait is None else wait * 1e3, 0) for wait in waits)
        return f"machine (waiting for a CPU: server {server_ms} ms/s, client {client_ms} ms/s; {shares})"
    return f"server (queueing below a full CPU: {shares})"


MACHINE_BUSY_CPUS = 1.8  # of this machine's 2
SERVER_BUSY_CPUS = 0.9
# Runnable but not running for 1 % of the step: 10 ms per second, ten times the 1 ms knee, in
# waits of the scheduler's granularity (ms): enough to put more than 1 % of requests past 1 ms.
RUN_QUEUE_WAIT_SHARE = 0.01


def knee_table(run: Run) -> str:
    headers = ["server", *(f"knee, p99 <= {fmt(limit / 1e3, 0)} ms (req/s)" for limit in KNEE_LIMITS_US)]
    headers += ["x node (1 ms)", "what limits it (1 ms / 10 ms)"]
    knees = {
        server: [knee(run.steps(server, SWEEP.name), limit) for limit in KNEE_LIMITS_US]
        for server in run.servers(SWEEP.name)
    }
    node = knees.get(NODE, [Knee(None, "")])[0].rate
    rows = [
        [
            server,
            *(fmt(found.rate, 0) for found in found_knees),
            times(ratio(found_knees[0].rate, node)),
            " / ".join(found.limit for found in found_knees),
        ]
        for server, found_knees in knees.items()
    ]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


# --- TLS: every TLS row against socat-tls, and against its own row over TCP -------------------


def negotiated(run: Run, workload: str, server: str) -> str:
    result = run.results.get((workload, server), {})
    return f"{result.get('tls_version', '?')} {result.get('cipher', '?')}"


def tls_handshake_table(run: Run) -> str:
    name = TLS_HANDSHAKE.name
    socat = run.get(name, SOCAT_TLS, "rate_per_s")
    rows = [
        [
            server,
            fmt(rate := run.get(name, server, "rate_per_s"), 0),
            times(ratio(rate, socat)),
            *(fmt(run.get(name, server, key), 2) for key in ("p50_ms", "p95_ms", "p99_ms")),
            negotiated(run, name, server),
        ]
        for server in run.servers(name)
    ]
    return table(TLS_HANDSHAKE, rows)


def tls_rtt_table(run: Run) -> str:
    rows = []
    for workload in TLS_RTT.workloads:
        name, tcp_name = workload.name, workload.name.removeprefix("tls-")
        socat = run.get(name, SOCAT_TLS, "p50_us")
        for server in run.servers(name):
            p50 = run.get(name, server, "p50_us")
            tcp = run.get(tcp_name, over_tcp(server), "p50_us") if server != SOCAT_TLS else None
            rows.append(
                [
                    server,
                    workload.parameters["label"],
                    *latency_cells(run, name, server),
                    times(ratio(p50, socat) if server != SOCAT_TLS else None),
                    times(ratio(p50, tcp)),
                ]
            )
    return table(TLS_RTT, rows)


def tls_native_table(run: Run) -> str:
    name = TLS_NATIVE.name
    socat = run.get(name, SOCAT_TLS, "p50_us")
    rows = [
        [
            server,
            *(fmt(run.get(name, server, key), 1) for key in ("avg_us", "p50_us", "p99_us", "max_us")),
            fmt(run.get(name, server, "count"), 0),
            times(ratio(run.get(name, server, "p50_us"), socat) if server != SOCAT_TLS else None),
        ]
        for server in run.servers(name)
    ]
    return table(TLS_NATIVE, rows)


def tls_bulk_table(run: Run) -> str:
    name = TLS_BULK.name
    socat = run.get(name, SOCAT_TLS, "mb_per_s")
    rows = []
    for server in run.servers(name):
        mb = run.get(name, server, "mb_per_s")
        tcp = run.get(BULK.name, over_tcp(server), "mb_per_s") if server != SOCAT_TLS else None
        rows.append(
            [
                server,
                fmt(mb, 0),
                spread(run.rounds(name, server, "mb_per_s")),
                times(ratio(mb, socat)),
                fmt(tcp, 0),
                times(ratio(mb, tcp)),
            ]
        )
    return table(TLS_BULK, rows)


def tls_load_table(run: Run) -> str:
    name = TLS_LOAD.name
    socat = run.get(name, SOCAT_TLS, "rate_per_s")
    rows = []
    for server in run.servers(name):
        result = run.results[(name, server)]
        rate = run.get(name, server, "rate_per_s")
        late = "" if result.get("handshakes_in_warmup", True) else " (handshakes ran into the window)"
        rows.append(
            [
                server,
                fmt(rate, 0) + late,
                times(ratio(rate, socat)),
                *(fmt(run.get(name, server, f"{key}_ms"), 2) for key in ("p50", "p90", "p99", "max")),
                fmt(run.get(name, server, "count"), 0),
                fmt(run.get(name, server, "server_cpu_us_per_rt"), 2),
                fmt(run.get(name, server, "handshake_p50_ms"), 1),
                errors(result),
            ]
        )
    return table(TLS_LOAD, rows)


MAKERS: dict[str, Callable[[Run], str]] = {
    SWEEP.key: sweep_table,
    LATENCY.key: latency_table,
    NATIVE.key: native_table,
    ORIGINAL.key: original_table,
    BULK.key: bulk_table,
    LOAD.key: load_table,
    CONNECTIONS.key: connection_table,
    TLS_HANDSHAKE.key: tls_handshake_table,
    TLS_RTT.key: tls_rtt_table,
    TLS_NATIVE.key: tls_native_table,
    TLS_BULK.key: tls_bulk_table,
    TLS_LOAD.key: tls_load_table,
}
