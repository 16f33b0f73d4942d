"""Round-trip latency: one connection, one message in flight, the echo read back in full.

The Python client (TCP_NODELAY, blocking socket with a timeout) times every round trip with
pytest-benchmark at each size of the catalogue's latency section. The original project's own
benchmark (16 KB x 1000 round trips, avg / p95 / MB/s) runs the same way. Then the 64 B round
trip is timed by the C++ client, so that it can be held against sockperf's own client and
server: the latency floor of this machine, which no echo server can beat.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.catalogue import LATENCY, NATIVE, ORIGINAL, SOCKPERF, Workload
from benchmarks.workloads import (
    Benchmark,
    Placement,
    Profile,
    native,
    ping_pong,
    prepare,
    sockperf_ping_pong,
)
from conformance.harness.servers import Address, ServerProcess
from conformance.harness.targets import Target


@pytest.mark.parametrize("workload", LATENCY.workloads, ids=lambda workload: workload.name)
def test_rtt(
    benchmark: Benchmark, server: Target, placement: Placement, profile: Profile, workload: Workload
) -> None:
    """Round trips of one message size on one connection, each echo checked."""
    prepare(benchmark, server, workload, placement, profile)
    ping_pong(benchmark, server, workload.parameters["size"], profile.rtt_rounds, profile.rtt_warmup_rounds)


def test_original_16kb(benchmark: Benchmark, server: Target, placement: Placement, profile: Profile) -> None:
    """The original project's benchmark: 16 KB x 1000 round trips, avg / p95 / MB/s."""
    (workload,) = ORIGINAL.workloads
    prepare(benchmark, server, workload, placement, profile)
    ping_pong(benchmark, server, workload.parameters["size"], profile.original_count, 0)


def test_rtt_native(
    benchmark: Benchmark, server: Target, cpp_client: Path, placement: Placement, profile: Profile
) -> None:
    """64 B round trips timed by the C++ client, comparable with sockperf's floor."""
    prepare(benchmark, server, NATIVE.workloads[0], placement, profile)
    native(benchmark, server, cpp_client, profile.native_count)


def test_rtt_sockperf(
    benchmark: Benchmark,
    sockperf_server: tuple[ServerProcess, Address],
    placement: Placement,
    profile: Profile,
) -> None:
    """sockperf's client against sockperf's server: the round-trip floor (64 B)."""
    server, address = sockperf_server
    workload = NATIVE.workloads[1]
    prepare(benchmark, SOCKPERF, workload, placement, profile)
    placement.pin_server(server.pid)
    result = benchmark.pedantic(
        sockperf_ping_pong,
        args=(address, profile.sockperf_seconds, workload.parameters["size"]),
        rounds=1,
        iterations=1,
    )
    benchmark.extra_info.update(result)
