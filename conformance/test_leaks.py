"""LEAK: every connection gives back what it took -- descriptors, threads, child processes.

A server that forgets to close a socket on one error path, or a thread that never returns,
loses one descriptor or one thread per connection: invisible in a short test, fatal after
days (EMFILE: the server can no longer accept anyone). So each scenario starts a fresh
instance of the server (other tests' connections would disturb the count), takes a baseline
after one warm-up exchange (Python servers import and allocate lazily on the first
connection), runs thousands of connections through it, and requires the counts to come back
to the baseline -- summed over the process tree, so a forking server's children count too.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

from conformance.harness.duplex import connect, exchange
from conformance.harness.payloads import assert_same_stream, seeded_payload
from conformance.harness.pressure import push_until_stalled, reset
from conformance.harness.resources import assert_back_to_baseline, steady_baseline
from conformance.harness.scenarios import scenario
from conformance.harness.servers import Address, ServerProcess
from conformance.harness.targets import Target, fresh_server

CYCLES = 2000
# One round of aborts: quick resets, alternating between a connection reset before the
# server even accepted it and one reset once the server echoes (which also paces the loop to
# the server's accept rate, so the listen backlog never overflows), then one connection
# closed unread while the server is blocked writing to it (EPIPE).
QUICK_RESETS_PER_ROUND = 60
ROUNDS = 5
LOOP_DEADLINE_S = 40.0
DEATH_WAIT_S = 1.0  # after a connection error: how long the server gets to show it exited

Step = Callable[[Address, int], None]


def echo_once(address: Address, index: int) -> None:
    payload = f"cycle {index}".encode()
    outcome = exchange(address, payload, half_close=False, timeout=10.0)
    assert_same_stream(payload, outcome.received, what=f"connection {index}")


def reset_right_after_connect(address: Address, index: int) -> None:
    del index
    with connect(address, timeout=10.0) as sock:
        reset(sock)


def reset_after_first_echo(address: Address, index: int) -> None:
    with connect(address, timeout=10.0) as sock:
        sock.sendall(seeded_payload(64 * 1024, index))
        assert sock.recv(1), f"connection {index}: the server closed the connection instead of echoing"
        reset(sock)


def close_unread_while_server_writes(address: Address, index: int) -> None:
    with connect(address, timeout=10.0) as sock:
        push_until_stalled(sock, seeded_payload(16 << 20, index), quiet_s=0.2)
        sock.close()


ABORT_ROUND: list[Step] = [reset_right_after_connect, reset_after_first_echo] * (QUICK_RESETS_PER_ROUND // 2)
ABORT_ROUND.append(close_unread_while_server_writes)
ABORTED = len(ABORT_ROUND) * ROUNDS


def run_bounded(server: ServerProcess, address: Address, steps: list[Step]) -> int:
    """Run the steps in order until done or LOOP_DEADLINE_S passes; return how many ran."""
    deadline = time.monotonic() + LOOP_DEADLINE_S
    for index, step in enumerate(steps):
        if time.monotonic() >= deadline:
            return index
        try:
            step(address, index)
        except OSError as exc:
            # A connection error is often the first sign that the server died: say so if it did.
            try:
                code = server.process.wait(timeout=DEATH_WAIT_S)
            except subprocess.TimeoutExpired:
                raise exc from None
            raise AssertionError(
                f"the server exited with {code} during connection {index} ({step.__name__}): {exc!r}\n"
                f"  stderr:\n{server.stderr_text()}"
            ) from exc
    return len(steps)


@scenario("LEAK-001", f"{CYCLES} connect/echo/close cycles: fds, threads and processes back to baseline")
def test_no_leak_after_many_connections(target: Target) -> None:
    """The server MUST release every descriptor, thread and child process of a finished connection."""
    with fresh_server(target) as (server, address):
        echo_once(address, 0)  # warm-up: Python servers import and allocate on first use
        baseline = steady_baseline(server.pid)
        ran = run_bounded(server, address, [echo_once] * CYCLES)
        assert_back_to_baseline(server.pid, baseline, f"{ran} connect/echo/close cycles")


@scenario("LEAK-002", f"{ABORTED} aborted connections: fds, threads and processes back to baseline")
def test_no_leak_after_aborts(target: Target) -> None:
    """The server MUST release a connection's resources on ECONNRESET and EPIPE paths too."""
    with fresh_server(target) as (server, address):
        echo_once(address, 0)  # warm-up: Python servers import and allocate on first use
        baseline = steady_baseline(server.pid)
        ran = run_bounded(server, address, ABORT_ROUND * ROUNDS)
        assert_back_to_baseline(server.pid, baseline, f"{ran} aborted connections")
