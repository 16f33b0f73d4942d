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

from conformance.harness.duplex import connect, exchange
from conformance.harness.payloads import assert_same_stream, describe_mismatch
from conformance.harness.scenarios import scenario
from conformance.harness.servers import Address
from conformance.harness.targets import Target
from conformance.harness.tls import Stream, buffered_input, flush, pending_output

KiB = 1 << 10
MAX_OPEN = 4
MAX_OPENED = 8  # connections per run, open or finished
IO_TIMEOUT_S = 10.0  # any single socket operation
READ_WAIT_S = 0.05  # how long "read some" waits for bytes to arrive
MAX_PAUSE_S = 0.01
READ_SIZE = 64 * KiB
PROBE = b"?"  # echoed on a fresh connection to check that the server still serves
PROBE_TIMEOUT_S = 2.0


@dataclass
class Connection:
    """One client connection and the two streams the invariant compares."""

    number: int
    sock: Stream
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
            # TLS may hold decrypted bytes the socket will not signal again: read those first.
            while buffered_input(self.sock) or selector.select(max(0.0, deadline - time.monotonic())):
                chunk = self.recv()
                if chunk == b"":
                    return True
                self.received += chunk or b""
                if time.monotonic() >= deadline:
                    break
        return False

    def recv(self) -> bytes | None:
        """Some bytes, b"" at EOF, or None when nothing was there after all."""
        try:
            return self.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return None
        except ConnectionResetError:
            raise AssertionError(f"{self.name}: the server reset the connection ({self.progress})") from None

    def send(self, data: bytes) -> None:
        """Send all of ``data`` while reading the echo, so neither side's buffers can fill up."""
        view = memoryview(data)
        deadline = time.monotonic() + IO_TIMEOUT_S
        with selectors.DefaultSelector() as selector:
            selector.register(self.sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
            while view or pending_output(self.sock):  # over TLS, until the ciphertext is out too
                remaining = deadline - time.monotonic()
                assert remaining > 0, (
                    f"{self.name}: could not send {len(view)} more bytes in {IO_TIMEOUT_S} s"
                )
                for _, mask in selector.select(remaining):
                    if mask & selectors.EVENT_READ:
                        chunk = self.recv()
                        assert chunk != b"", f"{self.name}: the server closed while the client was sending"
                        self.received += chunk or b""
                    if mask & selectors.EVENT_WRITE:
                        sent = self.send_some(view)
                        self.sent += view[:sent]
                        view = view[sent:]

    def send_some(self, view: memoryview) -> int:
        try:
            if not view:
                flush(self.sock)
                return 0
            return self.sock.send(view)
        except (BlockingIOError, InterruptedError):
            return 0
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise AssertionError(f"{self.name}: sending failed with {exc!r} ({self.progress})") from None

    @property
    def progress(self) -> str:
        return f"sent {len(self.sent)} bytes, received {len(self.received)}"


def probe(address: Address) -> str:
    """Echo one byte on a fresh connection; what went wrong, or "" if it came back.

    No half-close: the HALF family, and this machine's half_close rule, judge that.
    """
    try:
        outcome = exchange(address, PROBE, half_close=False, timeout=PROBE_TIMEOUT_S)
    except (OSError, AssertionError) as exc:
        return f"a fresh connection failed: {exc!r}"
    if outcome.received != PROBE or outcome.reset:
        return f"a fresh connection sent {PROBE!r} and got {outcome.received!r}, reset={outcome.reset}"
    return ""


class MachineServer:
    """The server the machine talks to.

    When the suite can start the server, the test uses an instance of its own under the
    harness's restart policy (``Target.recover``), and is also given a fresh one when the
    old one stopped echoing: every example, and every replay while Hypothesis shrinks, then
    begins on a live server, so a server that crashes (on a reset, say) shrinks to the steps
    that crash it, instead of failing every later example at connect(). Otherwise (an address
    only) the machine talks to ``target.address``.
    """

    def __init__(self, target: Target) -> None:
        self._shared = target
        self._own: Target | None = None

    def address(self) -> Address:
        if not self._shared.spec.can_launch:
            return self._shared.address
        if self._own is None:
            self._own = Target.open(self._shared.spec)
        elif self._own.recover() is None and probe(self._own.address):
            self._own.restart()
        return self._own.address

    def crash_report(self) -> str:
        """How the server ended, if it has (waiting a moment: a crash takes effect asynchronously)."""
        death = self._own.death(PROBE_TIMEOUT_S) if self._own is not None else None
        return f"{death} during these steps" if death else ""

    def stop(self) -> None:
        if self._own is not None:
            self._own.close()


def echo_machine(server: MachineServer) -> type[RuleBasedStateMachine]:
    """The state machine class for one server (a class per test: ``target`` is a fixture)."""

    class EchoConnections(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.address = server.address()
            self.open: list[Connection] = []
            self.opened = 0

        def teardown(self) -> None:
            for connection in self.open:
                connection.sock.close()  # a reset, if its echo was not all read
            self.assert_still_serving("after the machine closed all its connections")

        @precondition(lambda self: len(self.open) < MAX_OPEN and self.opened < MAX_OPENED)
        @rule()
        def open_connection(self) -> None:
            sock = connect(self.address, timeout=IO_TIMEOUT_S)
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
                f"{connection.name}: the server closed before the client half-closed ({connection.progress})"
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
                data="the steps Hypothesis prints with this failure",
            )
            assert eof, f"{connection.name}: no EOF within {IO_TIMEOUT_S} s of the half-close"

        @precondition(lambda self: self.open)
        @rule(which=st.integers(min_value=0, max_value=MAX_OPEN - 1))
        def reset(self, which: int) -> None:
            connection = self.pick(which)
            connection.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close(connection)
            # Also the moment a server that crashes on a reset is caught, in the step that did it.
            self.assert_still_serving(f"after {connection.name} was reset")

        @invariant()
        def received_is_a_prefix_of_sent(self) -> None:
            for connection in self.open:
                received = bytes(connection.received)
                assert connection.sent.startswith(received), (
                    f"{connection.name} received bytes it did not send:\n"
                    + describe_mismatch(
                        bytes(connection.sent[: len(received)]), received, what=connection.name
                    )
                )

        def assert_still_serving(self, when: str) -> None:
            problem = probe(self.address)
            assert not problem, f"the server stopped serving {when}: {problem}"

        def pick(self, which: int) -> Connection:
            return self.open[which % len(self.open)]

        def close(self, connection: Connection) -> None:
            self.open.remove(connection)
            connection.sock.close()

    return EchoConnections


@scenario("STATE-001", "open/send/read/pause/half-close/reset interleaved over several connections")
def test_connection_state_machine(target: Target) -> None:
    """Each connection MUST receive a prefix of what it sent after every step, and, after its
    half-close, all of it and then EOF, whatever the other connections do (resets included)."""
    server = MachineServer(target)
    try:
        run_state_machine_as_test(
            echo_machine(server), settings=settings(max_examples=10, stateful_step_count=30)
        )
    except (AssertionError, OSError) as failure:
        if crash := server.crash_report():
            raise AssertionError(f"{failure}\n{crash}") from failure
        raise
    finally:
        server.stop()
