# MUTANT: sets SO_LINGER {on, 0} "to avoid TIME_WAIT", so every close is a reset | expect: HALF-001
"""The threaded echo server (tests/mutants/_kit.py) whose close() sends RST instead of FIN: the
client sees its connection reset instead of an orderly end (and may lose the last bytes of its
echo).

    python3 tests/mutants/linger_zero.py PORT
"""

import socket
import struct

from _kit import ThreadedEcho


class LingerZero(ThreadedEcho):
    def serve(self, conn: socket.socket) -> None:
        # the bug: linger 0 turns close() into an abortive close
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        super().serve(conn)


LingerZero().main()
