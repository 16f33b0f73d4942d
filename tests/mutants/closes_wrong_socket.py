# MUTANT: closing a finished connection closes the last accepted socket instead | expect: STATE-001
"""The correct selectors server (tests/correct/selectors_echo.py) that remembers the socket it
accepted most recently, ``self.last``, and closes that one when a connection ends. With one client
at a time it works.

    python3 tests/mutants/closes_wrong_socket.py PORT
"""

import socket

from _kit import Connection, EchoLoop, main


class ClosesWrongSocket(EchoLoop):
    def register(self, sock: socket.socket) -> None:
        super().register(sock)
        self.last = sock

    def close(self, conn: Connection) -> None:
        self.selector.unregister(conn.sock)
        self.last.close()  # the bug: `self.last` is the newest client, not the one that ended


main(ClosesWrongSocket)
