"""Many connections at once, many one after another, and offered load rising past saturation.

Concurrency: 100, 1,000 and 10,000 connections each keep one 64 B message in flight for a fixed
time (closed loop), driven by the C++ load client (cpp/build/client --load) so that Python is
never what is measured. Recorded: round trips per second, latency, errors by kind, and the
server's CPU time (user + system, its whole process tree) per round trip over the measured
window, all from the median of the rounds (three in the full profile) by rate.

Open-loop sweep: the C++ client sends at a fixed total rate whatever the server does, each
request timed from its intended send time, one step per offered rate of the profile.

Connection rate: connect, one 64 B echo, close, in a loop. This one is driven from Python, so
it measures the server plus a Python client's connect/close cost; it is comparable between
servers in the same run, not with figures from native clients.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.catalogue import CONNECTIONS, LOAD, SWEEP, Workload
from benchmarks.workloads import (
    Benchmark,
    Placement,
    Profile,
    connection_rate,
    measure_load,
    prepare,
    rate_sweep,
)
from conformance.harness.targets import Target

# Rows that are not expected to hold every connection count: one thread per connection costs
# a thread stack and a scheduler entry each; the threaded server is sized for 1,000.
CONNECTION_LIMITS = {"threaded": 1000}


@pytest.mark.parametrize("workload", LOAD.workloads, ids=lambda workload: workload.name)
def test_load(
    benchmark: Benchmark,
    server: Target,
    *,
    cpp_client: Path,
    placement: Placement,
    profile: Profile,
    workload: Workload,
) -> None:
    """N connections ping-ponging 64 B for a fixed time (C++ load client)."""
    connections = workload.parameters["connections"]
    if connections > (limit := CONNECTION_LIMITS.get(server.name, connections)):
        pytest.skip(f"{server.name} is only expected to hold {limit} connections (CONNECTION_LIMITS)")
    prepare(benchmark, server, workload, placement, profile)
    measure_load(benchmark, server, cpp_client, profile, connections)


def test_open_loop_sweep(
    benchmark: Benchmark, sweep_server: Target, cpp_client: Path, placement: Placement, profile: Profile
) -> None:
    """Offered load from low to past saturation, open loop (C++ client): latency per step."""
    rates = list(profile.sweep_rates)
    prepare(benchmark, sweep_server, SWEEP.workloads[0], placement, profile, rates=rates)
    steps = rate_sweep(benchmark, sweep_server, cpp_client, profile)
    assert len(steps) == len(profile.sweep_rates), f"the sweep ran {len(steps)} steps: {steps}"


def test_connection_rate(
    benchmark: Benchmark, server: Target, placement: Placement, profile: Profile
) -> None:
    """Connect, one echo, close: connections per second (Python client)."""
    prepare(benchmark, server, CONNECTIONS.workloads[0], placement, profile, client="python")
    connection_rate(benchmark, profile, server.address)
