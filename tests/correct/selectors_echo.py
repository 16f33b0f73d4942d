"""A correct echo server in the style of a hand-written event loop: one thread, ``selectors``,
non-blocking sockets, a bounded output buffer per connection.

Flow control by hand: a connection is read only while its pending echo is below OUTBOX_LIMIT,
so a client that does not read is held back by TCP instead of filling this process's memory,
and no other connection is affected. After the client's EOF the rest of the echo is flushed,
then the socket is closed (FIN). It announces itself like the built-in servers and exits 0 on
SIGTERM and SIGINT, so the suite can run every scenario against it:

    python3 tests/correct/selectors_echo.py PORT [HOST]
"""

from __future__ import annotations

import resource
import selectors
import signal
import socket
import sys
from dataclasses import dataclass, field
from types import FrameType

READ_SIZE = 65536
OUTBOX_LIMIT = 256 * 1024


@dataclass
class Connection:
    sock: socket.socket
    outbox: bytearray = field(default_factory=bytearray)
    eof: bool = False  # the client half-closed: flush, then close

    def wanted(self) -> int:
        events = 0
        if not self.eof and len(self.outbox) < OUTBOX_LIMIT:
            events |= selectors.EVENT_READ
        if self.outbox:
            events |= selectors.EVENT_WRITE
        return events


class EchoLoop:
    def __init__(self, listener: socket.socket) -> None:
        self.listener = listener
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ)

    def run(self) -> None:
        while True:
            for key, mask in self.selector.select():
                if key.fileobj is self.listener:
                    self.accept()
                else:
                    self.serve(key.data, mask)

    def accept(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except (BlockingIOError, ConnectionError):
            return  # the client gave up before we got to it
        self.register(sock)

    def register(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.selector.register(sock, selectors.EVENT_READ, Connection(sock))

    def serve(self, conn: Connection, mask: int) -> None:
        try:
            self.transfer(conn, mask)
        except (BlockingIOError, InterruptedError):
            pass  # EAGAIN, EINTR: nothing more for now, the selector says when
        except OSError:  # ECONNRESET, EPIPE: this connection is over, nothing else is
            self.close(conn)
            return
        self.settle(conn)

    def transfer(self, conn: Connection, mask: int) -> None:
        if mask & selectors.EVENT_READ:
            self.read(conn)
        if mask & selectors.EVENT_WRITE and conn.outbox:
            del conn.outbox[: conn.sock.send(conn.outbox)]  # a partial write leaves the rest queued

    def settle(self, conn: Connection) -> None:
        """Close once the echo after the client's EOF is flushed; otherwise wait for what this
        connection needs next (reads only while its outbox is below the limit)."""
        if conn.eof and not conn.outbox:
            self.close(conn)
        else:
            self.selector.modify(conn.sock, conn.wanted(), conn)

    def read(self, conn: Connection) -> None:
        data = conn.sock.recv(READ_SIZE)
        if not data:
            conn.eof = True
            return
        conn.outbox += data
        # Echo at once: the common case never waits for a writable event.
        del conn.outbox[: conn.sock.send(conn.outbox)]

    def close(self, conn: Connection) -> None:
        self.selector.unregister(conn.sock)
        conn.sock.close()


def exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        listener = socket.create_server((host, port), family=family, backlog=1024)
    except OSError as exc:
        sys.stderr.write(f"selectors_echo: cannot listen on {host} port {port}: {exc.strerror}\n")
        raise SystemExit(2) from None
    listener.setblocking(False)
    return listener


def main(loop: type[EchoLoop] = EchoLoop) -> None:
    """Serve with ``loop``: this file's EchoLoop, or a subclass (tests/mutants/ build theirs so)."""
    port, host = int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # a soft 1024 would cap the clients
    signal.signal(signal.SIGTERM, exit_cleanly)
    signal.signal(signal.SIGINT, exit_cleanly)
    listener = listen(host, port)
    bound = listener.getsockname()[1]
    print(f"[server] listening on {f'[{host}]' if ':' in host else host}:{bound}", flush=True)
    loop(listener).run()


if __name__ == "__main__":
    main()
