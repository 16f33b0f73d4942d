"""LIFE: a server's life from start to exit -- announce, bind, stop, restart, refuse a busy port.

Everything a supervisor, a test harness or an operator relies on before the first byte is echoed
and after the last: the announce line must mean "connect now" (a server that prints it before
listen() makes every client that trusts it race the kernel and sometimes get ECONNREFUSED); port 0
must be answered with the real port; SIGTERM and Ctrl-C must end the server promptly and cleanly
even while clients are connected and mid-echo (a server that waits for its connections to finish,
or dies with a traceback, hangs deployments and fails CI teardown); a restart on the same port must
work at once although the old connections sit in TIME_WAIT (a server without SO_REUSEADDR cannot
be restarted for a minute); a busy port must be a clear, immediate error, not a hang or a server
silently listening elsewhere. Each scenario starts FRESH instances of the server under test, so
the session's shared server is not disturbed, and stops them in ``finally``.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress

import psutil
import pytest

from conformance.harness.duplex import connect, connect_within, exchange
from conformance.harness.payloads import assert_same_stream
from conformance.harness.pressure import push_until_stalled
from conformance.harness.scenarios import scenario
from conformance.harness.servers import (
    STOP_TIMEOUT_S,
    Address,
    ServerProcess,
    ServerStartError,
)
from conformance.harness.targets import Target, TargetSpec, fresh_server
from impls.table import ANNOUNCES, GRACEFUL_EXIT, IPV6

IO_TIMEOUT_S = 5.0
IDLE_CONNECTIONS = 3
MID_ECHO_CONNECTIONS = 2
MID_ECHO_PUSH = bytes(32 << 20)  # more than loopback buffers hold: the server ends up mid-echo
STALL_QUIET_S = 0.2
TIME_WAIT_CONNECTIONS = 3
PROBE = bytes(range(256)) * 16


def assert_echoes(address: Address, what: str) -> None:
    """One echo, read back in full without a half-close: half-close semantics are the HALF family's."""
    outcome = exchange(address, PROBE, half_close=False, timeout=IO_TIMEOUT_S)
    assert_same_stream(PROBE, outcome.received, what=what)


def listening_ports(pid: int) -> set[int]:
    """TCP ports the process (or its children) listens on."""
    root = psutil.Process(pid)
    return {
        conn.laddr.port
        for process in (root, *root.children(recursive=True))
        for conn in process.net_connections(kind="tcp")
        if conn.status == psutil.CONN_LISTEN
    }


@scenario("LIFE-001", "the announce line comes after listen(): a connect at once succeeds")
def test_announce_means_listening(target: Target) -> None:
    """The server MUST print its announce line only once it listens: one immediate connect succeeds."""
    with fresh_server(target, ANNOUNCES) as (_, address):
        try:
            sock = connect(address, timeout=IO_TIMEOUT_S)  # one attempt, no retry
        except OSError as exc:
            pytest.fail(f"connect to {address} right after the announce line failed: {exc!r}")
        with sock:
            outcome = exchange(address, PROBE, half_close=False, sock=sock, timeout=IO_TIMEOUT_S)
        assert_same_stream(PROBE, outcome.received, what=f"the first connection to {address}")


@scenario("LIFE-002", "port 0: the announced port is the real one, non-zero, and accepts")
def test_port_zero_announces_real_port(target: Target) -> None:
    """Asked for port 0, the server MUST announce the port the kernel chose, and listen on it."""
    with fresh_server(target, ANNOUNCES, port=0) as (server, address):
        assert address.port != 0, "the server announced port 0, not the port it was given"
        ports = listening_ports(server.pid)
        assert address.port in ports, f"announced port {address.port}, but the server listens on {ports}"
        assert_echoes(address, f"a connection to the announced {address}")


def open_busy_connections(address: Address, stack: ExitStack) -> str:
    """Idle connections (one echo done) and connections stalled mid-echo; returns a description."""
    for index in range(IDLE_CONNECTIONS):
        sock = connect_within(stack, address, timeout=IO_TIMEOUT_S)
        outcome = exchange(address, PROBE, half_close=False, sock=sock, timeout=IO_TIMEOUT_S)
        assert_same_stream(PROBE, outcome.received, what=f"idle connection {index} before the signal")
    in_flight = []
    for _ in range(MID_ECHO_CONNECTIONS):
        sock = connect_within(stack, address, timeout=IO_TIMEOUT_S)
        push = push_until_stalled(sock, MID_ECHO_PUSH, quiet_s=STALL_QUIET_S, timeout=IO_TIMEOUT_S)
        in_flight.append(push.sent)
    return (
        f"{IDLE_CONNECTIONS} idle connections and {MID_ECHO_CONNECTIONS} mid-echo "
        f"(sent {in_flight} bytes without reading the echo)"
    )


def exit_after(server: ServerProcess, signum: signal.Signals) -> tuple[int | None, float]:
    """Send ``signum`` to the server; its exit code (None: still running) after STOP_TIMEOUT_S."""
    started = time.monotonic()
    os.kill(server.pid, signum)
    try:
        code: int | None = server.process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        code = None
    return code, time.monotonic() - started


def check_clean_exit_with_connections_open(target: Target, signum: signal.Signals) -> None:
    with fresh_server(target, GRACEFUL_EXIT) as (server, address), ExitStack() as connections:
        described = open_busy_connections(address, connections)
        code, elapsed = exit_after(server, signum)
        assert code == 0, (
            f"{signum.name} with {described}: "
            + (f"exit code {code} after {elapsed:.2f} s" if code is not None else "still running")
            + f" (expected exit code 0 within {STOP_TIMEOUT_S} s)\n  stderr:\n{server.stderr_text()}"
        )
        assert "Traceback" not in server.stderr_text(), (
            f"{signum.name} left a traceback:\n{server.stderr_text()}"
        )


@scenario("LIFE-003", "SIGTERM with connections open, some mid-echo: exit 0 within 1 s")
def test_sigterm_with_connections_open(target: Target) -> None:
    """On SIGTERM the server MUST exit with status 0 within 1 s, without a traceback, connections or not."""
    check_clean_exit_with_connections_open(target, signal.SIGTERM)


@scenario("LIFE-004", "SIGINT (Ctrl-C) with connections open, some mid-echo: exit 0 within 1 s")
def test_sigint_with_connections_open(target: Target) -> None:
    """On SIGINT (Ctrl-C) the server MUST exit with status 0 within 1 s, with no traceback."""
    check_clean_exit_with_connections_open(target, signal.SIGINT)


def leave_time_wait(server: ServerProcess, address: Address) -> None:
    """Stop the server while connections are open, so it closes first: its side ends in TIME_WAIT."""
    with ExitStack() as stack:
        socks = [connect_within(stack, address, timeout=IO_TIMEOUT_S) for _ in range(TIME_WAIT_CONNECTIONS)]
        for sock in socks:
            outcome = exchange(address, PROBE, half_close=False, sock=sock, timeout=IO_TIMEOUT_S)
            assert_same_stream(PROBE, outcome.received, what=f"a connection to {address} before the restart")
        server.stop()
        for sock in socks:
            # Wait for the server's FIN (or a reset): our close then moves its side to TIME_WAIT.
            with suppress(ConnectionResetError):
                sock.recv(1)


def time_wait_count(port: int) -> int:
    return sum(
        1
        for conn in psutil.net_connections(kind="tcp")
        if conn.status == psutil.CONN_TIME_WAIT and conn.laddr and conn.laddr.port == port
    )


@scenario("LIFE-005", "restart at once on the same port while old connections are in TIME_WAIT")
def test_restart_on_same_port(target: Target) -> None:
    """A restarted server MUST bind its old port at once, despite TIME_WAIT sockets (SO_REUSEADDR)."""
    with fresh_server(target) as (first, address):
        leave_time_wait(first, address)
    lingering = time_wait_count(address.port)
    try:
        second, again = target.spec.launch(port=address.port)
    except ServerStartError as exc:
        pytest.fail(
            f"restart on port {address.port} ({lingering} sockets in TIME_WAIT on it) failed: {exc}",
            pytrace=False,
        )
    try:
        assert again.port == address.port, f"restarted on port {again.port}, asked for {address.port}"
        assert_echoes(again, f"the restarted server on {again} ({lingering} old sockets in TIME_WAIT)")
    finally:
        second.stop()


@contextmanager
def busy_port(host: str) -> Iterator[int]:
    """A port on which another socket already listens."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as holder:
        holder.bind((host, 0))
        holder.listen()
        yield holder.getsockname()[1]


def run_on_busy_port(spec: TargetSpec) -> tuple[int | None, float, str, int]:
    """Start the server on a taken port: (exit code or None if still running, seconds, stderr, port)."""
    with busy_port(spec.host) as port:
        server = spec.start(port=port)
        started = time.monotonic()
        try:
            code: int | None = server.process.wait(timeout=spec.startup_timeout)
        except subprocess.TimeoutExpired:
            code = None
        elapsed = time.monotonic() - started
        server.stop()
        return code, elapsed, server.stderr_text(), port


@scenario("LIFE-006", "a busy port: the server exits non-zero at once and says why on stderr")
def test_busy_port_fails_fast(target: Target) -> None:
    """Given a port already in use, the server MUST exit non-zero within its startup time, with a message."""
    target.require_launch()
    code, elapsed, stderr, port = run_on_busy_port(target.spec)
    assert code is not None, (
        f"port {port} was taken, yet the server was still running after {elapsed:.1f} s "
        f"(it must fail to bind and exit)\n  stderr:\n{stderr}"
    )
    assert code != 0, f"port {port} was taken, yet the server exited with status 0\n  stderr:\n{stderr}"
    assert stderr.strip(), f"port {port} was taken: the server exited {code} without a word on stderr"


@scenario("LIFE-007", "a busy port: a built-in server exits 2 with one line naming the cause")
def test_busy_port_is_one_line(target: Target) -> None:
    """A built-in server MUST report a busy port as exit status 2 and one stderr line, no traceback."""
    target.require_launch()
    if target.spec.implementation is None:
        pytest.skip("the exit-2, one-line error contract is the built-in servers' (impls/cli.py)")
    code, _, stderr, port = run_on_busy_port(target.spec)
    lines = stderr.splitlines()
    assert code == 2, f"port {port} was taken: exit status {code}, expected 2\n  stderr:\n{stderr}"
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{stderr}"
    assert "Traceback" not in stderr
    assert os.strerror(errno.EADDRINUSE) in lines[0], (
        f"the line does not say the port is in use: {lines[0]!r}"
    )
    assert str(port) in lines[0], f"the line does not name port {port}: {lines[0]!r}"


@scenario("LIFE-008", "IPv6: started on ::1, it announces [::1] and echoes over IPv6")
def test_ipv6_loopback(target: Target) -> None:
    """Started with host ::1, the server MUST listen on ::1, announce it and echo over IPv6."""
    if not socket.has_ipv6:
        pytest.skip("this machine has no IPv6 support (socket.has_ipv6 is False)")
    with fresh_server(target, IPV6, host="::1") as (_, address):
        assert address.host == "::1", f"asked for ::1, the server announced {address}"
        assert address.family == socket.AF_INET6
        assert_echoes(address, f"a connection over IPv6 to {address}")
