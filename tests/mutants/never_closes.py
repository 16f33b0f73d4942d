# MUTANT: on the client's EOF it stops watching the socket but never closes it | expect: HALF-002
"""The correct selectors server (tests/correct/selectors_echo.py) that keeps its clients in a list
(for a "who is connected" report), and at the end of a connection unregisters it and forgets to
close it: the list keeps the socket open, and the client waits for an EOF that never comes.

    python3 tests/mutants/never_closes.py PORT
"""

import socket

from _kit import Connection, EchoLoop, main

clients = []


class NeverCloses(EchoLoop):
    def register(self, sock: socket.socket) -> None:
        super().register(sock)
        clients.append(sock)

    def close(self, conn: Connection) -> None:
        self.selector.unregister(conn.sock)  # the bug: no conn.sock.close() and no clients.remove()


main(NeverCloses)
