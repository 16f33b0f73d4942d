"""The workloads the benchmarks time, and the measurements around them.

Python drives the latency, original 16 KB and connection-rate workloads (pytest-benchmark
times each round trip or connection); the bulk stream, the concurrency workload and the
native round-trip row run the C++ client (``cpp/build/client``) so that Python is never what
is measured there; sockperf's own ping-pong is the latency floor. The TLS workloads use the
same clients over TLS (``tls_options``), plus the C++ client's sequential full handshakes
(``native_handshakes``). Every echo is checked: a wrong echo fails.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import resource
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import psutil
from hdrh.histogram import HdrHistogram

from benchmarks.catalogue import LOAD_MESSAGE_SIZE, NATIVE_SIZE, SWEEP, KiB, MiB, Workload
from conformance.harness.duplex import connect
from conformance.harness.payloads import assert_same_stream
from conformance.harness.servers import Address, ServerProcess
from conformance.harness.targets import Target, TargetSpec

SOCKET_TIMEOUT_S = 30.0
WRITE_SIZE = 64 * KiB  # the bulk stream's writes
CPU_SAMPLE_INTERVAL_S = 0.05
CLIENT_SLACK_S = 120.0  # beyond its own duration, how long a client run may take (10,000 connects)

# The Node.js baseline: the echo every Node tutorial writes. The error handler only keeps a
# client's reset from killing the process (an unhandled 'error' event); it costs nothing.
NODE_COMMAND = (
    "node -e \"require('net').createServer(s => { s.on('error', () => s.destroy()); s.pipe(s); })"
    ".listen({port}, '{host}')\""
)
# The TLS baseline: socat terminating TLS (OpenSSL, one process per connection) in front of
# ``cat``, which echoes the decrypted stream. {certkey}: the suite's test certificate (trustme).
# - EXEC:cat, not PIPE: socat's PIPE deadlocks on itself in a bulk TLS stream (4 of 5 streams
#   hung in trials), since one process then both fills and drains the pipe through OpenSSL.
# - nodelay: without it Nagle holds back the first echo of each connection by about 40 ms,
#   capping socat at about 20 handshakes per second.
# - backlog=1024: the default of 5 drops handshakes when 100 connections arrive at once (--load).
# Its handshakes are slow by design: a fork per connection, and socat 1.7.4 answers OpenSSL's
# default ClientHello with a HelloRetryRequest (seen in strace), one more round trip each.
SOCAT_TLS_COMMAND = (
    "socat OPENSSL-LISTEN:{port},bind={host},reuseaddr,fork,backlog=1024,cert={certkey},verify=0,nodelay"
    " EXEC:cat"
)
# The other TCP reference of the open-loop sweep: socat's own echo, a process per connection
# (fork) copying the socket into itself (PIPE). nodelay: no Nagle delay on small echoes.
SOCAT_COMMAND = "socat TCP-LISTEN:{port},bind={host},reuseaddr,fork,backlog=1024,nodelay PIPE"
SOCKPERF_SERVER_COMMAND = "sockperf sr --tcp -i {host} -p {port}"


@dataclass(frozen=True, kw_only=True)
class Profile:
    """How long each workload runs: the full run, or the quick profile that keeps CI honest."""

    name: str
    rtt_rounds: int
    rtt_warmup_rounds: int
    original_count: int  # the original project's 16 KB ping-pong (1000 in its README)
    bulk_bytes: int
    bulk_rounds: int
    connection_rounds: int
    native_count: int
    sockperf_seconds: int
    load_duration_s: float
    load_warmup_s: float
    load_rounds: int  # the median round is kept
    tls_handshakes: int  # sequential full TLS handshakes (C++ client --handshakes)
    tls_bulk_bytes: int
    tls_bulk_rounds: int
    tls_load_warmup_s: float  # covers the 100 handshakes that come before the measured window
    sweep_rates: tuple[int, ...]  # the open-loop sweep's offered loads, requests/s in total
    sweep_step_s: float  # each step's measured time
    sweep_warmup_s: float


FULL = Profile(
    name="full",
    rtt_rounds=3000,
    rtt_warmup_rounds=200,
    original_count=1000,
    bulk_bytes=256 * MiB,
    bulk_rounds=7,
    connection_rounds=2000,
    native_count=20000,
    sockperf_seconds=3,
    load_duration_s=3.0,
    load_warmup_s=0.5,
    load_rounds=3,
    tls_handshakes=2000,
    tls_bulk_bytes=64 * MiB,
    tls_bulk_rounds=5,
    tls_load_warmup_s=2.0,
    sweep_rates=(2000, 5000, 10000, 20000, 30000, 40000, 60000, 80000),
    sweep_step_s=3.0,
    sweep_warmup_s=0.5,
)
QUICK = Profile(
    name="quick",
    rtt_rounds=200,
    rtt_warmup_rounds=20,
    original_count=200,
    bulk_bytes=32 * MiB,
    bulk_rounds=2,
    connection_rounds=200,
    native_count=2000,
    sockperf_seconds=1,
    load_duration_s=1.0,
    load_warmup_s=0.2,
    load_rounds=1,
    tls_handshakes=100,
    tls_bulk_bytes=8 * MiB,
    tls_bulk_rounds=1,
    tls_load_warmup_s=1.0,
    sweep_rates=(5000, 40000),
    sweep_step_s=0.5,
    sweep_warmup_s=0.1,
)


def seeded_payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


# HdrHistogram range and precision, as the C++ client's: 1 µs to 60 s, 3 significant digits.
HISTOGRAM_RANGE_US = (1, 60_000_000)
HISTOGRAM_DIGITS = 3
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99.9": 99.9}


def new_histogram() -> HdrHistogram:
    return HdrHistogram(*HISTOGRAM_RANGE_US, HISTOGRAM_DIGITS)


def histogram_of(samples_s: Sequence[float]) -> HdrHistogram:
    """An HdrHistogram (µs) of durations in seconds."""
    histogram = new_histogram()
    for sample in samples_s:
        histogram.record_value(min(HISTOGRAM_RANGE_US[1], max(1, round(sample * 1e6))))
    return histogram


def summary_us(histogram: HdrHistogram) -> dict[str, Any]:
    """p50/p90/p99/p99.9/max in µs, the sample count and the encoded histogram (to merge later)."""
    summary: dict[str, Any] = {
        f"{key}_us": float(histogram.get_value_at_percentile(pct)) for key, pct in PERCENTILES.items()
    }
    summary["max_us"] = float(histogram.get_max_value())
    summary["count"] = histogram.get_total_count()
    summary["histogram"] = histogram.encode().decode("ascii")
    return summary


class PingPong:
    """One TCP_NODELAY connection with a blocking socket: send a message, read its whole echo.

    Two seeded payloads alternate, so a server that sends back a stale buffer is caught.
    """

    def __init__(self, address: Address, size: int, seed: int = 0) -> None:
        self.sock = connect(address, SOCKET_TIMEOUT_S, nodelay=True)
        self.size = size
        self._payloads = itertools.cycle([seeded_payload(size, seed), seeded_payload(size, seed + 1)])
        self._echo = bytearray(size)
        self._view = memoryview(self._echo)
        self.trips = 0

    def round_trip(self) -> None:
        payload = next(self._payloads)
        self.sock.sendall(payload)
        got = 0
        while got < self.size:
            count = self.sock.recv_into(self._view[got:])
            if count == 0:
                raise AssertionError(
                    f"the server closed the connection after {got} of {self.size} echoed bytes "
                    f"in round trip {self.trips + 1}"
                )
            got += count
        self.trips += 1
        if self._echo != payload:
            assert_same_stream(payload, bytes(self._echo), what=f"round trip {self.trips} of {self.size} B")

    def close(self) -> None:
        self.sock.close()


def connect_echo_close(address: Address, payload: bytes) -> None:
    """One short-lived connection: connect, one echo, close."""
    with connect(address, SOCKET_TIMEOUT_S, nodelay=True) as sock:
        sock.sendall(payload)
        echo = b""
        while len(echo) < len(payload) and (chunk := sock.recv(len(payload) - len(echo))):
            echo += chunk
    assert_same_stream(payload, echo, what="a short-lived connection")


# --- placement -------------------------------------------------------------------------------

PLACEMENTS = ("any", "same-cpu", "cross-cpu")


@dataclass(frozen=True)
class Placement:
    """Which CPUs the server and the client (this process and the clients it starts) run on."""

    name: str
    server_cpus: frozenset[int] | None
    client_cpus: frozenset[int] | None

    @classmethod
    def choose(cls, name: str) -> Placement:
        cpus = sorted(os.sched_getaffinity(0))
        if name == "any":
            return cls(name, None, None)
        if name == "same-cpu":
            return cls(name, frozenset(cpus[-1:]), frozenset(cpus[-1:]))
        if len(cpus) < 2:
            raise ValueError(f"--placement cross-cpu needs two CPUs; this process may use {cpus}")
        return cls(name, frozenset(cpus[:1]), frozenset(cpus[1:2]))

    def pin_server(self, pid: int | None) -> None:
        """Pin every thread of the server's process tree (threads it creates later inherit)."""
        if self.server_cpus is None or pid is None:
            return
        for process in process_tree(pid):
            try:
                for thread in process.threads():
                    os.sched_setaffinity(thread.id, self.server_cpus)
            except (psutil.NoSuchProcess, ProcessLookupError):
                continue  # a child that finished meanwhile

    def describe(self) -> dict[str, Any]:
        def cpus(value: frozenset[int] | None) -> list[int] | str:
            return sorted(value) if value is not None else "any"

        return {
            "placement": self.name,
            "server_cpus": cpus(self.server_cpus),
            "client_cpus": cpus(self.client_cpus),
        }


def process_tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU of the process tree, including children it has already reaped."""
    total = 0.0
    for process in process_tree(pid):
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def run_queue_wait_seconds(pid: int) -> float:
    """Time the threads of the process tree spent runnable but waiting for a CPU (the second
    field of /proc/PID/task/TID/schedstat, in ns; psutil does not expose it). A step whose tail
    latency comes from this wait is limited by the machine, not by the work of either side."""
    total_ns = 0
    for process in process_tree(pid):
        for task in Path(f"/proc/{process.pid}/task").glob("*/schedstat"):
            try:
                total_ns += int(task.read_text().split()[1])
            except (OSError, IndexError, ValueError):
                continue  # the thread ended between the listing and the read
    return total_ns / 1e9


# --- the C++ client and sockperf -------------------------------------------------------------


class ClientError(AssertionError):
    """An external client failed; the message shows its command line and output."""


def _explain(argv: list[str], result: subprocess.CompletedProcess[str], problem: str) -> str:
    return (
        f"{problem}\n  command: {' '.join(argv)}"
        f"\n  stdout: {result.stdout[-2000:]}\n  stderr: {result.stderr[-2000:]}"
    )


def _json_line(argv: list[str], result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise ClientError(_explain(argv, result, f"no JSON result (exit status {result.returncode})"))
    parsed: dict[str, Any] = json.loads(lines[-1])
    return parsed


def native_round_trips(
    client: str, address: Address, count: int, size: int, options: Sequence[str] = ()
) -> dict[str, Any]:
    """``client --count N --size B --json``: one connection, N verified round trips, in C++.

    ``options``: more client options, e.g. ``tls_options(target)``."""
    argv = [client, "--host", address.host, "--port", str(address.port), "--count", str(count)]
    argv += ["--size", str(size), "--json", *options]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=CLIENT_SLACK_S, check=False)
    if result.returncode != 0:
        raise ClientError(_explain(argv, result, f"the C++ client exited {result.returncode}"))
    return _json_line(argv, result)


def native_stream(
    client: str, address: Address, size: int, chunk: int, options: Sequence[str] = ()
) -> dict[str, Any]:
    """``client --stream BYTES --chunk C``: one connection, every byte of the echo verified, in C++."""
    argv = [client, "--host", address.host, "--port", str(address.port), "--stream", str(size)]
    argv += ["--chunk", str(chunk), *options]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=CLIENT_SLACK_S, check=False)
    if result.returncode != 0:
        raise ClientError(_explain(argv, result, f"the C++ client exited {result.returncode}"))
    return _json_line(argv, result)


def tls_options(target: Target) -> tuple[str, ...]:
    """The C++ client's options to speak TLS to ``target`` and trust it as the suite does: the
    suite's test CA or --tls-cafile, or no verification (--tls-insecure)."""
    if target.address.tls is None:
        raise ValueError(f"{target.name} does not speak TLS")
    if target.address.tls.cafile is None:
        return ("--tls", "--insecure")
    return ("--tls", "--cafile", target.address.tls.cafile)


def native_handshakes(
    client: str, address: Address, count: int, size: int, options: Sequence[str]
) -> dict[str, Any]:
    """``client --handshakes N --tls``: N fresh connections one after another, each a TCP connect,
    a full TLS handshake (no resumption), one checked echo of ``size`` bytes and close_notify."""
    argv = [client, "--host", address.host, "--port", str(address.port), "--handshakes", str(count)]
    argv += ["--size", str(size), *options]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=CLIENT_SLACK_S, check=False)
    if result.returncode != 0:
        raise ClientError(_explain(argv, result, f"the C++ client exited {result.returncode}"))
    return _json_line(argv, result)


@dataclass(frozen=True)
class LoadRun:
    """The C++ load client's JSON result, and the server's CPU time per round trip."""

    result: dict[str, Any]
    server_cpu_us_per_rt: float | None
    server_cpu_share: float | None = None  # server CPU seconds per second of the measured window
    client_cpu_share: float | None = None  # the same for the load client
    server_wait_share: float | None = None  # seconds its threads waited for a CPU, per second
    client_wait_share: float | None = None  # the same for the load client


def run_load(
    client: str,
    address: Address,
    server_pid: int | None,
    *,
    connections: int,
    size: int,
    profile: Profile,
    warmup_s: float | None = None,
    options: Sequence[str] = (),
) -> LoadRun:
    """``client --load``: N connections, one message in flight on each, for a fixed time.

    The server's CPU time is sampled while the client runs; the window used is the last
    ``duration`` seconds before the client exits (its connects and warm-up come first).
    ``warmup_s`` replaces the profile's warm-up; ``options``: more client options (TLS).
    """
    warmup = profile.load_warmup_s if warmup_s is None else warmup_s
    argv = [client, "--host", address.host, "--port", str(address.port), "--load"]
    argv += ["--connections", str(connections), "--size", str(size)]
    argv += ["--duration", str(profile.load_duration_s), "--warmup", str(warmup), *options]
    return _sampled_run(argv, server_pid, profile.load_duration_s, warmup, "rate_per_s")


def run_open_loop(
    client: str,
    address: Address,
    server_pid: int | None,
    *,
    rate: int,
    connections: int,
    size: int,
    duration_s: float,
    warmup_s: float,
) -> LoadRun:
    """``client --open-loop --rate R``: R requests/s in total over N connections on a fixed
    schedule, each timed from its intended send time; the server's and the client's CPU sampled."""
    argv = [client, "--host", address.host, "--port", str(address.port), "--open-loop"]
    argv += ["--rate", str(rate), "--connections", str(connections), "--size", str(size)]
    argv += ["--duration", str(duration_s), "--warmup", str(warmup_s), "--json"]
    return _sampled_run(argv, server_pid, duration_s, warmup_s, "achieved_rate")


def _sampled_run(
    argv: list[str], server_pid: int | None, duration_s: float, warmup_s: float, rate_key: str
) -> LoadRun:
    deadline = time.monotonic() + duration_s + warmup_s + CLIENT_SLACK_S
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        samples = list(_cpu_samples(process, server_pid, deadline))
        stdout, stderr = process.communicate(timeout=CLIENT_SLACK_S)
        finished = subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)
    result = _json_line(argv, finished)
    if process.returncode not in (0, 1):  # 1 is an echo mismatch: the caller reports it
        raise ClientError(_explain(argv, finished, f"the load client exited {process.returncode}"))
    window = _window(samples, duration_s)
    rate = float(result[rate_key])
    if window is None:
        return LoadRun(result, None)
    seconds = window.time
    per_rt = window.server_cpu / (rate * seconds) * 1e6 if rate > 0 else None
    return LoadRun(result, per_rt, *(figure / seconds for figure in window[1:]))


class Sample(NamedTuple):
    """Running totals at one instant, in seconds (or, as the growth between two, per window)."""

    time: float
    server_cpu: float
    client_cpu: float
    server_wait: float  # on a run queue, waiting for a CPU
    client_wait: float

    def since(self, earlier: Sample) -> Sample:
        return Sample(*(now - then for now, then in zip(self, earlier, strict=True)))


def _cpu_samples(process: subprocess.Popen[str], server_pid: int | None, deadline: float) -> Iterator[Sample]:
    """A Sample every CPU_SAMPLE_INTERVAL_S while the client runs."""
    client = psutil.Process(process.pid)
    while True:
        try:
            process.wait(timeout=CPU_SAMPLE_INTERVAL_S)
        except subprocess.TimeoutExpired:
            if time.monotonic() > deadline:
                process.kill()
                raise ClientError(
                    f"the load client did not finish by its deadline: {process.args!r}"
                ) from None
            if server_pid is not None:
                try:
                    client_times = client.cpu_times()
                    client_wait = run_queue_wait_seconds(process.pid)
                except psutil.NoSuchProcess:
                    continue  # it exited between the wait and the sample
                now, server_cpu = time.monotonic(), server_cpu_seconds(server_pid)
                client_cpu = client_times.user + client_times.system
                yield Sample(now, server_cpu, client_cpu, run_queue_wait_seconds(server_pid), client_wait)
            continue
        return


def _window(samples: list[Sample], duration_s: float) -> Sample | None:
    """The growth of each figure over the last ``duration_s`` of the samples."""
    if len(samples) < 2:
        return None
    end = samples[-1]
    start = next(sample for sample in samples if sample.time >= end.time - duration_s)
    if end.time - start.time < duration_s / 2:
        return None
    return end.since(start)


def start_sockperf_server(host: str) -> tuple[ServerProcess, Address]:
    return TargetSpec("sockperf", command=SOCKPERF_SERVER_COMMAND, host=host).launch()


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_SOCKPERF_PERCENTILE = re.compile(r"percentile (?P<pct>\d+\.\d+) = +(?P<usec>[\d.]+)")
_SOCKPERF_AVG = re.compile(r"avg-rtt=(?P<usec>[\d.]+)")


def sockperf_ping_pong(address: Address, seconds: int, size: int) -> dict[str, float]:
    """sockperf's own client against its own server: round-trip mean and percentiles in µs."""
    argv = ["sockperf", "pp", "--tcp", "-i", address.host, "-p", str(address.port), "--full-rtt"]
    argv += ["-t", str(seconds), "-m", str(size)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    text = _ANSI.sub("", result.stdout + result.stderr)
    found = {float(m["pct"]): float(m["usec"]) / 1e3 for m in _SOCKPERF_PERCENTILE.finditer(text)}
    average = _SOCKPERF_AVG.search(text)
    if result.returncode != 0 or average is None or not {50.0, 90.0, 99.0} <= found.keys():
        raise ClientError(_explain(argv, result, "sockperf printed no round-trip percentiles"))
    return {
        "avg_us": float(average["usec"]),
        "p50_us": found[50.0] * 1e3,
        "p90_us": found[90.0] * 1e3,
        "p99_us": found[99.0] * 1e3,
    }


def have(program: str) -> bool:
    return shutil.which(program) is not None


def raise_fd_limit() -> None:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; servers started later inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- the measurements the test modules run ----------------------------------------------------


class Stats(Protocol):
    data: list[float]


class Metadata(Protocol):
    stats: Stats


class Benchmark(Protocol):
    """The parts of pytest-benchmark's ``benchmark`` fixture the workloads use."""

    group: str | None
    extra_info: dict[str, Any]
    stats: Metadata | None

    def pedantic(
        self,
        target: Callable[..., Any],
        args: tuple[Any, ...] = ...,
        rounds: int = ...,
        warmup_rounds: int = ...,
        iterations: int = ...,
    ) -> Any: ...


def prepare(
    benchmark: Benchmark,
    server: Target | str,
    workload: Workload,
    placement: Placement,
    profile: Profile,
    **parameters: Any,
) -> None:
    """Name the group (implementations side by side), pin the server, describe the run."""
    benchmark.group = workload.name
    name = server if isinstance(server, str) else server.name
    if not isinstance(server, str):
        placement.pin_server(server.server.pid if server.server is not None else None)
    benchmark.extra_info.update(
        server=name,
        workload=workload.name,
        profile=profile.name,
        **placement.describe(),
        **workload.parameters,
        **parameters,
    )


def round_samples(benchmark: Benchmark) -> list[float]:
    """Each round's duration in seconds (empty with --benchmark-disable)."""
    return list(benchmark.stats.stats.data) if benchmark.stats is not None else []


def ping_pong(benchmark: Benchmark, server: Target, size: int, rounds: int, warmup: int) -> None:
    """Round trips of ``size`` bytes on one connection, each timed: their HdrHistogram summary,
    the mean and p95 in ms (the original project's figures) and the MB/s they imply."""
    connection = PingPong(server.address, size)
    try:
        benchmark.pedantic(connection.round_trip, rounds=rounds, warmup_rounds=warmup, iterations=1)
    finally:
        connection.close()
    if samples := round_samples(benchmark):
        histogram = histogram_of(samples)
        benchmark.extra_info.update(summary_us(histogram))
        benchmark.extra_info.update(
            avg_ms=sum(samples) / len(samples) * 1e3,
            p95_ms=histogram.get_value_at_percentile(95.0) / 1e3,
            mb_per_s=size * len(samples) / sum(samples) / 1e6,
        )


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
        avg_us=result["total_s"] / result["count"] * 1e6,
        count=result["count"],
        **{f"{key}_us": value * 1e3 for key, value in result["rtt_ms"].items()},
    )
    return result


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
                size=LOAD_MESSAGE_SIZE,
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
        count=result["round_trips"],
        errors=result["errors"],
        server_cpu_us_per_rt=typical.server_cpu_us_per_rt,
        **{f"{key}_ms": value for key, value in result["latency_ms"].items()},
    )
    return typical, runs


def connection_rate(benchmark: Benchmark, profile: Profile, address: Address) -> None:
    """Connect, one echo, close, in a Python loop: connections per second."""
    message = seeded_payload(LOAD_MESSAGE_SIZE, 7)
    benchmark.pedantic(
        connect_echo_close,
        args=(address, message),
        rounds=profile.connection_rounds,
        warmup_rounds=10,
        iterations=1,
    )
    if samples := round_samples(benchmark):
        benchmark.extra_info["connections_per_s"] = len(samples) / sum(samples)


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
    rates = sorted(stream["mb_per_s"] for stream in streams)
    benchmark.extra_info.update(
        client="cpp",
        mb_per_s=rates[len(rates) // 2],
        mb_per_s_rounds=[stream["mb_per_s"] for stream in streams],
    )
    return streams


def negotiated(result: dict[str, Any]) -> dict[str, Any]:
    """The TLS version and cipher the C++ client reports, checked to be TLS at all."""
    assert result.get("tls_version", "").startswith("TLS"), f"the C++ client did not speak TLS: {result}"
    return {"tls_version": result["tls_version"], "cipher": result["cipher"]}


def rate_sweep(benchmark: Benchmark, server: Target, client: Path, profile: Profile) -> list[dict[str, Any]]:
    """The open-loop sweep: one step per offered rate, low to past saturation, every echo checked.

    Each step keeps the client's figures (achieved rate, kept_up, percentiles, its histogram),
    and the CPU shares of the server and the client over the step and how long each waited for a
    CPU, which say what limited it."""
    server_pid = server.server.pid if server.server is not None else None
    parameters = SWEEP.workloads[0].parameters
    steps: list[dict[str, Any]] = []

    def sweep_once() -> None:
        for rate in profile.sweep_rates:
            run = run_open_loop(
                str(client),
                server.address,
                server_pid,
                rate=rate,
                connections=parameters["connections"],
                size=parameters["size"],
                duration_s=profile.sweep_step_s,
                warmup_s=profile.sweep_warmup_s,
            )
            result = run.result
            assert result["mismatches"] == 0, f"echo mismatches at {rate}/s offered: {result}"
            assert result["completed"] > 0, f"no request completed at {rate}/s offered: {result}"
            steps.append(
                {
                    **{key: result[key] for key in OPEN_LOOP_KEYS},
                    "server_cpu_share": run.server_cpu_share,
                    "client_cpu_share": run.client_cpu_share,
                    "server_wait_share": run.server_wait_share,
                    "client_wait_share": run.client_wait_share,
                }
            )

    benchmark.pedantic(sweep_once, rounds=1, iterations=1)
    benchmark.extra_info["steps"] = steps
    return steps


# What a sweep step keeps of the open-loop client's JSON.
OPEN_LOOP_KEYS = (
    "target_rate",
    "achieved_rate",
    "sent",
    "completed",
    "errors",
    "mismatches",
    "kept_up",
    "max_lag_us",
    "p50_us",
    "p90_us",
    "p99_us",
    "p999_us",
    "max_us",
    "count",
    "histogram",
)
