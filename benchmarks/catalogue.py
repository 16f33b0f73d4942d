"""Every benchmark workload in one place: its name, title, parameters, placement, columns, intro.

The test modules take their names and sizes from here, and benchmarks.report takes its
sections, titles and column headers from here, so renaming a workload renames it on both sides
(a name typed twice once emptied cells silently). A workload's ``name`` is the group its results
are saved under; a section is one table of the report over one or more workloads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

KiB, MiB = 1 << 10, 1 << 20

# Which run each kind of figure is judged on, best first: a round trip compared with sockperf's
# is about one CPU doing both sides; rates and streams are about what the machine can do.
LATENCY_PLACEMENTS = ("same-cpu", "cross-cpu", "any")
THROUGHPUT_PLACEMENTS = ("any", "cross-cpu", "same-cpu")

# The references every table is held against: Node.js's echo, socat's (TCP and TLS), sockperf.
NODE, SOCAT, SOCAT_TLS, SOCKPERF = "node", "socat", "socat-tls", "sockperf"
TLS_SUFFIX = "-tls"  # a row over TLS: "cpp-tls" is cpp's server with --tls-cert/--tls-key

# Every latency table shows these (from HdrHistograms: merged, never averaged), in this order.
LATENCY_COLUMNS = ("p50", "p90", "p99", "p99.9", "max", "count")


@dataclass(frozen=True)
class Workload:
    """One benchmark: the group its results are saved under, and what it is run with."""

    name: str
    title: str
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Section:
    """One table of benchmarks.md: the workloads it shows, its columns, and how to read it."""

    key: str
    title: str
    intro: str
    placement: tuple[str, ...]
    columns: tuple[str, ...]
    workloads: tuple[Workload, ...]
    tls: bool = False

    def workload(self, **parameters: Any) -> Workload:
        """The section's one workload with these parameters (``size=64``)."""
        found = [w for w in self.workloads if parameters.items() <= w.parameters.items()]
        if len(found) != 1:
            raise KeyError(f"{self.key}: {len(found)} workloads match {parameters}")
        return found[0]

    @property
    def name(self) -> str:
        """The name of a one-workload section's workload."""
        (only,) = self.workloads
        return only.name


def _rtt(prefix: str, sizes: dict[str, int]) -> tuple[Workload, ...]:
    return tuple(
        Workload(f"{prefix}rtt-{label}", f"{label} round trip", {"label": label, "size": size})
        for label, size in sizes.items()
    )


RTT_SIZES = {"64B": 64, "1KiB": KiB, "16KiB": 16 * KiB, "64KiB": 64 * KiB}
TLS_RTT_SIZES = {"64B": 64, "16KiB": 16 * KiB}
LOAD_CONNECTIONS = (100, 1000, 10000)
LOAD_MESSAGE_SIZE = 64
NATIVE_SIZE = 64
# The original project's README: 16 KB x 1000 round trips against its async server.
PUBLISHED_ORIGINAL = {"avg_ms": 0.089, "p95_ms": 0.122, "mb_per_s": 172.61}
PUBLISHED_MACHINE = "Apple M2, the original project's async server (published figures)"

LATENCY = Section(
    key="latency",
    title="Round-trip latency, closed loop (Python client)",
    intro=(
        "One connection, one message in flight (closed loop: the next request waits for the echo), "
        "TCP_NODELAY, blocking socket; every echo checked. Percentiles in µs from an HdrHistogram of "
        "every round trip."
    ),
    placement=LATENCY_PLACEMENTS,
    columns=("server", "size", *LATENCY_COLUMNS, "p50 x node"),
    workloads=_rtt("", RTT_SIZES),
)
NATIVE = Section(
    key="native",
    title="64 B round trip, closed loop, native clients, against the floor",
    intro=(
        "The C++ client (`cpp/build/client --count N --size 64`) against each server, and sockperf's "
        "own client and server (`sockperf pp --tcp --full-rtt -m 64` against `sockperf sr --tcp`): "
        "the round trip of this machine's loopback with no echo logic at all. Both clients report "
        "p50/p99 (and the C++ client p95 and max) themselves; `-`: a figure the client does not print."
    ),
    placement=LATENCY_PLACEMENTS,
    columns=("server", "avg µs", "p50 µs", "p90 µs", "p99 µs", "max µs", "count", "p50 x sockperf"),
    workloads=(
        Workload("rtt-64B-native", "64 B round trip, C++ client", {"size": NATIVE_SIZE}),
        Workload("reference-sockperf", "sockperf ping-pong", {"size": NATIVE_SIZE}),
    ),
)
ORIGINAL = Section(
    key="original",
    title="The original project's benchmark: 16 KB x 1000 round trips (closed loop)",
    intro="MB/s = count x size / elapsed / 1e6, as the original client computes it.",
    placement=LATENCY_PLACEMENTS,
    columns=("server", "avg RTT ms", "p95 ms", "MB/s"),
    workloads=(Workload("original-16KB", "16 KB ping-pong", {"size": 16 * KiB}),),
)
BULK = Section(
    key="bulk",
    title="Bulk throughput (C++ stream client)",
    intro=(
        "One connection: `cpp/build/client --stream BYTES --chunk 65536` writes a pseudo-random "
        "stream in 64 KiB writes while it reads and checks the echo, then half-closes and reads to "
        "EOF. MB/s over the client's own time, median of the rounds (min-max of the rounds beside it)."
    ),
    placement=THROUGHPUT_PLACEMENTS,
    columns=("server", "MB/s", "rounds min-max", "x node"),
    workloads=(Workload("bulk-stream", "bulk stream", {"write_size": 64 * KiB}),),
)
SWEEP = Section(
    key="sweep",
    title="Latency against offered load (open loop, C++ client)",
    intro=(
        "`cpp/build/client --open-loop --rate R --connections N`: requests of 64 B sent on a fixed "
        "schedule whatever the server does, each timed from its intended send time (no coordinated "
        "omission), every echo checked. Offered load rises step by step past saturation. Knee: the "
        "highest achieved rate with p99 <= 1 ms, and with p99 <= 10 ms. A step where the client "
        "could not keep its own schedule (`kept up: no`) is the client's limit, not the server's. "
        "Latencies in µs, from the client's HdrHistogram of each step."
    ),
    placement=THROUGHPUT_PLACEMENTS,
    columns=(
        "server",
        "offered/s",
        "achieved/s",
        "kept up",
        *LATENCY_COLUMNS,
        "errors",
    ),
    workloads=(
        Workload("open-loop-sweep", "open-loop rate sweep", {"size": LOAD_MESSAGE_SIZE, "connections": 50}),
    ),
)
LOAD = Section(
    key="load",
    title="Concurrency, closed loop (C++ load client)",
    intro=(
        "Each connection keeps one 64 B message in flight for a fixed time (closed loop); the row "
        "is the median of the rounds by rate, min-max of the rounds beside it. Latency in ms as "
        "the client prints it (it reports no p99.9). Server CPU = user + system time of the "
        "server's process tree over the measured window / round trips."
    ),
    placement=THROUGHPUT_PLACEMENTS,
    columns=(
        "connections",
        "server",
        "round trips/s",
        "rounds min-max",
        "x node",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "count",
        "server CPU µs/RT",
        "errors",
    ),
    workloads=tuple(
        Workload(
            f"load-{count}",
            f"{count:,} connections",
            {"connections": count, "size": LOAD_MESSAGE_SIZE},
        )
        for count in LOAD_CONNECTIONS
    ),
)
CONNECTIONS = Section(
    key="connections",
    title="Connection rate (Python client)",
    intro="Connect, one 64 B echo, close, in a Python loop: the client's own cost is included.",
    placement=THROUGHPUT_PLACEMENTS,
    columns=("server", "connections/s", "x node"),
    workloads=(Workload("connect-echo-close", "connect, echo, close", {"size": LOAD_MESSAGE_SIZE}),),
)
TLS_HANDSHAKE = Section(
    key="tls-handshake",
    title="Full handshakes (C++ client)",
    intro=(
        "`cpp/build/client --handshakes N --tls`: N connections one after another, each a TCP "
        "connect, a full handshake (no tickets, nothing to resume), one checked 64 B echo, "
        "close_notify, close. Latency = connect start to handshake done. socat-tls forks a process "
        "per connection, and socat 1.7.4 answers the client's first ClientHello with a "
        "HelloRetryRequest (one more round trip): both are in its handshake latency."
    ),
    placement=THROUGHPUT_PLACEMENTS,
    columns=("server", "handshakes/s", "x socat-tls", "p50 ms", "p95 ms", "p99 ms", "TLS"),
    workloads=(Workload("tls-handshake", "full TLS handshakes", {"size": 64}),),
    tls=True,
)
TLS_RTT = Section(
    key="tls-rtt",
    title="Round trips over TLS, closed loop",
    intro=(
        "One TLS connection, the handshake done before timing starts: the Python client (as in the "
        "TCP latency section) at 64 B and 16 KiB, percentiles in µs from an HdrHistogram. "
        "`x tcp`: p50 against the same row's TCP figure."
    ),
    placement=LATENCY_PLACEMENTS,
    columns=("server", "size", *LATENCY_COLUMNS, "p50 x socat-tls", "p50 x tcp"),
    workloads=_rtt("tls-", TLS_RTT_SIZES),
    tls=True,
)
TLS_NATIVE = Section(
    key="tls-native",
    title="64 B round trip over TLS, closed loop (C++ client)",
    intro="`cpp/build/client --count N --size 64 --tls`, the handshake not included.",
    placement=LATENCY_PLACEMENTS,
    columns=("server", "avg µs", "p50 µs", "p99 µs", "max µs", "count", "p50 x socat-tls"),
    workloads=(Workload("tls-rtt-64B-native", "64 B round trip over TLS", {"size": NATIVE_SIZE}),),
    tls=True,
)
TLS_BULK = Section(
    key="tls-bulk",
    title="Bulk throughput over TLS (C++ stream client)",
    intro=(
        "`cpp/build/client --stream BYTES --chunk 65536 --tls`, every byte checked, MB/s of plaintext "
        "at the median of the rounds; next to it the same row's TCP bulk stream from this run."
    ),
    placement=THROUGHPUT_PLACEMENTS,
    columns=("server", "MB/s", "rounds min-max", "x socat-tls", "same row over TCP, MB/s", "x tcp"),
    workloads=(Workload("tls-bulk-stream", "bulk stream over TLS", {"write_size": 64 * KiB}),),
    tls=True,
)
TLS_LOAD = Section(
    key="tls-load",
    title="100 connections over TLS, closed loop (C++ load client)",
    intro=(
        "`cpp/build/client --load --connections 100 --tls`: all connections handshake at once during "
        "the warm-up (their p50 shown), then each keeps one 64 B message in flight for the measured "
        "window. Server CPU as in the concurrency section."
    ),
    placement=THROUGHPUT_PLACEMENTS,
    columns=(
        "server",
        "round trips/s",
        "x socat-tls",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "count",
        "server CPU µs/RT",
        "100 handshakes p50 ms",
        "errors",
    ),
    workloads=(
        Workload("tls-load-100", "100 TLS connections", {"connections": 100, "size": LOAD_MESSAGE_SIZE}),
    ),
    tls=True,
)

# The report's order; the headline (the open-loop sweep) first.
SECTIONS = (SWEEP, LATENCY, NATIVE, ORIGINAL, BULK, LOAD, CONNECTIONS)
TLS_SECTIONS = (TLS_HANDSHAKE, TLS_RTT, TLS_NATIVE, TLS_BULK, TLS_LOAD)
WORKLOADS = {w.name: w for section in (*SECTIONS, *TLS_SECTIONS) for w in section.workloads}
