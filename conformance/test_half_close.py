"""HALF: the client's half-close ends the request, not the connection.

RFC 862 says only that the server sends back any data it receives, "until the calling user
terminates". The stricter reading that real checkers use: when the client shuts down its sending
side (shutdown(SHUT_WR), a FIN), the server still owes it every byte it received; it sends them
all, then closes its own side with a FIN of its own, never a reset. Servers get this wrong in
several ways: they close as soon as they read EOF and drop the echo still queued in user space
(or in flight), they close with unread data and so send RST, they never close at all, or they
time out a connection that is merely idle.
"""

from __future__ import annotations

import selectors
import socket
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.harness.duplex import Outcome, connect, exchange, read_to_eof
from conformance.harness.payloads import assert_same_stream, seeded_payload
from conformance.harness.pressure import push_until_stalled
from conformance.harness.scenarios import NO_SHRINK, scenario
from conformance.harness.targets import Target
from conformance.harness.tls import Stream, buffered_input

KiB, MiB = 1 << 10, 1 << 20
IDLE_S = 3.0
EOF_TIMEOUT_S = 10.0
PUSH_LIMIT = 32 * MiB  # a server that queues without bound has this much queued at the FIN

payload_size = st.one_of(
    st.integers(min_value=0, max_value=64 * KiB),
    st.integers(min_value=64 * KiB, max_value=16 * MiB),
    st.sampled_from([1, 16 * MiB]),
)


def assert_echo_then_fin(target: Target, payload: bytes, outcome: Outcome, how: str) -> None:
    """All of the payload came back, then the server's FIN; no reset."""
    assert_same_stream(payload, outcome.received, what=f"one connection to {target.name}", data=how)
    assert not outcome.reset, f"the server reset the connection instead of closing it ({how})"
    assert outcome.eof, f"the server did not close its side after sending everything back ({how})"


@scenario("HALF-001", "after the client's half-close, everything comes back (up to 16 MiB), then FIN")
# No shrinking: (size, seed) already replays a failure, and shrinking a server that never
# closes would wait out the timeout hundreds of times.
@settings(max_examples=6, phases=NO_SHRINK)
@given(size=payload_size, seed=st.integers(0, 2**32 - 1))
def test_everything_then_eof(target: Target, size: int, seed: int) -> None:
    """After the client's shutdown(SHUT_WR) the server MUST send back every byte, then close, not reset."""
    payload = seeded_payload(size, seed)
    outcome = exchange(target.address, payload, timeout=EOF_TIMEOUT_S + size / MiB)
    assert_echo_then_fin(target, payload, outcome, f"{size} random bytes (seed {seed}), then half-close")


@scenario("HALF-002", "a half-close with nothing sent is answered by EOF")
def test_half_close_with_nothing_sent(target: Target) -> None:
    """A client that sends nothing and half-closes MUST get EOF back promptly: no bytes, no reset."""
    outcome = exchange(target.address, b"", timeout=EOF_TIMEOUT_S)
    assert_echo_then_fin(target, b"", outcome, "connect, shutdown(SHUT_WR) at once")


@scenario("HALF-003", f"a connection idle for {IDLE_S:.0f} s still echoes, then closes on half-close")
def test_idle_connection_still_echoes(target: Target) -> None:
    """The server MUST NOT close, or send anything on, a connection that is merely idle."""
    first, second = seeded_payload(1000, seed=31), seeded_payload(1000, seed=32)
    with connect(target.address, timeout=EOF_TIMEOUT_S) as sock:
        echo = exchange(target.address, first, half_close=False, sock=sock, timeout=EOF_TIMEOUT_S)
        assert_same_stream(first, echo.received, what="the message before the idle period")
        unsolicited = read_for(sock, IDLE_S)
        assert unsolicited == b"", (
            f"during {IDLE_S} s of silence the server sent {len(unsolicited)} bytes: {unsolicited[:64]!r}"
        )
        echo = exchange(target.address, second, half_close=False, sock=sock, timeout=EOF_TIMEOUT_S)
        assert_same_stream(second, echo.received, what=f"the message after {IDLE_S} s idle")
        # Nothing is in flight now: this half-close tests the end, not HALF-001's flushing.
        outcome = exchange(target.address, b"", sock=sock, timeout=EOF_TIMEOUT_S)
    assert_echo_then_fin(
        target, b"", outcome, f"1000 bytes, echo, {IDLE_S} s idle, 1000 bytes, echo, half-close"
    )


def read_for(sock: Stream, duration: float) -> bytes:
    """Whatever the server sends during ``duration`` seconds; fails on its EOF or a reset."""
    deadline = time.monotonic() + duration
    received = bytearray()
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        while (remaining := deadline - time.monotonic()) > 0:
            if not (buffered_input(sock) or selector.select(remaining)):
                continue
            idle_s = time.monotonic() - (deadline - duration)
            try:
                chunk = sock.recv(64 * KiB)
            except ConnectionResetError:
                raise AssertionError(f"the server reset an idle connection after {idle_s:.2f} s") from None
            assert chunk, f"the server closed an idle connection after {idle_s:.2f} s"
            received += chunk
    return bytes(received)


@scenario("HALF-004", "a half-close while MiBs of echo are still queued in the server: all of it arrives")
def test_half_close_with_echo_in_flight(target: Target) -> None:
    """The server MUST deliver the echo still queued when the client's FIN arrives, then close.

    The client sends without reading until flow control stops it (or up to 32 MiB), so the
    echo fills every buffer on the way back, the server's own queue included; then it
    half-closes and only then reads. A server that closes at EOF without flushing its queue
    loses the tail of the echo, or resets.
    """
    payload = seeded_payload(PUSH_LIMIT, seed=4)
    with connect(target.address, timeout=EOF_TIMEOUT_S) as sock:
        push = push_until_stalled(sock, payload, quiet_s=0.3, timeout=EOF_TIMEOUT_S)
        sock.shutdown(socket.SHUT_WR)
        outcome = read_to_eof(sock, EOF_TIMEOUT_S + push.sent / MiB)
    how = (
        f"the first {push.sent} bytes of 32 MiB random bytes (seed 4) sent without reading "
        f"(stalled={push.stalled}), then half-close, then read"
    )
    assert_echo_then_fin(target, payload[: push.sent], outcome, how)
