# MUTANT: lets ECONNRESET/EPIPE escape its event loop, so one client's reset kills the server | expect: ABORT-001
"""A selectors echo server (tests/correct/selectors_echo.py) that only expects would-block
errors: a reset raises ConnectionResetError out of the loop and the process exits.

    python3 tests/mutants/crash_on_reset.py PORT
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
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.selector.register(sock, selectors.EVENT_READ, Connection(sock))

    def serve(self, conn: Connection, mask: int) -> None:
        try:
            if mask & selectors.EVENT_READ:
                self.read(conn)
            if mask & selectors.EVENT_WRITE and conn.outbox:
                del conn.outbox[: conn.sock.send(conn.outbox)]
        except (BlockingIOError, InterruptedError):  # the bug: ConnectionError is not caught here
            pass
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
