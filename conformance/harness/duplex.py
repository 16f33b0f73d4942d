"""The suite's test client: it sends and receives at the same time.

A client that writes everything before reading deadlocks against a correct server as soon as
the payload exceeds what the two socket buffers hold (the server blocks writing the echo, stops
reading, and the client blocks writing). So this client runs one non-blocking loop that writes
when the socket is writable and reads when it is readable, against a deadline, and it treats
the reply as a byte stream: chunk boundaries mean nothing in TCP.
"""

from __future__ import annotations

import contextlib
import itertools
import selectors
import socket
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from conformance.harness.servers import Address
from conformance.harness.tls import Stream, buffered_input, connect_tls, flush, pending_output, truncated

DEFAULT_TIMEOUT_S = 30.0
DEFAULT_READ_SIZE = 65536
# A correct server on loopback never lets 10 s pass without moving a byte while the client is
# reading and writing; a deadlocked one would otherwise hold the run for the whole timeout.
STALL_S = 10.0
HANDSHAKE_TIMEOUT_S = 10.0  # the most a TLS handshake may take on loopback


@dataclass(frozen=True)
class Outcome:
    """What one connection got back."""

    received: bytes
    eof: bool  # the server closed its side (recv returned b"")
    reset: bool  # the connection was reset (ECONNRESET) or the send side broke (EPIPE)
    elapsed_s: float
    truncated: bool = False  # TLS: the server's stream ended without its close_notify


class ExchangeTimeout(AssertionError):
    """The deadline passed; the message says how far the exchange got."""


def connect(address: Address, timeout: float = DEFAULT_TIMEOUT_S, nodelay: bool = False) -> Stream:
    """A connection with a timeout on every operation: a TCP socket, or a TLS stream over one
    whose handshake is complete (when the address says TLS)."""
    try:
        sock = socket.create_connection((address.host, address.port), timeout=timeout)
    except ConnectionRefusedError as exc:
        # Said plainly: with --server-addr this is how a server that died shows itself.
        raise ConnectionRefusedError(
            exc.errno, f"connect {address}: refused, nothing listens there (has the server died?)"
        ) from None
    if nodelay:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if address.tls is None:
        return sock
    return connect_tls(sock, address.tls, address.host, min(timeout, HANDSHAKE_TIMEOUT_S), str(address))


def connect_within(
    stack: contextlib.ExitStack, address: Address, timeout: float = DEFAULT_TIMEOUT_S, nodelay: bool = False
) -> Stream:
    """``connect()``, closed when ``stack`` unwinds."""
    sock = connect(address, timeout, nodelay)
    stack.callback(sock.close)
    return sock


def _cycle(sizes: Iterable[int] | None, default: int) -> Iterator[int]:
    return itertools.cycle(list(sizes) or [default]) if sizes is not None else itertools.repeat(default)


class _Writer:
    """Feeds ``payload`` in chunks of the given sizes, with optional pauses between chunks."""

    def __init__(self, payload: bytes, chunk_sizes: Iterable[int] | None, pauses_s: Iterable[float] | None):
        self.payload = memoryview(payload)
        self.offset = 0
        self._chunk_sizes = _cycle(chunk_sizes, len(payload) or 1)
        self._pauses = itertools.cycle(list(pauses_s) or [0.0]) if pauses_s else itertools.repeat(0.0)
        self._chunk_end = 0
        self.not_before = 0.0

    @property
    def done(self) -> bool:
        return self.offset >= len(self.payload)

    def write(self, sock: Stream) -> None:
        if self.offset >= self._chunk_end:
            self._chunk_end = min(len(self.payload), self.offset + max(1, next(self._chunk_sizes)))
        # A non-blocking send may take fewer bytes than offered (a partial write): keep the
        # rest of the chunk for the next writable event.
        self.offset += sock.send(self.payload[self.offset : self._chunk_end])
        if self.offset >= self._chunk_end:
            self.not_before = time.monotonic() + next(self._pauses)


def exchange(
    address: Address,
    payload: bytes,
    *,
    chunk_sizes: Iterable[int] | None = None,
    read_sizes: Iterable[int] | None = None,
    pauses_s: Iterable[float] | None = None,
    half_close: bool = True,
    nodelay: bool = False,
    timeout: float = DEFAULT_TIMEOUT_S,
    sock: Stream | None = None,
) -> Outcome:
    """Send ``payload`` while reading the echo.

    With ``half_close`` the client shuts down its sending side after the last byte and reads
    until the server's EOF; without it, it reads until as many bytes came back as were sent.
    Over TLS the half-close is close_notify followed by a TCP FIN.
    """
    own_socket = sock is None
    sock = sock or connect(address, timeout, nodelay)
    try:
        return _run(
            sock,
            _Writer(payload, chunk_sizes, pauses_s),
            _cycle(read_sizes, DEFAULT_READ_SIZE),
            half_close,
            timeout,
        )
    finally:
        if own_socket:
            sock.close()


def _run(
    sock: Stream, writer: _Writer, read_sizes: Iterator[int], half_close: bool, timeout: float
) -> Outcome:
    started = last_progress = time.monotonic()
    deadline = started + timeout
    received = bytearray()
    eof = reset = shut = False
    sock.setblocking(False)
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
        while not (eof or reset):
            if writer.done and half_close and not shut:
                sock.shutdown(socket.SHUT_WR)
                shut = True
            if writer.done and not half_close and len(received) >= len(writer.payload):
                break
            now = time.monotonic()
            if now >= deadline or now - last_progress >= STALL_S:
                raise ExchangeTimeout(
                    stall_report(
                        overdue=now >= deadline,
                        timeout=timeout,
                        sent=writer.offset,
                        total=len(writer.payload),
                        received=len(received),
                        shut=shut,
                    )
                )
            may_write = not writer.done and now >= writer.not_before
            want_write = may_write or pending_output(sock)
            selector.modify(sock, selectors.EVENT_READ | (selectors.EVENT_WRITE if want_write else 0))
            wake = min(deadline, last_progress + STALL_S)
            wait = wake - now if writer.done or want_write else min(wake, writer.not_before) - now
            # TLS may hold decrypted bytes the socket will never signal again: read them now.
            ready = 0 if buffered_input(sock) else max(0.0, wait)
            mask = selectors.EVENT_READ if buffered_input(sock) else 0
            for _, events in selector.select(ready):
                mask |= events
            if not mask:
                continue
            progress_before = (writer.offset, len(received))
            # EAGAIN / EINTR: spurious readiness (or, over TLS, half a record), try again later.
            with contextlib.suppress(BlockingIOError, InterruptedError):
                try:
                    if mask & selectors.EVENT_READ:
                        chunk = sock.recv(next(read_sizes))
                        eof = not chunk
                        received += chunk
                except (ConnectionResetError, BrokenPipeError):
                    reset = True
            with contextlib.suppress(BlockingIOError, InterruptedError):
                try:
                    if mask & selectors.EVENT_WRITE:
                        _write_or_flush(writer, sock, may_write)
                except (ConnectionResetError, BrokenPipeError):
                    reset = True
            if (writer.offset, len(received)) != progress_before:
                last_progress = time.monotonic()
    sock.settimeout(timeout)
    return Outcome(bytes(received), eof, reset, time.monotonic() - started, truncated(sock))


def stall_report(*, overdue: bool, timeout: float, sent: int, total: int, received: int, shut: bool) -> str:
    """Why an exchange stopped, as what the server did not do, with the counters."""
    if overdue:
        what = f"not complete within {timeout} s (still moving, but too slowly)"
    elif shut and received >= total:
        what = (
            f"no FIN {STALL_S:.0f} s after the whole echo: "
            "the server never closes after the client's half-close?"
        )
    elif received >= sent and sent < total:
        what = (
            f"the server stopped reading after {sent} bytes although it echoed all of them: "
            "does it wait for something (a newline, a full buffer) before reading on?"
        )
    elif sent < total:
        what = (
            f"the server stopped reading after {sent} bytes and echoed only {received}: does it read "
            "everything before writing, or block writing to a client it is not reading from?"
        )
    elif shut:
        what = (
            f"the echo stopped at {received} of {sent} bytes and nothing came for {STALL_S:.0f} s after the "
            "client's half-close: data dropped at EOF, or a write that never finished?"
        )
    else:
        what = (
            f"the echo stopped at {received} of {sent} bytes and nothing came for {STALL_S:.0f} s: "
            "one recv() taken as one message, or a write that never finished?"
        )
    return f"{what} (sent {sent} of {total} bytes, received {received}, half-closed={shut})"


def _write_or_flush(writer: _Writer, sock: Stream, may_write: bool) -> None:
    if may_write:
        writer.write(sock)
    else:
        flush(sock)  # TLS ciphertext (or the FIN after close_notify) still on its way


def read_to_eof(sock: Stream, timeout: float) -> Outcome:
    """Read until EOF, a reset or the deadline (then ``eof`` is False).

    Not ``exchange(b"", sock=sock)``: that would shut down the sending side a second time, which
    fails with ENOTCONN once the server has closed.
    """
    started = time.monotonic()
    deadline = started + timeout
    received = bytearray()
    eof = reset = False
    while not eof and (remaining := deadline - time.monotonic()) > 0:
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(DEFAULT_READ_SIZE)
        except TimeoutError:
            break
        except ConnectionResetError:
            reset = True
            break
        eof = not chunk
        received += chunk
    return Outcome(bytes(received), eof, reset, time.monotonic() - started, truncated(sock))
