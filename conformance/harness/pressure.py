"""Clients that put a server under pressure: many at once, one that stops reading, one that aborts.

``duplex.exchange`` drives one connection. The concurrency, flow-control, abort and leak
scenarios need more: a crowd of connections served from one non-blocking loop (so that a
server which serves one client at a time is caught, not merely slowed down), a client that
sends without reading until TCP flow control stops it, and a client that closes with a reset.
"""

from __future__ import annotations

import contextlib
import fcntl
import resource
import selectors
import socket
import struct
import termios
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from conformance.harness.duplex import DEFAULT_READ_SIZE, STALL_S, ExchangeTimeout, Outcome, connect_within
from conformance.harness.payloads import assert_same_stream
from conformance.harness.servers import Address
from conformance.harness.tls import Stream, buffered_input, flush, pending_output

PUSH_CHUNK = 256 * 1024
SHOWN_LAGGARDS = 5  # how many unfinished connections a timeout message lists
POLL_S = 0.05  # how often read_until_delivered looks at the send queue when nothing arrives
RAMP_UNECHOED = 4  # connected clients still waiting for their first echo (see _CrowdLoop._admit)


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE towards ``wanted`` (at most the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def reset(sock: Stream) -> None:
    """Close abortively: with SO_LINGER {on, 0 s}, close() sends RST instead of FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@dataclass(frozen=True)
class Push:
    """How far a client that never reads got before flow control stopped it."""

    sent: int
    stalled: bool  # the socket stayed unwritable for the whole quiet period
    elapsed_s: float


def push_until_stalled(sock: Stream, payload: bytes, *, quiet_s: float = 0.5, timeout: float = 20.0) -> Push:
    """Send ``payload`` without reading, until it is all sent or the send side stalls.

    A server that applies backpressure stops reading once it cannot write the echo back, the
    socket buffers on both sides fill, and this socket stops being writable: when it stays
    so for ``quiet_s``, the push has stalled. The socket is left non-blocking.
    """
    started = time.monotonic()
    deadline = started + timeout
    view = memoryview(payload)
    sent = 0
    sock.setblocking(False)
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_WRITE)
        while sent < len(view) and (now := time.monotonic()) < deadline:
            if not selector.select(min(quiet_s, deadline - now)):
                if time.monotonic() - now >= quiet_s:
                    return Push(sent, True, time.monotonic() - started)
                continue
            with contextlib.suppress(BlockingIOError, InterruptedError):
                sent += sock.send(view[sent : sent + PUSH_CHUNK])
    return Push(sent, False, time.monotonic() - started)


def unacknowledged(sock: Stream) -> int:
    """Bytes this socket has sent (or queued) that the peer's kernel has not acknowledged yet.

    Linux's SIOCOUTQ (TIOCOUTQ): a FIN counts as one byte, so after shutdown(SHUT_WR) a 0
    means the peer has received every byte and the FIN.
    """
    count: int = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, struct.pack("i", 0)))[0]
    return count


def read_until_delivered(sock: Stream, *, timeout: float = 5.0) -> None:
    """Read (and drop) the echo only as far as needed for the server to take every byte sent.

    Each read makes room for the server to write, so it reads on, and the client's queued
    bytes -- and its FIN, after shutdown(SHUT_WR) -- reach it. Stops as soon as all of them
    are acknowledged, leaving the rest of the echo unread, or when the server closes, or at
    the deadline (a server that stopped echoing altogether). Over TLS, the ciphertext still
    held by the client is sent on the way.
    """
    deadline = time.monotonic() + timeout
    sock.setblocking(False)
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        while (unacknowledged(sock) or pending_output(sock)) and (now := time.monotonic()) < deadline:
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if pending_output(sock) else 0)
            selector.modify(sock, events)
            for _, mask in selector.select(min(POLL_S, deadline - now)):
                if mask & selectors.EVENT_WRITE:
                    flush(sock)
                if mask & selectors.EVENT_READ:
                    with contextlib.suppress(BlockingIOError, InterruptedError):
                        if not sock.recv(DEFAULT_READ_SIZE):
                            return


def read_back(sock: Stream, payload: bytes, push: Push, *, what: str) -> None:
    """Read back the echo of the part of ``payload`` a push got out, sending nothing more.

    Ends a stalled connection cleanly: once the echo is read, close() sends FIN, not RST.
    """
    pushed = payload[: push.sent]
    outcome = resume(sock, pushed, push.sent, timeout=30.0, what=what)
    assert_same_stream(pushed, outcome.received, what=f"{what}, read back after pushing {push.sent} bytes")


@dataclass
class _Peer:
    """One connection of a crowd."""

    index: int
    sock: Stream
    payload: bytes
    sent: int = 0
    received: bytearray = field(default_factory=bytearray)
    eof: bool = False
    reset: bool = False
    diverged: bool = False  # received a byte that differs from the one sent at that offset
    events: int = 0

    @property
    def gone(self) -> bool:
        return self.eof or self.reset

    @property
    def echoed(self) -> bool:
        return self.gone or len(self.received) >= len(self.payload)

    def wanted_events(self, window: int) -> int:
        if self.gone:
            return 0
        outstanding = self.sent - len(self.received)
        writable = (self.sent < len(self.payload) and outstanding < window) or pending_output(self.sock)
        return selectors.EVENT_READ | (selectors.EVENT_WRITE if writable else 0)

    def read(self) -> int:
        """Read what has arrived; return how many bytes that was."""
        try:
            chunk = self.sock.recv(DEFAULT_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return 0
        except (ConnectionResetError, BrokenPipeError):
            self.reset = True
            return 0
        start = len(self.received)
        self.diverged = self.diverged or self.payload[start : start + len(chunk)] != chunk
        self.eof = not chunk
        self.received += chunk
        return len(chunk)

    def write(self, chunk_size: int, window: int) -> int:
        """Send the next chunk, as far as the window allows; return how many bytes went out."""
        outstanding = self.sent - len(self.received)
        size = min(chunk_size, window - outstanding, len(self.payload) - self.sent)
        try:
            if size <= 0:
                flush(self.sock)  # only TLS ciphertext (or the FIN after close_notify) to send
                return 0
            written = self.sock.send(self.payload[self.sent : self.sent + size])
        except (BlockingIOError, InterruptedError):
            return 0
        except (ConnectionResetError, BrokenPipeError):
            self.reset = True
            return 0
        self.sent += written
        return written

    def progress(self, count: int) -> str:
        return (
            f"client {self.index} of {count}: sent {self.sent} of {len(self.payload)} bytes, "
            f"received {len(self.received)}, eof={self.eof}, reset={self.reset}"
        )


def exchange_crowd(
    address: Address,
    payloads: Sequence[bytes],
    *,
    chunk_size: int = 4096,
    window: int | None = None,
    timeout: float = 30.0,
    stall_s: float = 5.0,
) -> list[Outcome]:
    """Connect one client per payload and echo every payload, all from one loop.

    Phase one: the clients connect one after another and send their payloads in chunks of
    ``chunk_size`` (ready clients take turns in index order), never more than ``window``
    bytes ahead of their echo; none half-closes before every client has its whole echo, so
    all are connected at once, and a server that serves one connection at a time until EOF
    fails here (no client progresses for ``stall_s``). Phase two: every client half-closes
    and reads until EOF, so bytes that arrive after its echo are caught too. A client that
    receives a byte it did not send ends the exchange at once. Returns one Outcome per
    payload, in order.
    """
    with contextlib.ExitStack() as stack:
        connections = (connect_within(stack, address, timeout, nodelay=True) for _ in payloads)
        return _crowd(
            connections, payloads, chunk_size=chunk_size, window=window, timeout=timeout, stall_s=stall_s
        )


def exchange_connected(
    connections: Sequence[Stream], payloads: Sequence[bytes], *, timeout: float = 30.0, stall_s: float = 5.0
) -> list[Outcome]:
    """``exchange_crowd`` over clients already connected (one per payload, in order): the crowd
    loop starts each in turn, as it would a fresh connect."""
    return _crowd(iter(connections), payloads, chunk_size=4096, window=None, timeout=timeout, stall_s=stall_s)


def _crowd(
    connections: Iterator[Stream],
    payloads: Sequence[bytes],
    *,
    chunk_size: int,
    window: int | None,
    timeout: float,
    stall_s: float,
) -> list[Outcome]:
    started = time.monotonic()
    window = window or max((len(payload) for payload in payloads), default=1) or 1
    with selectors.DefaultSelector() as selector:
        loop = _CrowdLoop(selector, chunk_size, window, timeout, stall_s, queued=deque(payloads))
        loop.open_connection = lambda: next(connections)
        loop.run_until(lambda peer: peer.echoed, "echo every payload before any client half-closes")
        if not loop.diverged:
            for peer in loop.peers:
                if not peer.gone:
                    peer.sock.shutdown(socket.SHUT_WR)
            loop.run_until(lambda peer: peer.gone, "read every echo to EOF after the half-close")
        elapsed = time.monotonic() - started
        return [Outcome(bytes(peer.received), peer.eof, peer.reset, elapsed) for peer in loop.peers]


def resume(
    sock: Stream, payload: bytes, already_sent: int, *, timeout: float = 60.0, what: str = "the client"
) -> Outcome:
    """Go on with a connection that has sent ``payload[:already_sent]`` and read nothing yet.

    Sends the rest of ``payload`` while reading, until the whole echo has arrived (or the
    server closes or resets); no half-close, so the caller may close the socket cleanly.
    """
    started = time.monotonic()
    sock.setblocking(False)
    with selectors.DefaultSelector() as selector:
        loop = _CrowdLoop(selector, PUSH_CHUNK, len(payload) or 1, timeout, stall_s=STALL_S)
        loop.peers.append(peer := _Peer(0, sock, payload, sent=already_sent))
        loop.run_until(lambda peer: peer.echoed, f"read back the whole echo ({what})")
    sock.settimeout(timeout)
    return Outcome(bytes(peer.received), peer.eof, peer.reset, time.monotonic() - started)


@dataclass
class _CrowdLoop:
    """One selectors loop over many connections, admitting queued clients as it goes."""

    selector: selectors.BaseSelector
    chunk_size: int
    window: int
    timeout: float
    stall_s: float  # give up once no client has sent or received a byte for this long
    queued: deque[bytes] = field(default_factory=deque)  # payloads of clients not yet connected
    open_connection: Callable[[], Stream] | None = None
    peers: list[_Peer] = field(default_factory=list)
    diverged: bool = False  # some client received bytes it did not send
    deadline: float = field(init=False)
    last_progress: float = field(init=False)

    def __post_init__(self) -> None:
        self.last_progress = time.monotonic()
        self.deadline = self.last_progress + self.timeout

    def run_until(self, finished: Callable[[_Peer], bool], phase: str) -> None:
        pending = [peer for peer in self.peers if not finished(peer)]
        while (pending or self.queued) and not self.diverged:
            now = time.monotonic()
            if now >= self.deadline:
                self._give_up(pending, phase, f"within {self.timeout} s")
            if now >= self.last_progress + self.stall_s:
                self._give_up(pending, phase, f"(no byte sent or received for {self.stall_s} s)")
            pending += self._admit()
            for peer in self.peers:
                self._update_interest(peer)
            # TLS may hold decrypted bytes that no socket will signal again: serve them now.
            buffered = {
                peer.index: peer for peer in self.peers if not peer.gone and buffered_input(peer.sock)
            }
            wait = 0.0 if buffered else min(self.deadline, self.last_progress + self.stall_s) - now
            ready = {key.data.index: (key.data, mask) for key, mask in self.selector.select(wait)}
            for index, peer in buffered.items():
                ready[index] = (peer, ready.get(index, (peer, 0))[1] | selectors.EVENT_READ)
            for _, (peer, mask) in sorted(ready.items()):
                self._serve(peer, mask)
            pending = [peer for peer in pending if not finished(peer)]

    def _serve(self, peer: _Peer, mask: int) -> None:
        moved = peer.read() if mask & selectors.EVENT_READ else 0
        if mask & selectors.EVENT_WRITE and not peer.gone:
            moved += peer.write(self.chunk_size, self.window)
        if moved:
            self.last_progress = time.monotonic()
        self.diverged = self.diverged or peer.diverged

    def _admit(self) -> list[_Peer]:
        """Connect queued clients while few connections still wait for their first echo.

        A connection the server has not accepted yet waits in its listen backlog; a burst
        of connects beyond the backlog makes the kernel drop SYNs, and each drop costs a
        client a one-second retransmission (socat listens with a backlog of 5). Once a
        client's first bytes come back, the server has accepted it, so admitting a new client
        only while fewer than RAMP_UNECHOED are unanswered never overflows the backlog.
        """
        admitted: list[_Peer] = []
        while self.queued and self.open_connection is not None and self._unechoed() < RAMP_UNECHOED:
            sock = self.open_connection()
            sock.setblocking(False)
            admitted.append(_Peer(len(self.peers), sock, self.queued.popleft()))
            self.peers.append(admitted[-1])
        return admitted

    def _unechoed(self) -> int:
        return sum(1 for peer in self.peers if peer.payload and not peer.received and not peer.gone)

    def _update_interest(self, peer: _Peer) -> None:
        wanted = peer.wanted_events(self.window)
        if wanted == peer.events:
            return
        if not peer.events:
            self.selector.register(peer.sock, wanted, peer)
        elif not wanted:
            self.selector.unregister(peer.sock)
        else:
            self.selector.modify(peer.sock, wanted, peer)
        peer.events = wanted

    def _give_up(self, pending: list[_Peer], phase: str, why: str) -> None:
        count = len(self.peers) + len(self.queued)
        shown = "\n  ".join(peer.progress(count) for peer in pending[:SHOWN_LAGGARDS])
        more = f"\n  ... and {len(pending) - SHOWN_LAGGARDS} more" if len(pending) > SHOWN_LAGGARDS else ""
        unconnected = (
            f"\n  {len(self.queued)} clients not connected yet: the server had not echoed the first bytes "
            f"of {self._unechoed()} connected ones"
            if self.queued
            else ""
        )
        raise ExchangeTimeout(
            f"{len(pending)} of {count} clients could not {phase} {why}:\n  {shown}{more}{unconnected}"
        )
