"""STATE: several connections in arbitrary interleavings keep their streams apart and whole.

Hypothesis drives a state machine over up to a handful of simultaneous connections: it opens
them, sends chunks on them, reads some of the echo back, pauses, half-closes them, resets them
(SO_LINGER 0, then close) and opens more, in whatever order it likes. After every step, each
connection must have received a prefix of what it sent (never another connection's bytes, never
a byte out of order); after its half-close the whole stream must arrive, then EOF. This catches
servers that share one buffer between connections, mix up which socket a chunk belongs to, lose
a connection's pending echo when another one closes, or crash or stall when a client resets.
Hypothesis prints the failing sequence of steps, which replays it.
"""

from __future__ import annotations

import selectors
import socket
import struct
import time
from dataclasses import dataclass, field

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from conformance.harness.duplex import connect
from conformance.harness.scenarios import scenario
from conformance.harness.servers import Address
from conformance.harness.streams import assert_same_stream
from conformance.harness.targets import Target

KiB = 1 << 10
MAX_OPEN = 4
MAX_OPENED = 8  # connections per run, open or finished
IO_TIMEOUT_S = 10.0  # any single socket operation
READ_WAIT_S = 0.05  # how long "read some" waits for bytes to arrive
MAX_PAUSE_S = 0.01
READ_SIZE = 64 * KiB


@dataclass
class Connection:
    """One client connection and the two streams the invariant compares."""

    number: int
    sock: socket.socket
    sent: bytearray = field(default_factory=bytearray)
    received: bytearray = field(default_factory=bytearray)

    @property
    def name(self) -> str:
        return f"connection #{self.number}"

    def drain(self, wait: float) -> bool:
        """Read whatever arrives within ``wait`` seconds; True once the server's EOF was read."""
        deadline = time.monotonic() + wait
        with selectors.DefaultSelector() as selector:
            selector.register(self.sock, selectors.EVENT_READ)
            while selector.select(max(0.0, deadline - time.monotonic())):
                chunk = self.recv()
                if not chunk:
                    return True
                self.received += chunk
                if time.monotonic() >= deadline:
                    break
        return False

    def recv(self) -> bytes:
        try:
            return self.sock.recv(READ_SIZE)
        except ConnectionResetError:
            raise AssertionError(
                f"{self.name}: the server reset the connection "
                f"(sent {len(self.sent)}, received {len(self.received)})"
            ) from None

    def send(self, data: bytes) -> None:
        """Send all of ``data`` while reading the echo, so neither side's buffers can fill up."""
        view = memoryview(data)
        deadline = time.monotonic() + IO_TIMEOUT_S
        with selectors.DefaultSelector() as selector:
            selector.register(self.sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
            while view:
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"{self.name}: could not send {len(view)} bytes in {IO_TIMEOUT_S} s"
                for _, mask in selector.select(remaining):
                    if mask & selectors.EVENT_READ:
                        chunk = self.recv()
                        assert chunk, f"{self.name}: the server closed while the client was still sending"
                        self.received += chunk
                    if mask & selectors.EVENT_WRITE:
                        sent = self.sock.send(view)
                        self.sent += view[:sent]
                        view = view[sent:]


def echo_machine(address: Address) -> type[RuleBasedStateMachine]:
    """The state machine class for one server (a class per test: ``target`` is a fixture)."""

    class EchoConnections(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.open: list[Connection] = []
            self.opened = 0

        def teardown(self) -> None:
            for connection in self.open:
                connection.sock.close()

        @precondition(lambda self: len(self.open) < MAX_OPEN and self.opened < MAX_OPENED)
        @rule()
        def open_connection(self) -> None:
            sock = connect(address, timeout=IO_TIMEOUT_S)
            sock.setblocking(False)
            self.open.append(Connection(self.opened, sock))
            self.opened += 1

        @precondition(lambda self: self.open)
        @rule(
            which=st.integers(min_value=0, max_value=MAX_OPEN - 1),
            data=st.binary(min_size=1, max_size=8 * KiB),
        )
        def send_chunk(self, which: int, data: bytes) -> None:
            self.pick(which).send(data)

        @precondition(lambda self: self.open)
        @rule(which=st.integers(min_value=0, max_value=MAX_OPEN - 1))
        def read_some(self, which: int) -> None:
            connection = self.pick(which)
            assert not connection.drain(READ_WAIT_S), (
                f"{connection.name}: the server closed before the client half-closed "
                f"(sent {len(connection.sent)}, received {len(connection.received)})"
            )

        @rule(seconds=st.floats(min_value=0.0, max_value=MAX_PAUSE_S))
        def pause(self, seconds: float) -> None:
            time.sleep(seconds)  # the scenario: time passes with data in flight

        @precondition(lambda self: self.open)
        @rule(which=st.integers(min_value=0, max_value=MAX_OPEN - 1))
        def half_close(self, which: int) -> None:
            connection = self.pick(which)
            connection.sock.shutdown(socket.SHUT_WR)
            eof = connection.drain(IO_TIMEOUT_S)
            self.close(connection)
            assert_same_stream(
                bytes(connection.sent),
                bytes(connection.received),
                what=f"{connection.name}, read until EOF after its half-close",
                replay="the steps Hypothesis printed above",
            )
            assert eof, f"{connection.name}: no EOF within {IO_TIMEOUT_S} s of the half-close"

        @precondition(lambda self: self.open)
        @rule(which=st.integers(min_value=0, max_value=MAX_OPEN - 1))
        def reset(self, which: int) -> None:
            connection = self.pick(which)
            connection.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close(connection)

        @invariant()
        def received_is_a_prefix_of_sent(self) -> None:
            for connection in self.open:
                assert connection.sent.startswith(connection.received), (
                    f"{connection.name} received bytes it did not send:\n"
                    + describe_prefix_violation(connection)
                )

        def pick(self, which: int) -> Connection:
            return self.open[which % len(self.open)]

        def close(self, connection: Connection) -> None:
            self.open.remove(connection)
            connection.sock.close()

    return EchoConnections


def describe_prefix_violation(connection: Connection) -> str:
    received = bytes(connection.received)
    try:
        assert_same_stream(bytes(connection.sent[: len(received)]), received, what=connection.name)
    except AssertionError as mismatch:
        return str(mismatch)
    return f"  sent {len(connection.sent)} bytes, received {len(received)}: more than was sent"


@scenario("STATE-001", "open/send/read/pause/half-close/reset interleaved over several connections")
def test_connection_state_machine(target: Target) -> None:
    """Each connection MUST receive a prefix of what it sent after every step, and, after its
    half-close, all of it and then EOF, whatever the other connections do (resets included)."""
    # Hypothesis leaves this function unannotated; its signature is (factory, *, settings).
    run_state_machine_as_test(  # type: ignore[no-untyped-call]
        echo_machine(target.address), settings=settings(max_examples=10, stateful_step_count=30)
    )
