"""Clients that put a server under pressure: many at once, one that stops reading, one that aborts.

``duplex.exchange`` drives one connection. The concurrency, flow-control, abort and leak
scenarios need more: a crowd of connections served from one non-blocking loop (so that a
server which serves one client at a time is caught, not merely slowed down), a client that
sends without reading until TCP flow control stops it, and a client that closes with a reset.
"""

from __future__ import annotations

import contextlib
import resource
import selectors
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from conformance.harness.duplex import DEFAULT_READ_SIZE, ExchangeTimeout, Outcome, connect
from conformance.harness.servers import Address

PUSH_CHUNK = 256 * 1024
SHOWN_LAGGARDS = 5  # how many unfinished connections a timeout message lists


def raise_fd_limit(wanted: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE towards ``wanted`` (at most the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def reset(sock: socket.socket) -> None:
    """Close abortively: with SO_LINGER {on, 0 s}, close() sends RST instead of FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@dataclass(frozen=True)
class Push:
    """How far a client that never reads got before flow control stopped it."""

    sent: int
    stalled: bool  # the socket stayed unwritable for the whole quiet period
    elapsed_s: float


def push_until_stalled(
    sock: socket.socket, payload: bytes, *, quiet_s: float = 0.5, timeout: float = 20.0
) -> Push:
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


@dataclass
class _Peer:
    """One connection of a crowd."""

    index: int
    sock: socket.socket
    payload: bytes
    sent: int = 0
    received: bytearray = field(default_factory=bytearray)
    eof: bool = False
    reset: bool = False
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
        writable = self.sent < len(self.payload) and outstanding < window
        return selectors.EVENT_READ | (selectors.EVENT_WRITE if writable else 0)

    def read(self) -> None:
        try:
            chunk = self.sock.recv(DEFAULT_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except (ConnectionResetError, BrokenPipeError):
            self.reset = True
            return
        self.eof = not chunk
        self.received += chunk

    def write(self, chunk_size: int, window: int) -> None:
        outstanding = self.sent - len(self.received)
        size = min(chunk_size, window - outstanding, len(self.payload) - self.sent)
        try:
            self.sent += self.sock.send(self.payload[self.sent : self.sent + size])
        except (BlockingIOError, InterruptedError):
            return
        except (ConnectionResetError, BrokenPipeError):
            self.reset = True

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
) -> list[Outcome]:
    """Connect one client per payload, all at once, and echo every payload from one loop.

    Phase one: every client sends its payload in chunks of ``chunk_size`` (ready clients
    take turns in index order), never more than ``window`` bytes ahead of its echo, and
    waits for the whole echo; no client half-closes before every client has its echo, so a
    server that serves one connection at a time until EOF times out here. Phase two: every
    client half-closes and reads until EOF. Returns one Outcome per payload, in order.
    """
    started = time.monotonic()
    deadline = started + timeout
    window = window or max((len(payload) for payload in payloads), default=1) or 1
    with contextlib.ExitStack() as stack, selectors.DefaultSelector() as selector:
        peers = []
        for index, payload in enumerate(payloads):
            sock = stack.enter_context(connect(address, timeout, nodelay=True))
            sock.setblocking(False)
            peers.append(_Peer(index, sock, payload))
        loop = _CrowdLoop(selector, peers, chunk_size, window, deadline, timeout)
        loop.run_until(lambda peer: peer.echoed, "echo every payload before any client half-closes")
        for peer in peers:
            if not peer.gone:
                peer.sock.shutdown(socket.SHUT_WR)
        loop.run_until(lambda peer: peer.gone, "read every echo to EOF after the half-close")
        elapsed = time.monotonic() - started
        return [Outcome(bytes(peer.received), peer.eof, peer.reset, elapsed) for peer in peers]


@dataclass
class _CrowdLoop:
    selector: selectors.BaseSelector
    peers: list[_Peer]
    chunk_size: int
    window: int
    deadline: float
    timeout: float

    def run_until(self, finished: Callable[[_Peer], bool], phase: str) -> None:
        pending = [peer for peer in self.peers if not finished(peer)]
        while pending:
            now = time.monotonic()
            if now >= self.deadline:
                self._give_up(pending, phase)
            for peer in self.peers:
                self._update_interest(peer)
            ready = self.selector.select(self.deadline - now)
            for key, mask in sorted(ready, key=lambda event: int(event[0].data.index)):
                peer = key.data
                if mask & selectors.EVENT_READ:
                    peer.read()
                if mask & selectors.EVENT_WRITE and not peer.gone:
                    peer.write(self.chunk_size, self.window)
            pending = [peer for peer in pending if not finished(peer)]

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

    def _give_up(self, pending: list[_Peer], phase: str) -> None:
        count = len(self.peers)
        shown = "\n  ".join(peer.progress(count) for peer in pending[:SHOWN_LAGGARDS])
        more = f"\n  ... and {len(pending) - SHOWN_LAGGARDS} more" if len(pending) > SHOWN_LAGGARDS else ""
        raise ExchangeTimeout(
            f"{len(pending)} of {count} clients could not {phase} within {self.timeout} s:\n  {shown}{more}"
        )
