# MUTANT: binds without SO_REUSEADDR: cannot restart while old connections are in TIME_WAIT | expect: LIFE-005
"""The threaded echo server (tests/mutants/_kit.py) creating its listening socket by hand and
forgetting SO_REUSEADDR (socket.create_server would set it): after a stop with connections
open, the port stays unusable until TIME_WAIT expires, a minute on Linux.

    python3 tests/mutants/no_reuseaddr.py PORT
"""

import socket

from _kit import HOST, ThreadedEcho


class NoReuseaddr(ThreadedEcho):
    def listen(self, port: int) -> socket.socket:
        listener = socket.socket()  # the bug: no setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
        listener.bind((HOST, port))
        listener.listen()
        return listener


NoReuseaddr().main()
