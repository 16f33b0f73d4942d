"""Bulk throughput: one connection streams 256 MiB in 64 KiB writes while it reads the echo.

The C++ client (``cpp/build/client --stream``) writes and reads at the same time, so the
server's flow control, not the client, sets the pace, and checks every byte of the echo
against the pseudo-random stream it sent. A Python client tops out near the servers' own
speed (about 0.5-0.6 GB/s here), which made every server look alike; the C++ client does
not. MB/s counts the echoed bytes once, in decimal megabytes, as the original project did,
over the client's own time from its first write to the server's EOF.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.record import Benchmark, prepare
from benchmarks.workloads import KiB, Placement, Profile, native_stream
from conformance.harness.targets import Target

WRITE_SIZE = 64 * KiB


def measure_bulk(
    benchmark: Benchmark, server: Target, client: Path, size: int, *, rounds: int, options: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """Stream ``size`` bytes ``rounds`` times (after an unrecorded warm-up), every byte checked;
    records MB/s at the median round; returns the client's reports (``options``: TLS)."""
    streams: list[dict[str, Any]] = []

    def stream_once() -> None:
        streams.append(native_stream(str(client), server.address, size, WRITE_SIZE, options))

    # Unrecorded warm-up: in trials the first stream against a server was often the slowest by
    # far (1.1-2.0 against 3.0-3.6 GB/s, every server alike); the rounds are timed after it.
    native_stream(str(client), server.address, size, WRITE_SIZE, options)
    benchmark.pedantic(stream_once, rounds=rounds, iterations=1)
    assert all(stream["bytes"] == size for stream in streams), f"the C++ client reported {streams}"
    benchmark.extra_info.update(
        client="cpp",
        mb_per_s=statistics.median(stream["mb_per_s"] for stream in streams),
        mb_per_s_rounds=[stream["mb_per_s"] for stream in streams],
    )
    return streams


def test_bulk(
    benchmark: Benchmark, server: Target, cpp_client: Path, placement: Placement, profile: Profile
) -> None:
    """256 MiB on one connection (32 MiB with --quick); MB/s at the median of the rounds."""
    size = profile.bulk_bytes
    prepare(benchmark, server, "bulk-stream", placement, profile, size=size, write_size=WRITE_SIZE)
    measure_bulk(benchmark, server, cpp_client, size, rounds=profile.bulk_rounds)
