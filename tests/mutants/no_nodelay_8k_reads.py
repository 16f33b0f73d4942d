# MUTANT: reads in 8 KiB pieces and writes each at once, without TCP_NODELAY (Nagle stalls) | expect: TIMING-002 | strict
"""The threaded echo server (tests/mutants/_kit.py) with a small read buffer and Nagle's algorithm
left on: a 16 KiB message is echoed as two writes, and the second waits for the client's delayed
ACK (~40 ms). TIMING is a SHOULD family, so this is caught with --strict only.

    python3 tests/mutants/no_nodelay_8k_reads.py PORT
"""

import socket

from _kit import ThreadedEcho


class NoNodelay8kReads(ThreadedEcho):
    def serve(self, conn: socket.socket) -> None:
        with conn:
            try:
                while data := conn.recv(8192):  # the bug: with no TCP_NODELAY, small reads mean split echoes
                    conn.sendall(data)
            except OSError:
                pass


NoNodelay8kReads().main()
