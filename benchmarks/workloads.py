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
import statistics
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import psutil

from conformance.harness.duplex import connect
from conformance.harness.payloads import assert_same_stream
from conformance.harness.servers import Address, ServerProcess
from conformance.harness.targets import Target, TargetSpec

KiB, MiB = 1 << 10, 1 << 20
SOCKET_TIMEOUT_S = 30.0
CPU_SAMPLE_INTERVAL_S = 0.05
CLIENT_SLACK_S = 120.0  # beyond its own duration, how long a client run may take (10,000 connects)

NODE = "node"
# The Node.js baseline: the echo every Node tutorial writes. The error handler only keeps a
# client's reset from killing the process (an unhandled 'error' event); it costs nothing.
NODE_COMMAND = (
    "node -e \"require('net').createServer(s => { s.on('error', () => s.destroy()); s.pipe(s); })"
    ".listen({port}, '{host}')\""
)
SOCAT_TLS = "socat-tls"
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
SOCKPERF_SERVER_COMMAND = "sockperf sr --tcp -i {host} -p {port}"


@dataclass(frozen=True)
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


FULL = Profile("full", 3000, 200, 1000, 256 * MiB, 7, 2000, 20000, 3, 3.0, 0.5, 3, 2000, 64 * MiB, 5, 2.0)
QUICK = Profile("quick", 200, 20, 200, 32 * MiB, 2, 200, 2000, 1, 1.0, 0.2, 1, 100, 8 * MiB, 1, 1.0)


def seeded_payload(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def percentiles_ms(samples_s: list[float]) -> dict[str, float]:
    """p50/p95/p99 and the mean of a list of durations in seconds, in milliseconds."""
    if len(samples_s) < 2:
        only = samples_s[0] * 1e3 if samples_s else float("nan")
        return {"avg_ms": only, "p50_ms": only, "p95_ms": only, "p99_ms": only}
    cuts = statistics.quantiles(samples_s, n=100, method="inclusive")
    return {
        "avg_ms": statistics.fmean(samples_s) * 1e3,
        "p50_ms": cuts[49] * 1e3,
        "p95_ms": cuts[94] * 1e3,
        "p99_ms": cuts[98] * 1e3,
    }


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
    deadline = time.monotonic() + profile.load_duration_s + warmup + CLIENT_SLACK_S
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as process:
        samples = list(_cpu_samples(process, server_pid, deadline))
        stdout, stderr = process.communicate(timeout=CLIENT_SLACK_S)
        finished = subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)
    result = _json_line(argv, finished)
    if process.returncode not in (0, 1):  # 1 is an echo mismatch: the caller reports it
        raise ClientError(_explain(argv, finished, f"the load client exited {process.returncode}"))
    return LoadRun(result, _cpu_per_round_trip(samples, profile.load_duration_s, result["rate_per_s"]))


def _cpu_samples(
    process: subprocess.Popen[str], server_pid: int | None, deadline: float
) -> Iterator[tuple[float, float]]:
    """(time, server CPU seconds) every CPU_SAMPLE_INTERVAL_S while the client is running."""
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
                yield time.monotonic(), server_cpu_seconds(server_pid)
            continue
        return


def _cpu_per_round_trip(samples: list[tuple[float, float]], duration_s: float, rate: float) -> float | None:
    if len(samples) < 2 or rate <= 0:
        return None
    end_time, end_cpu = samples[-1]
    start_time, start_cpu = next(sample for sample in samples if sample[0] >= end_time - duration_s)
    if end_time - start_time < duration_s / 2:
        return None
    return (end_cpu - start_cpu) / (rate * (end_time - start_time)) * 1e6


def start_sockperf_server(host: str) -> tuple[ServerProcess, Address]:
    return TargetSpec("sockperf", command=SOCKPERF_SERVER_COMMAND, host=host).launch()


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_SOCKPERF_PERCENTILE = re.compile(r"percentile (?P<pct>\d+\.\d+) = +(?P<usec>[\d.]+)")
_SOCKPERF_AVG = re.compile(r"avg-rtt=(?P<usec>[\d.]+)")


def sockperf_ping_pong(address: Address, seconds: int, size: int) -> dict[str, float]:
    """sockperf's own client against its own server: round-trip percentiles in milliseconds."""
    argv = ["sockperf", "pp", "--tcp", "-i", address.host, "-p", str(address.port), "--full-rtt"]
    argv += ["-t", str(seconds), "-m", str(size)]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    text = _ANSI.sub("", result.stdout + result.stderr)
    found = {float(m["pct"]): float(m["usec"]) / 1e3 for m in _SOCKPERF_PERCENTILE.finditer(text)}
    average = _SOCKPERF_AVG.search(text)
    if result.returncode != 0 or average is None or not {50.0, 90.0, 99.0} <= found.keys():
        raise ClientError(_explain(argv, result, "sockperf printed no round-trip percentiles"))
    return {
        "avg_ms": float(average["usec"]) / 1e3,
        "p50_ms": found[50.0],
        "p90_ms": found[90.0],
        "p99_ms": found[99.0],
    }


def have(program: str) -> bool:
    return shutil.which(program) is not None


def raise_fd_limit() -> None:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit; servers started later inherit it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
