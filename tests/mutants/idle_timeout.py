# MUTANT: a 2 s socket timeout "to drop dead clients" closes connections that are merely idle | expect: HALF-003
"""The threaded echo server (tests/mutants/_kit.py) setting a receive timeout on every connection
and closing it when the client has been silent for 2 s: a client that pauses between messages
loses its connection.

    python3 tests/mutants/idle_timeout.py PORT
"""

import socket

from _kit import ThreadedEcho

IDLE_LIMIT_S = 2.0


class IdleTimeout(ThreadedEcho):
    def serve(self, conn: socket.socket) -> None:
        conn.settimeout(IDLE_LIMIT_S)  # the bug: idle is not dead; TCP keepalive is the tool for that
        super().serve(conn)  # its `except OSError` takes the timeout too, and closes


IdleTimeout().main()
