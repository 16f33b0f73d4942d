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

from pathlib import Path

import pytest

from benchmarks.catalogue import TLS_BULK, TLS_HANDSHAKE, TLS_LOAD, TLS_NATIVE, TLS_RTT, Workload
from benchmarks.workloads import (
    Benchmark,
    Placement,
    Profile,
    measure_bulk,
    measure_load,
    native,
    native_handshakes,
    negotiated,
    ping_pong,
    prepare,
    tls_options,
)
from conformance.harness.targets import Target

TLS_1_3 = "TLSv1.3"


def test_tls_handshake(
    benchmark: Benchmark, tls_server: Target, cpp_client: Path, placement: Placement, profile: Profile
) -> None:
    """Sequential full TLS 1.3 handshakes, each with one 64 B echo: handshakes/s and latency."""
    count = profile.tls_handshakes
    (workload,) = TLS_HANDSHAKE.workloads
    prepare(benchmark, tls_server, workload, placement, profile, count=count)
    size = workload.parameters["size"]
    result = benchmark.pedantic(
        native_handshakes,
        args=(str(cpp_client), tls_server.address, count, size, tls_options(tls_server)),
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


@pytest.mark.parametrize("workload", TLS_RTT.workloads, ids=lambda workload: workload.name)
def test_tls_rtt(
    benchmark: Benchmark, tls_server: Target, placement: Placement, profile: Profile, workload: Workload
) -> None:
    """Round trips of one message size on one TLS connection (Python client), each echo checked."""
    prepare(benchmark, tls_server, workload, placement, profile)
    size = workload.parameters["size"]
    ping_pong(benchmark, tls_server, size, profile.rtt_rounds, profile.rtt_warmup_rounds)


def test_tls_rtt_native(
    benchmark: Benchmark, tls_server: Target, cpp_client: Path, placement: Placement, profile: Profile
) -> None:
    """64 B round trips over TLS timed by the C++ client (its handshake not included)."""
    prepare(benchmark, tls_server, TLS_NATIVE.workloads[0], placement, profile)
    result = native(benchmark, tls_server, cpp_client, profile.native_count, tls_options(tls_server))
    benchmark.extra_info.update(client_handshake_ms=result["handshake_ms"], **negotiated(result))


def test_tls_bulk(
    benchmark: Benchmark, tls_server: Target, cpp_client: Path, placement: Placement, profile: Profile
) -> None:
    """One TLS connection streams 64 MiB (8 MiB with --quick); MB/s at the median of the rounds."""
    size = profile.tls_bulk_bytes
    prepare(benchmark, tls_server, TLS_BULK.workloads[0], placement, profile, size=size)
    options = tls_options(tls_server)
    streams = measure_bulk(
        benchmark, tls_server, cpp_client, size, rounds=profile.tls_bulk_rounds, options=options
    )
    benchmark.extra_info.update(negotiated(streams[0]))


def test_tls_load(
    benchmark: Benchmark, tls_server: Target, cpp_client: Path, placement: Placement, profile: Profile
) -> None:
    """100 TLS connections ping-ponging 64 B for a fixed time (C++ load client), handshakes first."""
    (workload,) = TLS_LOAD.workloads
    connections = workload.parameters["connections"]
    prepare(benchmark, tls_server, workload, placement, profile)
    typical, runs = measure_load(
        benchmark,
        tls_server,
        cpp_client,
        profile,
        connections,
        warmup_s=profile.tls_load_warmup_s,
        options=tls_options(tls_server),
    )
    for run in runs:
        assert run.result["handshakes"] == connections, f"not every TLS handshake completed: {run.result}"
    result = typical.result
    benchmark.extra_info.update(
        # False: some handshakes ran into the measured window, which lowers the rate (the report says so).
        handshakes_in_warmup=result["handshake_ms"]["max"] < profile.tls_load_warmup_s * 1e3,
        **negotiated(result),
        **{f"handshake_{key}_ms": value for key, value in result["handshake_ms"].items()},
    )
