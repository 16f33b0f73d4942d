# MUTANT: keeps every accepted socket in a list and never removes finished ones | expect: LEAK-001
"""The threaded echo server (tests/mutants/_kit.py) registering each connection in a list (for a
status page) and forgetting to take it out: the thread returns at EOF without closing, the list
keeps the socket alive, and one descriptor per connection ever made stays open.

    python3 tests/mutants/keeps_every_socket.py PORT
"""

import socket

from _kit import ThreadedEcho

connections = []


class KeepsEverySocket(ThreadedEcho):
    def serve(self, conn: socket.socket) -> None:
        connections.append(conn)
        try:
            self.echo(conn)
            conn.shutdown(socket.SHUT_WR)  # tell the client we are done ... the bug: no close()
        except OSError:
            pass


KeepsEverySocket().main()
