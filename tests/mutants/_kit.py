"""The correct servers that one-bug mutants are built from, so that a mutant's file is its bug.

A mutant that is "a correct server plus one bug" subclasses one of these and overrides the one
method where its bug lives; the override, beside the base method it replaces, IS the mutant.

- ``EchoLoop`` (with ``Connection`` and ``main``): tests/correct/selectors_echo.py itself, the
  single-threaded selectors loop with a bounded outbox per connection. Run a subclass with
  ``main(Subclass)``.
- ``ThreadedEcho``: the classic thread-per-connection server (a blocking socket per thread:
  sendall() blocking is TCP's flow control, and it holds back only that client's thread).
- ``ThreadedTLSEcho``: the same over TLS, run as PORT CERT KEY.

Mutants whose bug is the loop's structure itself (how it accepts, waits or hands connections
over) are whole programs of their own: there, the structure is the diff.

Import path: a mutant runs as ``python tests/mutants/X.py PORT``, so sys.path[0] is tests/mutants
and ``import _kit`` finds this file. The correct selectors server lives in tests/correct (where
tests/test_correct_servers.py proves it correct); appending that directory lets this module
import the file itself instead of a copy. Appended, not prepended: it must shadow nothing.
"""

from __future__ import annotations

import resource
import signal
import socket
import ssl
import sys
import threading
from pathlib import Path
from types import FrameType

sys.path.append(str(Path(__file__).resolve().parent.parent / "correct"))

from selectors_echo import OUTBOX_LIMIT, READ_SIZE, Connection, EchoLoop, main  # noqa: E402

__all__ = [
    "HANDSHAKE_TIMEOUT_S",
    "HOST",
    "OUTBOX_LIMIT",
    "READ_SIZE",
    "Connection",
    "EchoLoop",
    "ThreadedEcho",
    "ThreadedTLSEcho",
    "exit_cleanly",
    "main",
]

HOST = "127.0.0.1"
HANDSHAKE_TIMEOUT_S = 10.0  # a client that stalls mid-handshake holds its thread this long, no longer


def exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


class ThreadedEcho:
    """Accept, hand each connection to a thread of its own, echo until EOF, close (FIN).
    Announces itself and exits 0 on SIGTERM and SIGINT, like the built-in servers."""

    def main(self) -> None:
        port = int(sys.argv[1])
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # a soft 1024 would cap the clients
        self.handle_signals()
        listener = self.listen(port)
        self.announce(listener)
        with listener:
            self.accept_forever(listener)

    def handle_signals(self) -> None:
        signal.signal(signal.SIGTERM, exit_cleanly)
        signal.signal(signal.SIGINT, exit_cleanly)

    def listen(self, port: int) -> socket.socket:
        return socket.create_server((HOST, port))  # sets SO_REUSEADDR: a restart binds at once

    def announce(self, listener: socket.socket) -> None:
        print(f"[server] listening on {HOST}:{listener.getsockname()[1]}", flush=True)

    def accept_forever(self, listener: socket.socket) -> None:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn: socket.socket) -> None:
        """One connection's life, in its own thread."""
        with conn:
            try:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle wait on a small echo
                self.echo(conn)
            except OSError:  # ECONNRESET, EPIPE: only this connection ends
                pass

    def echo(self, stream: socket.socket) -> None:
        """Send back every byte as it arrives (sendall: a partial write is retried, not lost)."""
        while data := stream.recv(READ_SIZE):
            stream.sendall(data)


class ThreadedTLSEcho(ThreadedEcho):
    """ThreadedEcho over TLS: the handshake runs in the connection's thread, bounded in time, and
    the client's close_notify is answered with ours (unwrap) before the close."""

    context: ssl.SSLContext

    def main(self) -> None:
        cert, key = sys.argv[2:4]
        self.context = self.make_context(cert, key)
        super().main()

    def make_context(self, cert: str, key: str) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(cert, key)
        return context

    def serve(self, conn: socket.socket) -> None:
        try:
            with self.handshake(conn) as tls:
                self.echo(tls)
                tls.unwrap()  # close_notify: the client can tell a complete echo from a cut one
        except OSError:  # ssl.SSLError included: a bad handshake ends this connection only
            pass

    def handshake(self, conn: socket.socket) -> ssl.SSLSocket:
        conn.settimeout(HANDSHAKE_TIMEOUT_S)
        tls = self.context.wrap_socket(conn, server_side=True)  # closes conn if the handshake fails
        tls.settimeout(None)  # the echo itself waits like a plain connection: TCP flow control
        return tls
