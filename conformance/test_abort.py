"""ABORT: clients that reset or vanish mid-stream end their own connection, nothing more.

Clients crash, time out and give up. When a client resets its connection (RST) or closes it
with echo still unread, the server's next read fails with ECONNRESET and its next write with
EPIPE -- and on POSIX a write to a broken connection also raises SIGPIPE, whose default action
kills the whole process. The bugs this family catches: a server that never ignores SIGPIPE
(or forgets MSG_NOSIGNAL), one that treats ECONNRESET or EPIPE as fatal, one whose accept
loop dies on a connection aborted before it was accepted. After every abort the server must
still be running and must serve the next client correctly.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest

from conformance.harness.duplex import connect, exchange
from conformance.harness.payloads import assert_same_stream, seeded_payload
from conformance.harness.pressure import push_until_stalled, read_until_delivered, reset
from conformance.harness.scenarios import scenario
from conformance.harness.targets import Target
from conformance.harness.tls import Stream

MiB = 1 << 20
FIRST_CHUNK = 64 * 1024
LARGE_PUSH = 16 * MiB
ABORTS_IN_A_ROW = 150
ABORTS_DEADLINE_S = 30.0


def server_state(target: Target) -> str:
    if target.server is None:
        return "the suite did not start the server, so its process cannot be checked"
    code = target.server.process.poll()
    if code is None:
        return "the server process is still running"
    return f"the server process exited with {code}; stderr:\n{target.server.stderr_text()}"


def assert_still_serving(target: Target, after: str) -> None:
    """The server is alive and a fresh connection gets a 64 KiB echo back, byte for byte."""
    if target.server is not None:
        assert target.server.process.poll() is None, f"after {after}: {server_state(target)}"
    payload = seeded_payload(FIRST_CHUNK, seed=0)
    try:
        outcome = exchange(target.address, payload, half_close=False, timeout=10.0)
    except OSError as exc:
        raise AssertionError(
            f"after {after}, a fresh connection failed: {exc!r}; {server_state(target)}"
        ) from exc
    assert_same_stream(payload, outcome.received, what=f"a fresh connection after {after}")
    if target.server is not None:
        assert target.server.process.poll() is None, f"after {after}: {server_state(target)}"


def reset_right_after_connect(sock: Stream) -> None:
    reset(sock)


def reset_after_first_echo(sock: Stream) -> None:
    """Send 64 KiB, wait until some of it has come back, then reset with the rest in flight."""
    sock.sendall(seeded_payload(FIRST_CHUNK, seed=1))
    assert sock.recv(1), "the server closed the connection instead of echoing"
    reset(sock)


def reset_while_server_is_blocked_writing(sock: Stream) -> None:
    """Push until flow control stops the client (the server's output is full), then reset."""
    push_until_stalled(sock, seeded_payload(LARGE_PUSH, seed=2), quiet_s=0.2)
    reset(sock)


def close_with_echo_unread(sock: Stream) -> None:
    """Push until stalled, then close(): unread data makes the kernel send RST, not FIN."""
    push_until_stalled(sock, seeded_payload(LARGE_PUSH, seed=3), quiet_s=0.2)
    sock.close()


def half_close_then_close_unread(sock: Stream) -> None:
    """Push, half-close (the server sees EOF while its echo is still owed), then close unread."""
    push_until_stalled(sock, seeded_payload(LARGE_PUSH, seed=4), quiet_s=0.2)
    sock.shutdown(socket.SHUT_WR)
    sock.close()


def close_unread_after_server_saw_fin(sock: Stream) -> None:
    """Push, half-close, read just enough for the server to receive everything and the FIN, then
    close with the echo unread.

    The server's socket is then in CLOSE_WAIT, still owing echo, when the RST arrives; in that
    state Linux fails the server's next write with EPIPE -- and raises SIGPIPE -- where an RST
    before the FIN gives ECONNRESET, which raises no signal.
    """
    push_until_stalled(sock, seeded_payload(LARGE_PUSH, seed=5), quiet_s=0.2)
    sock.shutdown(socket.SHUT_WR)
    # A server that stopped echoing altogether never takes them: FLOW-001 and CONC-004 report
    # that; here the client then just closes, and the scenario still checks the server survives.
    read_until_delivered(sock)
    sock.close()


Abort = Callable[[Stream], None]
CLOSE_UNREAD_ROUNDS = 5


@scenario("ABORT-001", "a client that resets (RST) at any point does not disturb the server")
@pytest.mark.parametrize(
    "abort",
    [reset_right_after_connect, reset_after_first_echo, reset_while_server_is_blocked_writing],
    ids=["right-after-connect", "after-first-echo", "while-server-writes"],
)
def test_client_reset(target: Target, abort: Abort) -> None:
    """The server MUST survive a client's RST (ECONNRESET on its read or write) and serve the next client."""
    with connect(target.address, timeout=10.0) as sock:
        abort(sock)
    assert_still_serving(target, after=f"a client reset ({abort.__name__})")


@scenario(
    "ABORT-002", "a client that closes before reading its echo: the server's write fails, it carries on"
)
@pytest.mark.parametrize(
    "abort",
    [close_with_echo_unread, half_close_then_close_unread, close_unread_after_server_saw_fin],
    ids=["close", "half-close-then-close", "close-in-close-wait"],
)
def test_client_closes_before_reading_echo(target: Target, abort: Abort) -> None:
    """The server MUST survive EPIPE/ECONNRESET (and SIGPIPE) when writing an echo nobody will read."""
    # Whether the server's failing write meets the RST (EPIPE, SIGPIPE) or comes before it is a
    # race on the server's side; a few rounds make a server that dies of it die here every time.
    for round_number in range(1, CLOSE_UNREAD_ROUNDS + 1):
        with connect(target.address, timeout=10.0) as sock:
            abort(sock)
        assert_still_serving(
            target, after=f"a client closed with its echo unread ({abort.__name__}, round {round_number})"
        )


QUICK_ABORTS: tuple[Abort, ...] = (reset_right_after_connect, reset_after_first_echo)


@scenario("ABORT-003", f"{ABORTS_IN_A_ROW} abortive closes in a row, beside a connection that stays open")
def test_many_aborts_in_a_row(target: Target) -> None:
    """The server MUST survive many resets in a row, and they MUST NOT disturb its other connections."""
    deadline = time.monotonic() + ABORTS_DEADLINE_S
    with connect(target.address, timeout=10.0) as bystander:
        before = b"bystander before the aborts"
        assert_same_stream(
            before, exchange(target.address, before, half_close=False, sock=bystander).received
        )
        done = 0
        while done < ABORTS_IN_A_ROW and time.monotonic() < deadline:
            with connect(target.address, timeout=10.0) as sock:
                QUICK_ABORTS[done % len(QUICK_ABORTS)](sock)
            done += 1
        assert done == ABORTS_IN_A_ROW, f"only {done} aborts in {ABORTS_DEADLINE_S} s; {server_state(target)}"
        after = b"bystander after the aborts"
        echo = exchange(target.address, after, half_close=False, sock=bystander, timeout=10.0)
        assert_same_stream(after, echo.received, what=f"a connection kept open across {done} aborts")
    assert_still_serving(target, after=f"{done} abortive closes in a row")
