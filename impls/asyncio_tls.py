"""TLS for the asyncio echo server (``--tls-cert FILE --tls-key FILE``): OpenSSL over memory BIOs.

The model
    TlsEchoProtocol is asyncio_server.EchoProtocol on the same plain TCP transport, with
    OpenSSL put in the middle through two ssl.MemoryBIOs; the shared buffer, the flow control
    and the logging are inherited as they are. Ciphertext the transport reads goes into the
    incoming BIO; ``SSLObject.do_handshake()`` / ``read()`` consume it and yield plaintext;
    ``SSLObject.write()`` turns our echo into records in the outgoing BIO, which we hand to
    ``transport.write()``. OpenSSL never touches the socket, so the event loop stays in charge
    of all I/O, and every step runs in our own callback, in order.

What it teaches
    * The handshake timeout is a loop timer (``call_later``), started when the TCP connection
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
    TLS records are processed at Python speed on either loop: OpenSSL does the cryptography,
    but every record costs a few Python calls and copies (into the BIO, out of it, into a
    bytes object for the transport). uvloop's faster sockets do not help that part.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import cast

# A trap: under ``python -m impls.asyncio_server`` the running module is __main__, so this
# import loads asyncio_server.py a second time, as impls.asyncio_server. Harmless: it only
# defines constants, classes and functions, and its logger is the same object, found by name.
from impls.asyncio_server import EchoProtocol, log


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
