# MUTANT: takes one recv() as the whole message: echoes it, then closes | expect: FRAG-002
"""The threaded echo server (tests/mutants/_kit.py) assuming that one recv() returns everything
the client sent: it echoes that, then closes.

    python3 tests/mutants/one_recv.py PORT
"""

import socket

from _kit import READ_SIZE, ThreadedEcho


class OneRecv(ThreadedEcho):
    def echo(self, stream: socket.socket) -> None:
        stream.sendall(stream.recv(READ_SIZE))  # the bug: TCP is a stream, a message may take many recv()s


OneRecv().main()
