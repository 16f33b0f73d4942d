"""A fragmenting TCP proxy: the suite's own middlebox between the client and the server.

The loopback interface delivers a write as one segment far more often than a real network does,
so a server that treats one recv() as one message can pass every test run over loopback and
still break in production. The proxy puts the network back: it forwards both directions but
re-slices them into seeded random chunk sizes, each sent on a TCP_NODELAY socket (so each is
its own segment), with small random delays between some of them.

Everything random comes from ``random.Random(f"{seed}:{connection}:{direction}")``, so the cut
points a failure saw replay from its seed (the cuts fall where the seed says, plus wherever the
proxy's own reads happened to end). The proxy passes the client's half-close on to the server
and the server's EOF on to the client, and it turns a reset on either side into a reset on the
other. Every socket operation has a timeout, every delay is bounded per connection, and the
context manager stops the threads and closes every socket, bounded in time.

    with FragmentingProxy(target.address, seed=1234) as proxy:
        exchange(proxy.address, payload)
"""

from __future__ import annotations

import contextlib
import random
import selectors
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType

from conformance.harness.servers import Address

IO_TIMEOUT_S = 30.0  # any single socket operation through the proxy
GRACE_S = 2.0  # how long stopping the proxy lets open connections finish on their own
JOIN_TIMEOUT_S = 5.0  # how long stopping the proxy then waits for each of its threads
READ_SIZE = 65536
CHUNK_CEILINGS = (8, 512, 8192)  # a chunk is 1..ceiling bytes, the ceiling drawn per chunk
DELAY_PROBABILITY = 0.25  # share of chunks followed by a delay
MAX_DELAY_S = 0.005
MAX_TOTAL_DELAY_S = 0.25  # per connection and direction


@dataclass
class _Slicer:
    """Where a direction's stream is cut, and the pauses between the pieces: all from the seed."""

    rng: random.Random
    delay_budget_s: float = MAX_TOTAL_DELAY_S
    _left_in_chunk: int = 0

    def cut(self, data: bytes) -> list[bytes]:
        pieces = []
        view = memoryview(data)
        while view:
            if not self._left_in_chunk:
                self._left_in_chunk = self.rng.randint(1, self.rng.choice(CHUNK_CEILINGS))
            size = min(self._left_in_chunk, len(view))
            pieces.append(bytes(view[:size]))
            view = view[size:]
            self._left_in_chunk -= size
        return pieces

    def next_delay(self) -> float:
        if self.rng.random() >= DELAY_PROBABILITY:
            return 0.0
        delay = min(self.rng.uniform(0.0, MAX_DELAY_S), self.delay_budget_s)
        self.delay_budget_s -= delay
        return delay


@dataclass
class _Link:
    """One proxied connection: the client's socket and the proxy's socket to the server."""

    number: int
    client: socket.socket
    server: socket.socket
    aborted: bool = False
    threads: list[threading.Thread] = field(default_factory=list)

    def abort(self) -> None:
        """Reset both sides: SO_LINGER 0 makes the final close() send RST instead of FIN."""
        self.aborted = True
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RD)  # wakes the other direction's blocked recv()

    def close(self) -> None:
        for sock in (self.client, self.server):
            sock.close()


class FragmentingProxy:
    """Forward to ``upstream``, re-slicing both directions with ``random.Random(seed)``."""

    def __init__(self, upstream: Address, seed: int, io_timeout: float = IO_TIMEOUT_S) -> None:
        self.upstream = upstream
        self.seed = seed
        self.io_timeout = io_timeout
        self.errors: list[str] = []  # what went wrong on the proxied connections, for reports
        self._host = "::1" if upstream.family == socket.AF_INET6 else "127.0.0.1"
        self._listener = socket.create_server((self._host, 0), family=upstream.family)
        self._listener.setblocking(False)
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._links: list[_Link] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._acceptor = threading.Thread(target=self._accept_loop, name="proxy-accept", daemon=True)

    @property
    def address(self) -> Address:
        """Where clients connect; over TLS they still talk to the server (the proxy forwards
        ciphertext, re-sliced, so the server's TLS record reassembly is tested too)."""
        return self.upstream.at(self._host, self._listener.getsockname()[1])

    def __enter__(self) -> FragmentingProxy:
        self._acceptor.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    def describe(self) -> str:
        """How to replay, and what the proxy saw go wrong (for failure messages)."""
        problems = "; ".join(self.errors) or "none"
        return f"FragmentingProxy(seed={self.seed}); proxy-side problems: {problems}"

    def stop(self) -> None:
        """Stop accepting; let open connections finish (bounded), then cut what is left."""
        self._stopping.set()
        self._wake_writer.send(b"x")
        self._acceptor.join(JOIN_TIMEOUT_S)
        with self._lock:
            links = list(self._links)
        grace_ends = time.monotonic() + GRACE_S
        for link in links:
            for thread in link.threads:
                thread.join(max(0.0, grace_ends - time.monotonic()))
        for link in links:
            if any(thread.is_alive() for thread in link.threads):
                self.errors.append(f"connection {link.number}: still open {GRACE_S} s after the test; reset")
                link.abort()
                for thread in link.threads:
                    thread.join(JOIN_TIMEOUT_S)
        for sock in (self._listener, self._wake_reader, self._wake_writer):
            sock.close()

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            number = 0
            while not self._stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self._listener and not self._stopping.is_set():
                        self._accept(number)
                        number += 1

    def _accept(self, number: int) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return  # the client gave up between readiness and accept()
        client.setblocking(True)
        client.settimeout(self.io_timeout)
        try:
            server = socket.create_connection((self.upstream.host, self.upstream.port), self.io_timeout)
        except OSError as exc:
            self.errors.append(f"connection {number}: cannot reach the server at {self.upstream}: {exc}")
            client.close()
            return
        for sock in (client, server):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        link = _Link(number, client, server)
        downstream = threading.Thread(
            target=self._pump, args=(link, server, client, "server->client"), daemon=True
        )
        upstream = threading.Thread(target=self._serve, args=(link, downstream), daemon=True)
        link.threads.extend([upstream, downstream])
        with self._lock:
            self._links.append(link)
        downstream.start()
        upstream.start()

    def _serve(self, link: _Link, downstream: threading.Thread) -> None:
        """Pump client->server here; once both directions have ended, close both sockets."""
        self._pump(link, link.client, link.server, "client->server")
        downstream.join(self.io_timeout + JOIN_TIMEOUT_S)
        link.close()

    def _pump(self, link: _Link, source: socket.socket, sink: socket.socket, direction: str) -> None:
        """Copy until the source's EOF and pass the EOF on as a half-close; reset both on error."""
        slicer = _Slicer(random.Random(f"{self.seed}:{link.number}:{direction}"))
        try:
            self._forward(source, sink, slicer)
            if not link.aborted:  # an abort wakes this pump with a fake EOF: no FIN before the RST
                sink.shutdown(socket.SHUT_WR)
        except OSError as exc:
            if not link.aborted:
                self.errors.append(f"connection {link.number} {direction}: {exc!r}; resetting both sides")
            link.abort()

    def _forward(self, source: socket.socket, sink: socket.socket, slicer: _Slicer) -> None:
        while data := source.recv(READ_SIZE):
            for piece in slicer.cut(data):
                sink.sendall(piece)
                if delay := slicer.next_delay():
                    time.sleep(delay)  # the fragmenting itself: bounded per chunk and per connection
