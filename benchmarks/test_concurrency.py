"""Many connections at once, and many connections one after another.

Concurrency: 100, 1,000 and 10,000 connections each keep one 64 B message in flight for a fixed
time, driven by the C++ load client (cpp/build/client --load) so that Python is never what is
measured. Recorded: round trips per second, latency p50/p99, errors by kind, and the server's
CPU time (user + system, its whole process tree) per round trip over the measured window, all
from the median of the rounds (three in the full profile) by rate.

Connection rate: connect, one 64 B echo, close, in a loop. This one is driven from Python, so
it measures the server plus a Python client's connect/close cost; it is comparable between
servers in the same run, not with figures from native clients.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from benchmarks.record import Benchmark, prepare, round_samples
from benchmarks.workloads import LoadRun, Placement, Profile, connect_echo_close, run_load, seeded_payload
from conformance.harness.targets import Target

CONNECTIONS = (100, 1000, 10000)
MESSAGE_SIZE = 64
# Rows that are not expected to hold every connection count: one thread per connection costs
# a thread stack and a scheduler entry each; the threaded server is sized for 1,000.
CONNECTION_LIMITS = {"threaded": 1000}


def load(
    benchmark: Benchmark,
    server: Target,
    *,
    client: Path,
    placement: Placement,
    profile: Profile,
    connections: int,
) -> None:
    if connections > (limit := CONNECTION_LIMITS.get(server.name, connections)):
        pytest.skip(f"{server.name} is only expected to hold {limit} connections (CONNECTION_LIMITS)")
    prepare(benchmark, server, f"load-{connections}", placement, profile, connections=connections)
    measure_load(benchmark, server, client, profile, connections)


def measure_load(
    benchmark: Benchmark,
    server: Target,
    client: Path,
    profile: Profile,
    connections: int,
    *,
    warmup_s: float | None = None,
    options: Sequence[str] = (),
) -> tuple[LoadRun, list[LoadRun]]:
    """The load rounds (``options``: TLS; ``warmup_s``: instead of the profile's), each checked;
    records the median round by rate; returns it and all the rounds, in order."""
    server_pid = server.server.pid if server.server is not None else None
    runs: list[LoadRun] = []

    def load_once() -> None:
        runs.append(
            run_load(
                str(client),
                server.address,
                server_pid,
                connections=connections,
                size=MESSAGE_SIZE,
                profile=profile,
                warmup_s=warmup_s,
                options=options,
            )
        )

    benchmark.pedantic(load_once, rounds=profile.load_rounds, iterations=1)
    for run in runs:
        assert run.result["errors"]["mismatch"] == 0, f"echo mismatches under load: {run.result}"
        assert run.result["round_trips"] > 0, f"no round trip on {connections} connections: {run.result}"
    # On a shared machine one round can be slowed by a neighbour: keep the median round whole
    # (its rate, latencies and CPU cost belong together) and the rates of all of them.
    typical = sorted(runs, key=lambda run: float(run.result["rate_per_s"]))[len(runs) // 2]
    result = typical.result
    benchmark.extra_info.update(
        rate_per_s=result["rate_per_s"],
        rate_per_s_rounds=[run.result["rate_per_s"] for run in runs],
        round_trips=result["round_trips"],
        errors=result["errors"],
        server_cpu_us_per_rt=typical.server_cpu_us_per_rt,
        **{f"{key}_ms": value for key, value in result["latency_ms"].items()},
    )
    return typical, runs


def connection_rate(benchmark: Benchmark, server: Target, placement: Placement, profile: Profile) -> None:
    prepare(benchmark, server, "connect-echo-close", placement, profile, size=MESSAGE_SIZE, client="python")
    message = seeded_payload(MESSAGE_SIZE, 7)
    benchmark.pedantic(
        connect_echo_close,
        args=(server.address, message),
        rounds=profile.connection_rounds,
        warmup_rounds=10,
        iterations=1,
    )
    if samples := round_samples(benchmark):
        benchmark.extra_info["connections_per_s"] = len(samples) / sum(samples)


@pytest.mark.parametrize("connections", CONNECTIONS)
def test_load(
    benchmark: Benchmark,
    server: Target,
    *,
    cpp_client: Path,
    placement: Placement,
    profile: Profile,
    connections: int,
) -> None:
    """N connections ping-ponging 64 B for a fixed time (C++ load client)."""
    load(benchmark, server, client=cpp_client, placement=placement, profile=profile, connections=connections)


def test_connection_rate(
    benchmark: Benchmark, server: Target, placement: Placement, profile: Profile
) -> None:
    """Connect, one echo, close: connections per second (Python client)."""
    connection_rate(benchmark, server, placement, profile)
