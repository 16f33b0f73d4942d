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

TLS (``--tls-cert FILE --tls-key FILE``)
    The TLS connection is a second protocol, TlsEchoProtocol, on the same plain TCP
    transport: it keeps everything above (the shared buffer, the flow control, the logging)
    and puts OpenSSL in the middle with two ssl.MemoryBIOs. Ciphertext the transport reads
    goes into the incoming BIO; ``SSLObject.do_handshake()`` / ``read()`` consume it and
    yield plaintext; ``SSLObject.write()`` turns our echo into records in the outgoing BIO,
    which we hand to ``transport.write()``. OpenSSL never touches the socket, so the event
    loop stays in charge of all I/O, and every step runs in our own callback, in order.
    The handshake timeout is a loop timer (``call_later``), started when the TCP connection
    arrives and cancelled when the handshake completes: a stalled client costs a timer, not
    the loop, and is aborted when it fires.
    * Why not ``create_server(ssl=context)``: the loops' own TLS transports lose the tail of
      the echo when the client's close_notify is followed at once by its TCP FIN -- as an
      ordinary client does (close_notify, then close()). asyncio's SSLProtocol (3.11)
      decrypts one get_buffer() worth per step and leaves the rest of a socket read for a
      later callback; a FIN arriving in between moves it to its shutdown state, where it
      silently drops every later write of ours and, having seen the FIN, sends no
      close_notify. uvloop 0.23 (its own port of the same code) does the same. Measured:
      300,000 B sent, 229,376 B echoed, no close_notify -- a truncated stream. RFC 8446 6.1
      says close_notify closes only the sender's direction: the server must still deliver
      its echo, then its own close_notify. tests/evidence/asyncio_sslproto_fin_drops_echo.py
      reproduces it outside the suite (both loops).
    * SSLWantReadError is not an error: do_handshake() and read() raise it when the
      incoming BIO holds no complete record. It means "wait for the next buffer_updated()";
      whatever OpenSSL wrote meanwhile (a ServerHello, an alert) must still be sent.
      (SSLWantWriteError cannot happen: a MemoryBIO takes any amount.)
    * Reads and records do not line up: one TCP read may end mid-record (OpenSSL keeps the
      partial record in the BIO), or hold many records plus the close_notify. So every callback
      decrypts until SSLWantReadError, not once; the first read after the handshake may
      already carry application data.
    * close_notify, TCP FIN and truncation are three different ends. ``read()`` returning 0
      bytes is close_notify: records arrive in order, so by then the echo of every byte
      before it has been handed to the transport, and we only add our own close_notify
      (``unwrap()``) and close() -- which writes out everything queued first. A FIN behind
      the close_notify changes nothing: close() has already stopped reading. A FIN
      *without* close_notify reaches eof_received(): a truncated stream, which anyone on
      the path can forge, so it is logged (info) and the connection closed, not taken for
      a clean end. (A reset ends in connection_lost(), as in plain TCP.)
    * Nothing is written after the peer's close_notify but our own. TLS 1.3 (RFC 8446 6.1)
      lets the receiver keep writing; TLS 1.2 (RFC 5246 7.2.1) told it to answer at once,
      discarding pending writes. An echo server never has to choose: the echo of every
      byte before the close_notify is already encrypted and queued when we read it.
    * Flow control carries over unchanged: pause_writing()/resume_writing() of the TCP
      transport still pause and resume *reading* it. The one new buffer is the
      plaintext->ciphertext step, and it must not become a queue of its own: each callback
      encrypts only what one read brought and hands it all to the transport at once, so
      what waits for a client that does not read is bounded as in plain TCP -- the high
      mark plus one read (plus a partial record in the incoming BIO).
    * Per-connection TLS failures (garbage instead of a ClientHello, an HTTP request, a
      failed handshake) raise ssl.SSLError in our own callback: one info line, the alert
      OpenSSL prepared is sent, and the connection closed. No traceback, nothing above info.

Its limits
    One core: Python code for every connection runs on this one thread. The event loop is
    exchangeable (``--loop uvloop`` runs the very same protocol on libuv, usually faster).
    TLS records are processed at Python speed on either loop: OpenSSL does the cryptography,
    but every record costs a few Python calls and copies (into the BIO, out of it, into a
    bytes object for the transport). uvloop's faster sockets do not help that part.
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
        # TCP_NODELAY, set by us. A trap: asyncio sets it itself only on sockets whose
        # proto is IPPROTO_TCP, and socket.create_server() (cli.open_listener) makes
        # sockets with proto 0, so the connections accepted from it kept Nagle on -- an
        # echo read in two pieces then waited ~40 ms for the client's delayed ACK (TIMING-003).
        # uvloop sets it on every TCP transport; setting it again costs nothing. The
        # threaded server explains why it matters.
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


class TlsEchoProtocol(EchoProtocol):
    """Echo one TLS connection: OpenSSL over memory BIOs, on the plain TCP transport.

    Only the data path and the ends differ from EchoProtocol; the flow control
    (pause_writing/resume_writing) and the bookkeeping are inherited as they are.
    """

    def __init__(
        self,
        open_transports: set[asyncio.Transport],
        read_buffer: memoryview,
        context: ssl.SSLContext,
        handshake_timeout: float,
    ) -> None:
        super().__init__(open_transports, read_buffer)
        self._incoming = ssl.MemoryBIO()  # ciphertext from the client, not yet decrypted
        self._outgoing = ssl.MemoryBIO()  # ciphertext for the client, not yet handed to the transport
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=True)
        self._handshake_timeout = handshake_timeout
        self._handshake_done = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        loop = asyncio.get_running_loop()
        self._handshake_timer = loop.call_later(self._handshake_timeout, self._handshake_timed_out)

    def _handshake_timed_out(self) -> None:
        log.info("%s: TLS handshake not done within %g s, closing", self._peer, self._handshake_timeout)
        self._transport.abort()

    def buffer_updated(self, nbytes: int) -> None:
        self._incoming.write(self._read_buffer[:nbytes])
        try:
            if self._handshake_done or self._handshake():
                self._echo_decrypted()
        except ssl.SSLError as exc:
            # Garbage, an HTTP request, a failed handshake, a corrupt record: this client only.
            log.info("%s: TLS error (%s), closing", self._peer, exc.reason or exc)
            self._send_ciphertext()  # the alert OpenSSL prepared, if any
            self._transport.close()

    def _handshake(self) -> bool:
        """Advance the handshake with what has arrived; True once it is complete."""
        try:
            self._tls.do_handshake()
        except ssl.SSLWantReadError:  # the client's next flight is not (all) here yet
            self._send_ciphertext()
            return False
        self._handshake_done = True
        self._handshake_timer.cancel()
        log.info("%s: TLS handshake done (%s)", self._peer, self._tls.version())
        return True

    def _echo_decrypted(self) -> None:
        """Decrypt every complete record that has arrived and encrypt its echo.

        The plaintext passes through the shared buffer (its ciphertext is already in the
        incoming BIO); all the echo is handed to the transport in one write() at the end.
        """
        while True:
            try:
                # Given a buffer, read() returns a count (typeshed says bytes).
                nbytes = cast(int, self._tls.read(len(self._read_buffer), self._read_buffer))
            except ssl.SSLWantReadError:  # no complete record left
                break
            if nbytes == 0:  # close_notify: everything before it is already echoed
                self._answer_close_notify()
                return
            self._tls.write(self._read_buffer[:nbytes])
        self._send_ciphertext()

    def _answer_close_notify(self) -> None:
        log.info("%s: close_notify, closing after the queued echo is sent", self._peer)
        self._tls.unwrap()  # queues our close_notify; the client's is in, so it completes at once
        self._send_ciphertext()
        self._transport.close()  # graceful: writes out the queue, then FIN; reads no more

    def _send_ciphertext(self) -> None:
        ciphertext = self._outgoing.read()
        if ciphertext:
            self._transport.write(ciphertext)

    def eof_received(self) -> bool:
        # Reached only without a close_notify (after one, close() stopped reading): the
        # stream was cut, or the client gave up during the handshake. Close after the queue.
        why = "without close_notify (truncated)" if self._handshake_done else "during the TLS handshake"
        log.info("%s: TCP EOF %s, closing", self._peer, why)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._handshake_timer.cancel()
        super().connection_lost(exc)


def protocol_factory(
    open_transports: set[asyncio.Transport],
    read_buffer: memoryview,
    context: ssl.SSLContext | None,
    handshake_timeout: float,
) -> Callable[[], asyncio.BufferedProtocol]:
    """A new protocol per accepted client: plain TCP, or TLS done by the protocol itself."""
    if context is None:
        return lambda: EchoProtocol(open_transports, read_buffer)
    return lambda: TlsEchoProtocol(open_transports, read_buffer, context, handshake_timeout)


async def serve(
    host: str, port: int, buffer_size: int, context: ssl.SSLContext | None, handshake_timeout: float
) -> None:
    """Listen, announce, serve until SIGTERM or SIGINT, then drop every connection."""
    loop = asyncio.get_running_loop()
    # We bind the socket ourselves (cli.open_listener) so a bad host or a busy port is one
    # clean line of error, exactly as in the other servers.
    listener = cli.open_listener(host, port)
    open_transports: set[asyncio.Transport] = set()
    read_buffer = memoryview(bytearray(buffer_size))
    # The loop calls listen() again on a socket it is given, with this backlog; leaving the
    # default (100) would quietly shrink the queue open_listener asked for. No ssl= here:
    # TLS is the protocol's business (see the module docstring).
    server = await loop.create_server(
        protocol_factory(open_transports, read_buffer, context, handshake_timeout),
        sock=listener,
        backlog=cli.BACKLOG,
    )
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


def event_loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """The chosen event loop's constructor; uvloop only if it is installed."""
    if name == "asyncio":
        return asyncio.new_event_loop
    try:
        import uvloop  # noqa: PLC0415 -- optional: imported only when asked for
    except ImportError:
        cli.fail("--loop uvloop: uvloop is not installed (pip install uvloop)")
    return uvloop.new_event_loop


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


if __name__ == "__main__":
    main()
