"""TLS for the threaded echo server (``--tls-cert FILE --tls-key FILE``): the same loop, on an SSLSocket.

The model
    threaded.py's echo loop runs unchanged on an ssl.SSLSocket: recv() returns decrypted
    bytes, sendall() encrypts. What changes is the start and the end of a connection, and
    that is all this module holds: ``tls_stream`` wraps a connection's echo.

What it teaches
    * The handshake costs two network round trips before the first byte (one with TLS 1.3)
      and, on the server, a signature with the certificate's private key: milliseconds of
      CPU, the most expensive moment of a short connection. It also waits on the client, who
      may never send its half. So it runs in the connection's own thread, never in the accept
      loop: a stalled or slow client then blocks only itself, and --tls-handshake-timeout
      bounds how long (a socket timeout during the handshake only, lifted afterwards so an
      idle but healthy connection is never cut).
    * The end of the stream is a message, not just a FIN. The client's close_notify alert
      makes recv() return b"" -- the TLS EOF. We answer with our own close_notify (unwrap())
      and close. A TCP FIN (or reset) without close_notify means the stream was cut short,
      perhaps by an attacker truncating it: with suppress_ragged_eofs=False recv() raises
      SSLEOFError instead of pretending it was a clean end, and we log it and close.

Its limits
    A thread per handshake, too: a crowd of clients that connect and then stay silent costs
    a thread each until --tls-handshake-timeout ends it.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Tls:
    """How each connection's TLS handshake is done."""

    context: ssl.SSLContext
    handshake_timeout: float


@contextlib.contextmanager
def tls_stream(conn: socket.socket, tls: Tls) -> Iterator[ssl.SSLSocket]:
    """Handshake within the timeout, yield the decrypted stream, answer close_notify with ours.

    wrap_socket() takes over conn's descriptor (conn is left detached: closing it is a no-op)
    and, with do_handshake_on_connect, does the handshake at once. If that fails, the new
    SSLSocket closes the descriptor itself before the exception reaches us.
    """
    conn.settimeout(tls.handshake_timeout)
    try:
        stream = tls.context.wrap_socket(conn, server_side=True, suppress_ragged_eofs=False)
    except TimeoutError:
        raise ConnectionAbortedError(f"TLS handshake not done within {tls.handshake_timeout} s") from None
    except ssl.SSLError as exc:
        raise ConnectionAbortedError(f"TLS handshake failed: {exc.reason or exc}") from None
    with stream:
        stream.settimeout(None)  # blocking again: the handshake was the only deadline
        try:
            yield stream
        except ssl.SSLEOFError:
            raise ConnectionAbortedError("TCP EOF without close_notify: a truncated TLS stream") from None
        # recv() returned b"": the client's close_notify. Everything it sent has been echoed;
        # unwrap() sends our close_notify and returns at once, since theirs already arrived.
        stream.unwrap()
