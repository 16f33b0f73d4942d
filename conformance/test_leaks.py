"""LEAK: every connection gives back what it took -- descriptors, threads, child processes, memory.

A server that forgets to close a socket on one error path, or a thread that never returns,
loses one descriptor or one thread per connection: invisible in a short test, fatal after
days (EMFILE: the server can no longer accept anyone). So each scenario starts a fresh
instance of the server (other tests' connections would disturb the count), takes a baseline
after one warm-up exchange (Python servers import and allocate lazily on the first
connection), runs thousands of connections through it, and requires the counts to come back
to the baseline -- summed over the process tree, so a forking server's children count too.
Memory is the one figure that may wobble (allocators keep freed pages), so LEAK-003 bounds its
growth instead: a server that keeps something per connection served (a registry never
pruned, a per-client buffer held after the close) grows with every client, a correct one
plateaus after its warm-up.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from conformance.harness.duplex import connect, exchange
from conformance.harness.payloads import assert_same_stream, seeded_payload
from conformance.harness.pressure import push_until_stalled, reset
from conformance.harness.resources import assert_back_to_baseline, steady_baseline, usage
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
# 2000 cycles take 2-15 s on the built-in rows; socat-tls forks and handshakes per connection, about
# 20 per second on a loaded machine. Only a server far slower than that fails to do them all.
LOOP_DEADLINE_S = 240.0
DEATH_WAIT_S = 1.0  # after a connection error: how long the server gets to show it exited
MiB = 1 << 20
MEMORY_WARMUP = 500  # connections before the baseline: allocators and caches reach their size
MEMORY_CONNECTIONS = 4000
MEMORY_PAYLOAD = 4 * 1024
MEMORY_LANES = 4  # clients at a time: thousands of connections in seconds, still few at once
RSS_GROWTH_LIMIT = 32 * MiB  # 8 KiB per connection served: far above any allocator's wobble

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
    """Run the steps in order until done or LOOP_DEADLINE_S passes; return how many ran (the
    scenario asserts that all did)."""
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
        assert_all_ran(ran, CYCLES, "connect/echo/close cycles")
        assert_back_to_baseline(server.pid, baseline, f"{ran} connect/echo/close cycles")


@scenario("LEAK-002", f"{ABORTED} aborted connections: fds, threads and processes back to baseline")
def test_no_leak_after_aborts(target: Target) -> None:
    """The server MUST release a connection's resources on ECONNRESET and EPIPE paths too."""
    with fresh_server(target) as (server, address):
        echo_once(address, 0)  # warm-up: Python servers import and allocate on first use
        baseline = steady_baseline(server.pid)
        ran = run_bounded(server, address, ABORT_ROUND * ROUNDS)
        assert_all_ran(ran, ABORTED, "aborted connections")
        assert_back_to_baseline(server.pid, baseline, f"{ran} aborted connections")


def assert_all_ran(ran: int, wanted: int, what: str) -> None:
    assert ran == wanted, (
        f"only {ran} of {wanted} {what} in {LOOP_DEADLINE_S:.0f} s: the server serves connections "
        "too slowly to check (one second or more each: a sleep, a DNS lookup per client?)"
    )


def echo_lane(address: Address, lane: int, count: int) -> None:
    for index in range(lane, count * MEMORY_LANES, MEMORY_LANES):
        payload = seeded_payload(MEMORY_PAYLOAD, index)
        # No half-close: this scenario counts memory, HALF-001 judges what follows an EOF.
        outcome = exchange(address, payload, half_close=False, timeout=10.0)
        assert_same_stream(payload, outcome.received, what=f"connection {index}")


def serve_connections(address: Address, count: int) -> None:
    """``count`` connections, MEMORY_LANES at a time, each echoing MEMORY_PAYLOAD then closing."""
    with ThreadPoolExecutor(MEMORY_LANES) as lanes:
        for done in [
            lanes.submit(echo_lane, address, lane, count // MEMORY_LANES) for lane in range(MEMORY_LANES)
        ]:
            done.result()


@scenario(
    "LEAK-003",
    f"memory: {MEMORY_CONNECTIONS} connections of {MEMORY_PAYLOAD // 1024} KiB each grow RSS by less than "
    f"{RSS_GROWTH_LIMIT // MiB} MiB",
)
def test_memory_does_not_grow_with_connections_served(target: Target) -> None:
    """The server's memory MUST NOT grow with the number of connections it has served.

    After a warm-up of 500 connections, 4000 more (4 at a time, 4 KiB echoed each, then
    closed) may grow the RSS of its process tree by less than 32 MiB: 8 KiB per connection,
    where a server that keeps one 64 KiB buffer per client served grows by 256 MiB.
    """
    server = target.require_process()
    serve_connections(target.address, MEMORY_WARMUP)
    before = steady_baseline(server.pid)
    serve_connections(target.address, MEMORY_CONNECTIONS)
    after = usage(server.pid)
    growth = after.rss_bytes - before.rss_bytes
    assert growth < RSS_GROWTH_LIMIT, (
        f"the server's RSS grew by {growth / MiB:.1f} MiB ({before.rss_bytes} -> {after.rss_bytes} bytes, "
        f"{after.processes} processes) over {MEMORY_CONNECTIONS} connections of {MEMORY_PAYLOAD} bytes each, "
        f"after {MEMORY_WARMUP} to warm up; limit {RSS_GROWTH_LIMIT // MiB} MiB: something is kept per "
        "connection served (a registry never pruned, a buffer held after the close?)"
    )
