# MUTANT: greets every client with a banner before echoing | expect: ECHO-007
"""The threaded echo server (tests/mutants/_kit.py) that says hello first: the client receives
bytes it never sent.

    python3 tests/mutants/banner.py PORT
"""

import socket

from _kit import ThreadedEcho


class Banner(ThreadedEcho):
    def echo(self, stream: socket.socket) -> None:
        stream.sendall(b"Welcome to the echo service!\r\n")  # the bug: echo servers speak only when spoken to
        super().echo(stream)


Banner().main()
