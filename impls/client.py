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
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import socket
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
    args = parser.parse_args(argv)
    if not args.message:
        parser.error("--message must not be empty")
    if args.timeout <= 0:
        parser.error("--timeout must be > 0")
    if args.size is not None and args.count is None:
        parser.error("--size needs --count")
    return args


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


def describe(exc: OSError) -> str:
    """The reason in words: strerror if the OS gave one, else the exception's own text."""
    return exc.strerror or str(exc) or type(exc).__name__


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
        except BlockingIOError:  # EAGAIN: readiness was stale, the send buffer is full again
            return 0

    def _recv_some(self, into: memoryview) -> int:
        try:
            count = self._sock.recv_into(into)
        except BlockingIOError:  # EAGAIN: readiness was stale, nothing to read after all
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


def print_single(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sent = result["sent"].decode(errors="backslashreplace")
        received = result["received"].decode(errors="backslashreplace")
        rtt_ms = round(result["rtt_ms"], 3)
        print(json.dumps({"sent": sent, "received": received, "rtt_ms": rtt_ms}))
        return
    print(f"[client] sent    : {result['sent']!r}")
    print(f"[client] received: {result['received']!r}")
    print(f"[client] RTT     : {result['rtt_ms']:.3f} ms")


def print_benchmark(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
        return
    figures = "  ".join(f"{name} {value:.3f}" for name, value in result["rtt_ms"].items())
    print(f"[client] round trips: {result['count']} x {result['size']} bytes, all verified")
    print(f"[client] RTT ms     : {figures}")
    print(f"[client] throughput : {result['mb_per_s']:.1f} MB/s (count * size / seconds / 1e6)")


def run(args: argparse.Namespace) -> None:
    target = Target(args.host, args.port, args.timeout, args.buffer_size)
    with connect(target) as sock:
        exchanger = Exchanger(sock, target)
        try:
            if args.count is None:
                print_single(run_single(exchanger, args.message.encode()), args.json)
            else:
                result = run_benchmark(exchanger, args.count, args.size or 1024)
                print_benchmark(result, args.json)
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
