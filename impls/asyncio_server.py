"""A TCP echo server on one asyncio event loop, written as a Protocol with explicit flow control.

The concurrency model
    One thread, one event loop. The loop asks the kernel (epoll on Linux) which sockets are
    ready, and calls back into our code: ``connection_made`` when a client is accepted,
    ``buffer_updated`` when bytes arrived, ``eof_received`` when the client shuts down its
    sending side, ``connection_lost`` at the end. No callback may block -- while one
    runs, every other connection waits -- so the sockets are non-blocking: a read or write
    that cannot proceed fails with EAGAIN inside the loop, which then waits for readiness
    instead. Thousands of connections cost a few objects each, not a thread each.

What it teaches
    * Protocols rather than streams. asyncio's StreamReader/StreamWriter wrap these same
      callbacks in coroutines; the Protocol is faster (no task per connection, no await per
      chunk) and leaves nothing hidden, flow control least of all.
    * A BufferedProtocol, not a plain Protocol: the loop reads into a buffer we lend it
      (``get_buffer``, then ``buffer_updated``) instead of handing us a new bytes object per
      read. The plain Protocol's transport allocates 256 KiB for every recv() -- above
      glibc's 128 KiB mmap threshold, so each 64 B message cost an mmap, an mremap to shrink
      it and an munmap: measured at 100 busy connections, 40 % of the server's CPU went
      there. One buffer serves every connection: the loop fills it and calls us back at
      once, and we pass on a copy of just the bytes read, so nothing can overwrite them.
    * Backpressure has to be built. ``transport.write()`` never blocks: what the kernel does
      not take at once is queued in the transport's memory. A client that sends and never
      reads would make that queue grow without bound. The transport reports the problem --
      ``pause_writing()`` when its queue passes the high-water mark, ``resume_writing()``
      once it drains below the low-water mark -- and the protocol answers by pausing and
      resuming *reading* from the same client. Reading nothing, we stop echoing; the kernel's
      receive buffer fills; TCP's window makes the client stop. That is what the threaded
      server got for free from a blocking sendall().
    * A clean end: on EOF, close only after everything queued has been written.
    * TLS (``--tls-cert FILE --tls-key FILE``) is a second protocol on the same transport,
      not the loop's own TLS (it truncates the echo): asyncio_tls.py's lesson.

Its limits
    One core: Python code for every connection runs on this one thread. The event loop is
    exchangeable (``--loop uvloop`` runs the very same protocol on libuv, usually faster).
    ``--buffer-size`` is the size of the shared read buffer, so the most one read returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import ssl
from collections.abc import Callable
from typing import cast

from impls import cli

DEFAULT_PORT = 5051

# Flow-control marks for each connection's queue of unsent bytes. asyncio's defaults (64 KiB
# / 16 KiB) pause and resume a busy connection very often; 1 MiB / 256 KiB lets a fast client
# stream with few interruptions, yet bounds what one non-reading client can cost us: the high
# mark plus one read. Resuming well below the high mark (not just under it) keeps the
# connection from flapping between paused and reading on every write.
WRITE_BUFFER_HIGH = 1024 * 1024
WRITE_BUFFER_LOW = 256 * 1024

log = logging.getLogger("impls.asyncio_server")


def main(argv: list[str] | None = None) -> None:
    parser = cli.server_parser("TCP echo server, asyncio Protocol.", DEFAULT_PORT)
    parser.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="event loop implementation (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    cli.configure_logging(args.verbose)
    loop_factory = event_loop_factory(args.loop)
    context = cli.server_tls_context(args.tls_cert, args.tls_key)
    # Ctrl-C before serve() installs its handler is still a requested, clean stop.
    with (
        asyncio.Runner(loop_factory=loop_factory) as runner,
        contextlib.suppress(KeyboardInterrupt),
    ):
        runner.run(serve(args.host, args.port, args.buffer_size, context, args.tls_handshake_timeout))


def event_loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """The chosen event loop's constructor; uvloop only if it is installed."""
    if name == "asyncio":
        return asyncio.new_event_loop
    try:
        import uvloop  # noqa: PLC0415 -- optional: imported only when asked for
    except ImportError:
        cli.fail("--loop uvloop: uvloop is not installed (pip install uvloop)")
    return uvloop.new_event_loop


async def serve(
    host: str, port: int, buffer_size: int, context: ssl.SSLContext | None, handshake_timeout: float
) -> None:
    """Listen, announce, serve until SIGTERM or SIGINT, then drop every connection."""
    loop = asyncio.get_running_loop()
    # Bind and listen ourselves (cli.open_listener, which also raises the descriptor limit),
    # so a bad host or a busy port is one line and exit 2, exactly as in the other servers.
    listener = cli.open_listener(host, port)
    open_transports: set[asyncio.Transport] = set()
    read_buffer = memoryview(bytearray(buffer_size))
    # The loop calls listen() again on a socket it is given, with this backlog; leaving the
    # default (100) would quietly shrink the queue open_listener asked for. No ssl= here:
    # TLS is the protocol's business (see asyncio_tls.py).
    factory = protocol_factory(open_transports, read_buffer, context, handshake_timeout)
    server = await loop.create_server(factory, sock=listener, backlog=cli.BACKLOG)
    serving = asyncio.ensure_future(server.serve_forever())

    def stop() -> None:
        # Abort (not close) open connections: close() would wait for each queue to drain,
        # which a client that does not read would never allow. Then stop serving.
        server.close()
        for transport in list(open_transports):
            transport.abort()
        serving.cancel()

    # add_signal_handler runs stop() as an ordinary callback on the loop, not inside the
    # signal handler itself, so it may touch the loop's objects safely. A trap: install it
    # *before* announcing. Whoever reads the announce line may send SIGTERM at once, and
    # until the handler is in place SIGTERM still has its default action: death by signal,
    # not exit status 0.
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop)
    cli.announce(listener, tls=context is not None)
    # stop() cancels serve_forever: a requested shutdown, and exit status 0.
    with contextlib.suppress(asyncio.CancelledError):
        await serving


def protocol_factory(
    open_transports: set[asyncio.Transport],
    read_buffer: memoryview,
    context: ssl.SSLContext | None,
    handshake_timeout: float,
) -> Callable[[], asyncio.BufferedProtocol]:
    """A new protocol per accepted client: plain TCP, or TLS done by the protocol itself."""
    if context is None:
        return lambda: EchoProtocol(open_transports, read_buffer)
    # Imported only for TLS: the plain lesson needs none of it, and it builds on EchoProtocol.
    from impls.asyncio_tls import TlsEchoProtocol  # noqa: PLC0415

    return lambda: TlsEchoProtocol(open_transports, read_buffer, context, handshake_timeout)


class EchoProtocol(asyncio.BufferedProtocol):
    """Echo one connection: a new instance per accepted client."""

    def __init__(self, open_transports: set[asyncio.Transport], read_buffer: memoryview) -> None:
        self._open_transports = open_transports
        self._read_buffer = read_buffer  # shared by every connection of this loop

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A TCP connection's transport is always a full (read-write) Transport.
        self._transport = cast(asyncio.Transport, transport)
        self._transport.set_write_buffer_limits(high=WRITE_BUFFER_HIGH, low=WRITE_BUFFER_LOW)
        self._open_transports.add(self._transport)
        # TCP_NODELAY (threaded.py says why), set by us. A trap: asyncio sets it only on
        # sockets whose proto is IPPROTO_TCP, and socket.create_server() (cli.open_listener)
        # makes proto 0, so our connections kept Nagle on: an echo read in two pieces waited
        # ~40 ms for the client's delayed ACK (TIMING-003). uvloop sets it too; again is free.
        sock = transport.get_extra_info("socket")
        if sock is not None:  # None only once the client is already gone
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._peer = peer_label(transport)
        log.info("%s: connected", self._peer)

    def get_buffer(self, sizehint: int) -> memoryview:
        # The loop is about to recv_into() whatever we return (sizehint is only a hint).
        return self._read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        # The hot path, called for every chunk: no logging, one copy. The copy is needed:
        # the next read, on any connection, reuses the buffer, and a transport may queue
        # (without copying) what the kernel does not take at once. write() sends what the
        # kernel takes now and queues the rest; partial writes and EAGAIN are the
        # transport's business, like sendall() but without blocking.
        self._transport.write(bytes(self._read_buffer[:nbytes]))

    def pause_writing(self) -> None:
        # Our queue for this client passed the high mark: it is not reading. Stop reading
        # from it too, so its bytes wait in the kernel (and then in the client) and not here.
        self._transport.pause_reading()

    def resume_writing(self) -> None:
        # The queue drained below the low mark: the client reads again, so can we.
        self._transport.resume_reading()

    def eof_received(self) -> bool:
        # The client shut down its sending side; every byte it sent has been passed to
        # write(). Returning False tells the transport to close itself, and close() is
        # graceful: it first writes out whatever is still queued, then sends our FIN.
        log.info("%s: EOF, closing after the queued echo is sent", self._peer)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        # exc is None after a clean close; otherwise usually ConnectionResetError or
        # BrokenPipeError (Python ignores SIGPIPE, so a write to a closed peer is an error,
        # not a signal). Either way one client is gone and the others are unaffected.
        self._open_transports.discard(self._transport)
        log.info("%s: closed%s", self._peer, f" ({exc})" if exc else "")


def peer_label(transport: asyncio.BaseTransport) -> str:
    """HOST:PORT of the client, for log lines.

    A trap: the loop asks getpeername() when it creates the transport, and a client that
    reset the connection right after connecting is already unknown to the kernel by then.
    peername is None in that case -- and an exception here, in connection_made(), would
    leave the transport open and its file descriptor leaked.
    """
    peer = transport.get_extra_info("peername")
    return cli.format_address(*peer[:2]) if peer else "(peer already gone)"


if __name__ == "__main__":
    main()
