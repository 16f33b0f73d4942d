# MUTANT: reads fixed 4 KiB blocks (MSG_WAITALL) and echoes only full ones until EOF | expect: FRAG-004
"""The threaded echo server (tests/mutants/_kit.py) waiting for a full 4 KiB block before echoing
anything.

    python3 tests/mutants/waits_for_full_block.py PORT
"""

import socket

from _kit import ThreadedEcho

BLOCK = 4096


class WaitsForFullBlock(ThreadedEcho):
    def echo(self, stream: socket.socket) -> None:
        # the bug: MSG_WAITALL holds a short message until more data (or EOF) arrives
        while data := stream.recv(BLOCK, socket.MSG_WAITALL):
            stream.sendall(data)


WaitsForFullBlock().main()
