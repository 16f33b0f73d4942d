"""Bulk throughput: one connection streams 64 MiB in 64 KiB writes while it reads the echo.

The client writes and reads at the same time (the conformance harness's duplex loop), so the
server's flow control, not the client, sets the pace; the whole echo is compared with what was
sent. MB/s counts the echoed bytes once, in decimal megabytes, as the original project did.
"""

from __future__ import annotations

import functools

from benchmarks.record import Benchmark, prepare, round_samples
from benchmarks.workloads import KiB, Placement, Profile, seeded_payload
from conformance.harness.duplex import exchange
from conformance.harness.streams import assert_same_stream
from conformance.harness.targets import Target

WRITE_SIZE = 64 * KiB
SEED = 2024
STREAM_TIMEOUT_S = 120.0


@functools.cache
def payload(size: int) -> bytes:
    return seeded_payload(size, SEED)


def stream_once(server: Target, data: bytes) -> None:
    outcome = exchange(server.address, data, chunk_sizes=[WRITE_SIZE], timeout=STREAM_TIMEOUT_S)
    assert_same_stream(
        data,
        outcome.received,
        what=f"a {len(data)} B stream to {server.name}",
        replay=f"benchmarks.workloads.seeded_payload({len(data)}, {SEED}) in {WRITE_SIZE} B writes",
    )
    assert outcome.eof, "the server did not close its side after the client's half-close"


def bulk(benchmark: Benchmark, server: Target, placement: Placement, profile: Profile) -> None:
    data = payload(profile.bulk_bytes)
    prepare(benchmark, server, "bulk-stream", placement, profile, size=len(data), write_size=WRITE_SIZE)
    benchmark.pedantic(stream_once, args=(server, data), rounds=profile.bulk_rounds, iterations=1)
    if samples := round_samples(benchmark):
        benchmark.extra_info["mb_per_s"] = len(data) / sorted(samples)[len(samples) // 2] / 1e6


def test_bulk(benchmark: Benchmark, target: Target, placement: Placement, profile: Profile) -> None:
    """64 MiB on one connection (8 MiB with --quick); MB/s at the median round."""
    bulk(benchmark, target, placement, profile)


def test_bulk_node(benchmark: Benchmark, node: Target, placement: Placement, profile: Profile) -> None:
    """The same stream through the Node.js baseline."""
    bulk(benchmark, node, placement, profile)
