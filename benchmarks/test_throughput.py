"""Bulk throughput: one connection streams 256 MiB in 64 KiB writes while it reads the echo.

The C++ client (``cpp/build/client --stream``) writes and reads at the same time, so the
server's flow control, not the client, sets the pace, and checks every byte of the echo
against the pseudo-random stream it sent. A Python client tops out near the servers' own
speed (about 0.5-0.6 GB/s here), which made every server look alike; the C++ client does
not. MB/s counts the echoed bytes once, in decimal megabytes, as the original project did,
over the client's own time from its first write to the server's EOF.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.catalogue import BULK
from benchmarks.workloads import Benchmark, Placement, Profile, measure_bulk, prepare
from conformance.harness.targets import Target


def test_bulk(
    benchmark: Benchmark, server: Target, cpp_client: Path, placement: Placement, profile: Profile
) -> None:
    """256 MiB on one connection (32 MiB with --quick); MB/s at the median of the rounds."""
    size = profile.bulk_bytes
    prepare(benchmark, server, BULK.workloads[0], placement, profile, size=size)
    measure_bulk(benchmark, server, cpp_client, size, rounds=profile.bulk_rounds)
