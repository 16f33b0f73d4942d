# MUTANT: decodes what it reads as UTF-8 (errors="replace") and re-encodes it | expect: ECHO-003
"""The threaded echo server (tests/mutants/_kit.py) that treats the stream as text: invalid UTF-8
turns into U+FFFD, and a character split between two recv()s is mangled.

    python3 tests/mutants/decodes_text.py PORT
"""

import socket

from _kit import READ_SIZE, ThreadedEcho


class DecodesText(ThreadedEcho):
    def echo(self, stream: socket.socket) -> None:
        while data := stream.recv(READ_SIZE):
            text = data.decode("utf-8", errors="replace")  # the bug: bytes are not text
            stream.sendall(text.encode("utf-8"))


DecodesText().main()
