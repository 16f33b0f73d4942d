"""TLS: what it costs to set up a secure connection, and to echo over one.

Every TLS target (the ``[NAME-tls]`` rows, started with the suite's trustme certificate) and
the third-party baseline socat-tls (socat's OPENSSL-LISTEN in front of ``cat``) in one run:

- Full handshakes: the C++ client (``--handshakes N``) opens N connections one after another,
  each a TCP connect, a full TLS 1.3 handshake (no tickets, nothing to resume), one checked
  64 B echo, close_notify and close: handshakes per second and the handshake's latency
  (connect start to handshake done), p50/p95/p99.
- Round trips over TLS: the Python ``PingPong`` of test_latency.py (64 B and 16 KiB, the
  handshake done before timing starts), and the 64 B round trip timed by the C++ client.
- Bulk throughput over TLS: the C++ stream client, every byte checked, MB/s at the median of
  the rounds, as in test_throughput.py.
- 100 connections ping-ponging 64 B over TLS (C++ load client), the handshakes kept out of the
  measured window by the warm-up.

Ratios to socat-tls are computed by benchmarks.report; there are no targets for TLS yet.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import pytest

from benchmarks.record import Benchmark, prepare
from benchmarks.test_latency import ping_pong
from benchmarks.workloads import (
    KiB,
    LoadRun,
    Placement,
    Profile,
    native_handshakes,
    native_round_trips,
    native_stream,
    run_load,
    tls_options,
)
from conformance.harness.targets import Target

HANDSHAKE_SIZE = 64
RTT_SIZES = {"64B": 64, "16KiB": 16 * KiB}
NATIVE_SIZE = 64
WRITE_SIZE = 64 * KiB
LOAD_CONNECTIONS = 100
LOAD_SIZE = 64
TLS_1_3 = "TLSv1.3"


def negotiated(result: dict[str, Any]) -> dict[str, Any]:
    """The TLS version and cipher the C++ client reports, checked to be TLS at all."""
    assert result.get("tls_version", "").startswith("TLS"), f"the C++ client did not speak TLS: {result}"
    return {"tls_version": result["tls_version"], "cipher": result["cipher"]}


def test_tls_handshake(
    benchmark: Benchmark, tls_server: Target, cpp_client: Path, placement: Placement, profile: Profile
) -> None:
    """Sequential full TLS 1.3 handshakes, each with one 64 B echo: handshakes/s and latency."""
    count = profile.tls_handshakes
    prepare(benchmark, tls_server, "tls-handshake", placement, profile, size=HANDSHAKE_SIZE, count=count)
    result = benchmark.pedantic(
        native_handshakes,
        args=(str(cpp_client), tls_server.address, count, HANDSHAKE_SIZE, tls_options(tls_server)),
        rounds=1,
        iterations=1,
    )
    assert result["handshakes"] == count, f"the C++ client reported {result}"
    assert result["tls_version"] == TLS_1_3, f"the handshake benchmark is about TLS 1.3: {result}"
    benchmark.extra_info.update(
        rate_per_s=result["rate_per_s"],
        **negotiated(result),
        **{f"{key}_ms": value for key, value in result["handshake_ms"].items()},
    )


@pytest.mark.parametrize("label", RTT_SIZES)
def test_tls_rtt(
    benchmark: Benchmark, tls_server: Target, placement: Placement, profile: Profile, label: str
) -> None:
    """Round trips of one message size on one TLS connection (Python client), each echo checked."""
    size = RTT_SIZES[label]
    prepare(benchmark, tls_server, f"tls-rtt-{label}", placement, profile, size=size)
    ping_pong(benchmark, tls_server, size, profile.rtt_rounds, profile.rtt_warmup_rounds)


def test_tls_rtt_native(
    benchmark: Benchmark, tls_server: Target, cpp_client: Path, placement: Placement, profile: Profile
) -> None:
    """64 B round trips over TLS timed by the C++ client (its handshake not included)."""
    prepare(benchmark, tls_server, "tls-rtt-64B-native", placement, profile, size=NATIVE_SIZE)
    count = profile.native_count
    result = benchmark.pedantic(
        native_round_trips,
        args=(str(cpp_client), tls_server.address, count, NATIVE_SIZE, tls_options(tls_server)),
        rounds=1,
        iterations=1,
    )
    assert result["count"] == count, f"the C++ client reported {result}"
    benchmark.extra_info.update(
        avg_ms=result["total_s"] / result["count"] * 1e3,
        client_handshake_ms=result["handshake_ms"],
        **negotiated(result),
        **{f"{key}_ms": value for key, value in result["rtt_ms"].items()},
    )


def test_tls_bulk(
    benchmark: Benchmark, tls_server: Target, cpp_client: Path, placement: Placement, profile: Profile
) -> None:
    """One TLS connection streams 64 MiB (8 MiB with --quick); MB/s at the median of the rounds."""
    size = profile.tls_bulk_bytes
    prepare(benchmark, tls_server, "tls-bulk-stream", placement, profile, size=size, write_size=WRITE_SIZE)
    options = tls_options(tls_server)
    streams: list[dict[str, Any]] = []

    def stream_once() -> None:
        streams.append(native_stream(str(cpp_client), tls_server.address, size, WRITE_SIZE, options))

    # Unrecorded warm-up, as in test_throughput.py: the first stream is often the slowest.
    native_stream(str(cpp_client), tls_server.address, size, WRITE_SIZE, options)
    benchmark.pedantic(stream_once, rounds=profile.tls_bulk_rounds, iterations=1)
    assert all(stream["bytes"] == size for stream in streams), f"the C++ client reported {streams}"
    benchmark.extra_info.update(
        client="cpp",
        mb_per_s=statistics.median(stream["mb_per_s"] for stream in streams),
        mb_per_s_rounds=[stream["mb_per_s"] for stream in streams],
        **negotiated(streams[0]),
    )


def test_tls_load(
    benchmark: Benchmark, tls_server: Target, cpp_client: Path, placement: Placement, profile: Profile
) -> None:
    """100 TLS connections ping-ponging 64 B for a fixed time (C++ load client), handshakes first."""
    group = f"tls-load-{LOAD_CONNECTIONS}"
    prepare(benchmark, tls_server, group, placement, profile, connections=LOAD_CONNECTIONS)
    server_pid = tls_server.server.pid if tls_server.server is not None else None
    options = tls_options(tls_server)
    runs: list[LoadRun] = []

    def load_once() -> None:
        runs.append(
            run_load(
                str(cpp_client),
                tls_server.address,
                server_pid,
                connections=LOAD_CONNECTIONS,
                size=LOAD_SIZE,
                profile=profile,
                warmup_s=profile.tls_load_warmup_s,
                options=options,
            )
        )

    benchmark.pedantic(load_once, rounds=profile.load_rounds, iterations=1)
    for run in runs:
        result = run.result
        assert result["errors"]["mismatch"] == 0, f"echo mismatches under load: {result}"
        assert result["handshakes"] == LOAD_CONNECTIONS, f"not every TLS handshake completed: {result}"
        assert result["round_trips"] > 0, f"no round trip on {LOAD_CONNECTIONS} TLS connections: {result}"
    # The median round by rate, kept whole, as in test_concurrency.py.
    typical = sorted(runs, key=lambda run: float(run.result["rate_per_s"]))[len(runs) // 2]
    result = typical.result
    benchmark.extra_info.update(
        rate_per_s=result["rate_per_s"],
        rate_per_s_rounds=[run.result["rate_per_s"] for run in runs],
        round_trips=result["round_trips"],
        errors=result["errors"],
        server_cpu_us_per_rt=typical.server_cpu_us_per_rt,
        # False: some handshakes ran into the measured window, which lowers the rate (the report says so).
        handshakes_in_warmup=result["handshake_ms"]["max"] < profile.tls_load_warmup_s * 1e3,
        **negotiated(result),
        **{f"{key}_ms": value for key, value in result["latency_ms"].items()},
        **{f"handshake_{key}_ms": value for key, value in result["handshake_ms"].items()},
    )
