# MUTANT: line-based: echoes a line only once its newline has arrived | expect: FRAG-005
"""The threaded echo server (tests/mutants/_kit.py) reading lines (file.readline) instead of
bytes: a fragment with no newline waits for one that may never come.

    python3 tests/mutants/line_based.py PORT
"""

import socket

from _kit import ThreadedEcho


class LineBased(ThreadedEcho):
    def echo(self, stream: socket.socket) -> None:
        with stream.makefile("rb") as lines:
            for line in lines:  # the bug: the stream has no lines, only bytes
                stream.sendall(line)


LineBased().main()
