"""Round-trip latency: one connection, one message in flight, the echo read back in full.

The Python client (TCP_NODELAY, blocking socket with a timeout) times every round trip with
pytest-benchmark: 64 B, 1 KiB, 16 KiB and 64 KiB. The original project's own benchmark (16 KB
x 1000 round trips, avg / p95 / MB/s) runs the same way. Then the 64 B round trip is timed by
the C++ client, so that it can be held against sockperf's own client and server: the latency
floor of this machine, which no echo server can beat.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from benchmarks.record import Benchmark, prepare, record_latency
from benchmarks.workloads import (
    KiB,
    PingPong,
    Placement,
    Profile,
    native_round_trips,
    sockperf_ping_pong,
)
from conformance.harness.servers import Address, ServerProcess
from conformance.harness.targets import Target

SIZES = {"64B": 64, "1KiB": KiB, "16KiB": 16 * KiB, "64KiB": 64 * KiB}
ORIGINAL_SIZE = 16 * KiB
NATIVE_SIZE = 64


def ping_pong(benchmark: Benchmark, server: Target, size: int, rounds: int, warmup: int) -> None:
    connection = PingPong(server.address, size)
    try:
        benchmark.pedantic(connection.round_trip, rounds=rounds, warmup_rounds=warmup, iterations=1)
    finally:
        connection.close()
    record_latency(benchmark, size)


def rtt(benchmark: Benchmark, server: Target, placement: Placement, profile: Profile, label: str) -> None:
    prepare(benchmark, server, f"rtt-{label}", placement, profile, size=SIZES[label])
    ping_pong(benchmark, server, SIZES[label], profile.rtt_rounds, profile.rtt_warmup_rounds)


def original(benchmark: Benchmark, server: Target, placement: Placement, profile: Profile) -> None:
    prepare(benchmark, server, "original-16KB", placement, profile, size=ORIGINAL_SIZE)
    ping_pong(benchmark, server, ORIGINAL_SIZE, profile.original_count, 0)


def native(
    benchmark: Benchmark, server: Target, client: Path, count: int, options: Sequence[str] = ()
) -> dict[str, Any]:
    """64 B round trips timed by the C++ client (``options``: TLS); records them, returns its JSON."""
    result: dict[str, Any] = benchmark.pedantic(
        native_round_trips,
        args=(str(client), server.address, count, NATIVE_SIZE, options),
        rounds=1,
        iterations=1,
    )
    assert result["count"] == count, f"the C++ client reported {result}"
    benchmark.extra_info.update(
        avg_ms=result["total_s"] / result["count"] * 1e3,
        **{f"{key}_ms": value for key, value in result["rtt_ms"].items()},
    )
    return result


@pytest.mark.parametrize("label", SIZES)
def test_rtt(
    benchmark: Benchmark, server: Target, placement: Placement, profile: Profile, label: str
) -> None:
    """Round trips of one message size on one connection, each echo checked."""
    rtt(benchmark, server, placement, profile, label)


def test_original_16kb(benchmark: Benchmark, server: Target, placement: Placement, profile: Profile) -> None:
    """The original project's benchmark: 16 KB x 1000 round trips, avg / p95 / MB/s."""
    original(benchmark, server, placement, profile)


def test_rtt_native(
    benchmark: Benchmark, server: Target, cpp_client: Path, placement: Placement, profile: Profile
) -> None:
    """64 B round trips timed by the C++ client, comparable with sockperf's floor."""
    prepare(benchmark, server, "rtt-64B-native", placement, profile, size=NATIVE_SIZE)
    native(benchmark, server, cpp_client, profile.native_count)


def test_rtt_sockperf(
    benchmark: Benchmark,
    sockperf_server: tuple[ServerProcess, Address],
    placement: Placement,
    profile: Profile,
) -> None:
    """sockperf's client against sockperf's server: the round-trip floor (64 B)."""
    server, address = sockperf_server
    prepare(benchmark, "sockperf", "reference-sockperf", placement, profile, size=NATIVE_SIZE)
    placement.pin_server(server.pid)
    result = benchmark.pedantic(
        sockperf_ping_pong, args=(address, profile.sockperf_seconds, NATIVE_SIZE), rounds=1, iterations=1
    )
    benchmark.extra_info.update(result)
