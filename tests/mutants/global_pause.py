# MUTANT: one slow reader pauses reading on every connection (a global flag) | expect: FLOW-003
"""The correct selectors server (tests/correct/selectors_echo.py) with its flow control made
global: while any connection's pending echo is over the limit, it reads from no connection at all.

A global pause needs what the correct loop does without: a list of every connection (a paused one
with nothing to write is in no selector), and a pass over all of them whenever one changes.

    python3 tests/mutants/global_pause.py PORT
"""

import selectors
import socket

from _kit import OUTBOX_LIMIT, Connection, EchoLoop, main


class GlobalPause(EchoLoop):
    def __init__(self, listener: socket.socket) -> None:
        super().__init__(listener)
        self.connections: list[Connection] = []

    def register(self, sock: socket.socket) -> None:
        super().register(sock)
        self.connections.append(self.selector.get_key(sock).data)

    def settle(self, conn: Connection) -> None:
        if conn.eof and not conn.outbox:
            self.close(conn)
        else:
            self.pause_or_resume_all()

    def close(self, conn: Connection) -> None:
        if conn.sock in self.selector.get_map():  # paused earlier in this round: in no selector
            self.selector.unregister(conn.sock)
        conn.sock.close()
        self.connections.remove(conn)
        self.pause_or_resume_all()

    def pause_or_resume_all(self) -> None:
        # the bug: one full outbox stops the reads of every connection, not of its own only
        paused = any(len(conn.outbox) >= OUTBOX_LIMIT for conn in self.connections)
        for conn in self.connections:
            events = conn.wanted() & ~selectors.EVENT_READ if paused else conn.wanted()
            registered = conn.sock in self.selector.get_map()
            if events and registered:
                self.selector.modify(conn.sock, events, conn)
            elif events:
                self.selector.register(conn.sock, events, conn)
            elif registered:
                self.selector.unregister(conn.sock)


main(GlobalPause)
