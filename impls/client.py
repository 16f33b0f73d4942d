"""An echo client: send bytes, read the same bytes back, time the round trip.

Two modes share one connection routine.

    python3 -m impls.client --message 'Hello Annapurna!'
        One message; prints what was sent, what came back, and the round-trip time.

    python3 -m impls.client --count 1000 --size 16384 [--json]
        A benchmark: 1000 round trips of 16384 random bytes on one connection, each echo
        checked byte for byte, then RTT percentiles and throughput.

What it teaches
    * One send is not one receive. TCP delivers a byte stream; the echo of a 16 KiB message
      may arrive in several recv()s, so the client reads until it has as many bytes as it
      sent, and only then compares.
    * Sending everything before reading anything can deadlock. Bytes the server echoes while
      we are still sending pile up in our receive buffer; when that is full the server stops
      reading (it has to: see its flow control), and our send blocks forever. Loopback
      buffers hide this for small messages, never for large ones. So each round trip sends
      and receives at once: the socket is non-blocking, and a selector says which of the two
      can make progress. A send() that the kernel cannot take (EAGAIN) raises BlockingIOError
      instead of blocking, and may take only part of what it was given (a partial write).
    * Failures are one line: ``[client] error: connect 127.0.0.1:5050: Connection refused``,
      exit status 2; an echo that differs from what was sent is exit status 1.
    * TLS (``--tls``, with ``--cafile CA.pem`` or ``--insecure``) is a layer over the same
      socket. The handshake is done and timed on its own, before any round trip, so the RTT
      stays the echo's alone. A non-blocking TLS socket says "not now" with SSLWantReadError
      or SSLWantWriteError instead of EAGAIN, and may hold decrypted bytes the kernel knows
      nothing about (pending()), so the selector alone cannot tell when to read. The end is
      close_notify (unwrap()), so the server can tell a finished stream from a cut one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import selectors
import socket
import ssl
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any, NoReturn

from impls import cli

EXIT_MISMATCH = 1


@dataclass(frozen=True)
class Target:
    """Where to connect, and how long any single socket operation may wait."""

    host: str
    port: int
    timeout: float
    buffer_size: int

    @property
    def address(self) -> str:
        return cli.format_address(self.host, self.port)


@dataclass(frozen=True)
class Session:
    """What the TLS handshake settled, and how long it took."""

    version: str
    cipher: str
    handshake_ms: float

    def fields(self) -> dict[str, Any]:
        return {
            "tls_version": self.version,
            "cipher": self.cipher,
            "handshake_ms": round(self.handshake_ms, 3),
        }


class EchoError(Exception):
    """A failed exchange: the one-line message for stderr and the exit status."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = cli.OneLineErrorParser(description="TCP echo client.")
    parser.add_argument("--host", default="127.0.0.1", help="server address (default: %(default)s)")
    parser.add_argument("--port", type=cli.port_number, default=5050, help="(default: %(default)s)")
    parser.add_argument("--message", default="Hello, echo!", help="text to send (UTF-8)")
    parser.add_argument(
        "--buffer-size", type=cli.positive_int, default=65536, help="bytes asked of each recv()"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        help="seconds any socket operation may wait (default: %(default)s)",
    )
    parser.add_argument("--count", type=cli.positive_int, help="benchmark: number of round trips")
    parser.add_argument(
        "--size", type=cli.positive_int, help="benchmark: bytes per round trip (default: 1024)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--tls", action="store_true", help="speak TLS (1.2 or 1.3)")
    parser.add_argument("--cafile", metavar="FILE", help="with --tls: trust this CA (PEM), not the system's")
    parser.add_argument(
        "--insecure", action="store_true", help="with --tls: do not verify the server's certificate"
    )
    args = parser.parse_args(argv)
    if not args.message:
        parser.error("--message must not be empty")
    if args.timeout <= 0:
        parser.error("--timeout must be > 0")
    if args.size is not None and args.count is None:
        parser.error("--size needs --count")
    for flag, given in (("--cafile", args.cafile is not None), ("--insecure", args.insecure)):
        if given and not args.tls:
            parser.error(f"{flag} needs --tls")
    if args.cafile is not None and args.insecure:
        parser.error("--cafile and --insecure exclude each other")
    return args


def client_tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    """None without --tls; else a context that verifies the server (or, --insecure, does not)."""
    if not args.tls:
        return None
    # create_default_context(): TLS 1.2 minimum, hostname checking, the library's ciphers.
    try:
        context = ssl.create_default_context(cafile=args.cafile)
    except ssl.SSLError as exc:
        raise EchoError(f"--cafile {args.cafile}: not a PEM certificate ({exc.reason or exc})") from exc
    except OSError as exc:
        raise EchoError(f"--cafile {args.cafile}: {describe(exc)}") from exc
    if args.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        print("[client] warning: --insecure: the server's certificate is not verified", file=sys.stderr)
    return context


def connect(target: Target) -> socket.socket:
    """Connect within the timeout, then switch the socket to non-blocking for the exchange."""
    try:
        sock = socket.create_connection((target.host, target.port), timeout=target.timeout)
    except OSError as exc:
        raise EchoError(f"connect {target.address}: {describe(exc)}") from exc
    # Without TCP_NODELAY, Nagle's algorithm could hold a small send back until the previous
    # one is acknowledged, adding delayed-ACK waits (~40 ms) to the RTT we are measuring.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    return sock


def handshake(sock: socket.socket, target: Target, context: ssl.SSLContext) -> tuple[ssl.SSLSocket, Session]:
    """The TLS handshake, blocking within the timeout and timed; the stream is then
    non-blocking like the plain socket. The certificate must name ``--host``."""
    sock.setblocking(True)
    sock.settimeout(target.timeout)
    stream = context.wrap_socket(sock, server_hostname=target.host, do_handshake_on_connect=False)
    started = time.perf_counter()
    try:
        stream.do_handshake()
    except OSError as exc:
        stream.close()
        raise EchoError(f"TLS handshake with {target.address} failed: {describe_tls(exc)}") from exc
    handshake_ms = (time.perf_counter() - started) * 1000
    cipher = stream.cipher()
    session = Session(stream.version() or "?", cipher[0] if cipher else "?", handshake_ms)
    stream.setblocking(False)
    return stream, session


def describe_tls(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ssl.SSLError):
        return str(exc.reason or exc)
    return describe(exc)


def close_tls(stream: ssl.SSLSocket, timeout: float) -> None:
    """Send close_notify and wait (within the timeout) for the server's.

    The echo is complete and verified by now, so a server that closes without answering
    (or resets) costs nothing but its own close_notify.
    """
    stream.settimeout(timeout)
    with contextlib.suppress(OSError):
        stream.unwrap()


def describe(exc: OSError) -> str:
    """The reason in words: strerror if the OS gave one, else the exception's own text."""
    return exc.strerror or str(exc) or type(exc).__name__


# "Try again later" from a non-blocking socket: EAGAIN, or its TLS forms. Over TLS a retried
# send() must offer the same bytes again, which payload[sent:] does.
NOT_NOW = (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class Exchanger:
    """Sends a payload and reads its echo concurrently on one non-blocking socket."""

    def __init__(self, sock: socket.socket, target: Target) -> None:
        self._sock = sock
        self._target = target
        self._selector = selectors.DefaultSelector()
        self._selector.register(sock, selectors.EVENT_READ)
        self._events = selectors.EVENT_READ

    def close(self) -> None:
        self._selector.close()

    def round_trip(self, payload: memoryview, echo: memoryview) -> None:
        """Send payload, filling echo (same length) with the bytes that come back."""
        sent = received = 0
        while received < len(echo):
            ready = self._wait_until_ready(want_write=sent < len(payload))
            if ready & selectors.EVENT_WRITE:
                sent += self._send_some(payload[sent:])
            if ready & selectors.EVENT_READ:
                received += self._recv_some(echo[received : received + self._target.buffer_size])

    def _wait_until_ready(self, want_write: bool) -> int:
        """Block until the socket can make progress; return which of EVENT_READ/WRITE it can."""
        if isinstance(self._sock, ssl.SSLSocket) and self._sock.pending():
            return selectors.EVENT_READ  # decrypted bytes wait in the TLS layer, not the kernel
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if want_write else 0)
        if events != self._events:  # re-register only on change: it costs a system call
            self._selector.modify(self._sock, events)
            self._events = events
        ready = self._selector.select(self._target.timeout)
        if not ready:
            target = self._target
            raise EchoError(f"echo {target.address}: timed out after {target.timeout} s")
        return ready[0][1]

    def _send_some(self, data: memoryview) -> int:
        try:
            return self._sock.send(data)  # may take only part of data: a partial write
        except NOT_NOW:  # EAGAIN: readiness was stale, the send buffer is full again
            return 0

    def _recv_some(self, into: memoryview) -> int:
        try:
            count = self._sock.recv_into(into)
        except NOT_NOW:  # EAGAIN: readiness was stale (or half a TLS record): nothing to read yet
            return 0
        if count == 0:
            raise EchoError(f"echo {self._target.address}: server closed the connection early")
        return count


def first_difference(sent: memoryview, received: memoryview) -> int:
    return next(i for i, (a, b) in enumerate(zip(sent, received, strict=True)) if a != b)


def run_single(exchanger: Exchanger, message: bytes) -> dict[str, Any]:
    echo = bytearray(len(message))
    start = time.perf_counter()
    exchanger.round_trip(memoryview(message), memoryview(echo))
    rtt_ms = (time.perf_counter() - start) * 1000
    if echo != message:
        offset = first_difference(memoryview(message), memoryview(echo))
        raise EchoError(f"echo differs from what was sent at byte {offset}", EXIT_MISMATCH)
    return {"sent": message, "received": bytes(echo), "rtt_ms": rtt_ms}


def run_benchmark(exchanger: Exchanger, count: int, size: int) -> dict[str, Any]:
    """count round trips of size random bytes, each echo checked; RTT statistics and MB/s.

    The payloads are windows into one random block twice the size, shifted by one byte per
    round trip, so consecutive messages differ and a server that repeated an old echo would
    be caught -- without calling os.urandom() inside the timed loop.
    """
    pool = memoryview(os.urandom(2 * size))
    echo = memoryview(bytearray(size))
    rtts_ms = []
    started = time.perf_counter()
    for index in range(count):
        payload = pool[index % size : index % size + size]
        before = time.perf_counter()
        exchanger.round_trip(payload, echo)
        rtts_ms.append((time.perf_counter() - before) * 1000)
        if echo != payload:
            offset = first_difference(payload, echo)
            raise EchoError(f"round trip {index + 1}: echo differs at byte {offset}", EXIT_MISMATCH)
    elapsed = time.perf_counter() - started
    return {
        "count": count,
        "size": size,
        "rtt_ms": rtt_summary(rtts_ms),
        # Payload bytes echoed per second of the whole run (checks included), counted once
        # although each byte crossed the connection twice: count * size / seconds / 1e6.
        "mb_per_s": count * size / elapsed / 1e6,
    }


def rtt_summary(rtts_ms: list[float]) -> dict[str, float]:
    # quantiles() needs two points; one round trip is its own every percentile.
    points = rtts_ms * 2 if len(rtts_ms) == 1 else rtts_ms
    cuts = statistics.quantiles(points, n=100, method="inclusive")
    return {
        "min": min(rtts_ms),
        "p50": cuts[49],
        "p95": cuts[94],
        "p99": cuts[98],
        "max": max(rtts_ms),
        "avg": statistics.fmean(rtts_ms),
    }


def print_single(result: dict[str, Any], session: Session | None, as_json: bool) -> None:
    if as_json:
        sent = result["sent"].decode(errors="backslashreplace")
        received = result["received"].decode(errors="backslashreplace")
        rtt_ms = round(result["rtt_ms"], 3)
        tls = session.fields() if session else {}
        print(json.dumps({"sent": sent, "received": received, "rtt_ms": rtt_ms, **tls}))
        return
    print_session(session)
    print(f"[client] sent    : {result['sent']!r}")
    print(f"[client] received: {result['received']!r}")
    print(f"[client] RTT     : {result['rtt_ms']:.3f} ms")


def print_benchmark(result: dict[str, Any], session: Session | None, as_json: bool) -> None:
    if as_json:
        print(json.dumps({**result, **(session.fields() if session else {})}))
        return
    print_session(session)
    figures = "  ".join(f"{name} {value:.3f}" for name, value in result["rtt_ms"].items())
    print(f"[client] round trips: {result['count']} x {result['size']} bytes, all verified")
    print(f"[client] RTT ms     : {figures}")
    print(f"[client] throughput : {result['mb_per_s']:.1f} MB/s (count * size / seconds / 1e6)")


def print_session(session: Session | None) -> None:
    if session is not None:
        print(f"[client] TLS     : {session.version} {session.cipher}")
        print(f"[client] handshake: {session.handshake_ms:.3f} ms")


def run(args: argparse.Namespace) -> None:
    target = Target(args.host, args.port, args.timeout, args.buffer_size)
    context = client_tls_context(args)
    with connect(target) as plain:
        # wrap_socket() takes over the descriptor (plain is left detached): close the stream.
        sock, session = (plain, None) if context is None else handshake(plain, target, context)
        with sock:
            exchange(sock, target, args, session)
            if isinstance(sock, ssl.SSLSocket):
                close_tls(sock, target.timeout)


def exchange(sock: socket.socket, target: Target, args: argparse.Namespace, session: Session | None) -> None:
    exchanger = Exchanger(sock, target)
    try:
        if args.count is None:
            print_single(run_single(exchanger, args.message.encode()), session, args.json)
        else:
            result = run_benchmark(exchanger, args.count, args.size or 1024)
            print_benchmark(result, session, args.json)
    except OSError as exc:  # e.g. ConnectionResetError: the server went away mid-echo
        raise EchoError(f"echo {target.address}: {describe(exc)}") from exc
    finally:
        exchanger.close()


def main(argv: list[str] | None = None) -> NoReturn:
    args = parse_args(argv)
    try:
        run(args)
    except EchoError as exc:
        print(f"[client] error: {exc}", file=sys.stderr)
        raise SystemExit(exc.status) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    raise SystemExit(0)


if __name__ == "__main__":
    main()
