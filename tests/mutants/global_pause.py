# MUTANT: one slow reader pauses reading on every connection (a global flag) | expect: FLOW-003
"""A selectors echo server (tests/correct/selectors_echo.py) whose flow control is global: while
any connection's pending echo is over the limit, it reads from no connection at all.

    python3 tests/mutants/global_pause.py PORT
"""

from __future__ import annotations

import selectors
import signal
import socket
import sys
from dataclasses import dataclass, field
from types import FrameType

READ_SIZE = 65536
OUTBOX_LIMIT = 256 * 1024
slow_readers = set()  # connections whose outbox is full


@dataclass(eq=False)
class Connection:
    sock: socket.socket
    outbox: bytearray = field(default_factory=bytearray)
    eof: bool = False  # the client half-closed: flush, then close

    def wanted(self) -> int:
        events = 0
        if not self.eof and not slow_readers:  # the bug: should look at this connection's outbox only
            events |= selectors.EVENT_READ
        if self.outbox:
            events |= selectors.EVENT_WRITE
        return events


class EchoLoop:
    def __init__(self, listener: socket.socket) -> None:
        self.listener = listener
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ)
        self.connections: set[Connection] = set()

    def run(self) -> None:
        while True:
            for key, mask in self.selector.select():
                if key.fileobj is self.listener:
                    self.accept()
                else:
                    self.serve(key.data, mask)
            self.refresh_all()

    def refresh_all(self) -> None:
        """Apply the pause (or its end) to every connection."""
        for conn in list(self.connections):
            events = conn.wanted()
            registered = conn.sock in self.selector.get_map()
            if events and registered:
                self.selector.modify(conn.sock, events, conn)
            elif events:
                self.selector.register(conn.sock, events, conn)
            elif registered:
                self.selector.unregister(conn.sock)

    def accept(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except (BlockingIOError, ConnectionError):
            return  # the client gave up before we got to it
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Connection(sock)
        self.connections.add(conn)
        self.selector.register(sock, selectors.EVENT_READ, conn)

    def serve(self, conn: Connection, mask: int) -> None:
        try:
            if mask & selectors.EVENT_READ:
                self.read(conn)
            if mask & selectors.EVENT_WRITE and conn.outbox:
                del conn.outbox[: conn.sock.send(conn.outbox)]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:  # ECONNRESET, EPIPE: this connection is over, nothing else is
            self.close(conn)
            return
        if len(conn.outbox) >= OUTBOX_LIMIT:
            slow_readers.add(conn)
        else:
            slow_readers.discard(conn)
        if conn.eof and not conn.outbox:
            self.close(conn)

    def read(self, conn: Connection) -> None:
        data = conn.sock.recv(READ_SIZE)
        if not data:
            conn.eof = True
            return
        conn.outbox += data
        # Echo at once: the common case never waits for a writable event.
        del conn.outbox[: conn.sock.send(conn.outbox)]

    def close(self, conn: Connection) -> None:
        if conn.sock in self.selector.get_map():
            self.selector.unregister(conn.sock)
        self.connections.discard(conn)
        slow_readers.discard(conn)
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


def main() -> None:
    port, host = int(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    signal.signal(signal.SIGTERM, exit_cleanly)
    signal.signal(signal.SIGINT, exit_cleanly)
    listener = listen(host, port)
    bound = listener.getsockname()[1]
    print(f"[server] listening on {f'[{host}]' if ':' in host else host}:{bound}", flush=True)
    EchoLoop(listener).run()


if __name__ == "__main__":
    main()
