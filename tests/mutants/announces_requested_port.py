# MUTANT: announces the port it was asked for (0) instead of the one the kernel chose | expect: LIFE-002 | capabilities: announces
"""The threaded echo server (tests/mutants/_kit.py) printing ``sys.argv[1]`` in its announce line:
asked for port 0, it announces port 0, and nobody can find it.

    python3 tests/mutants/announces_requested_port.py PORT
"""

import socket
import sys

from _kit import HOST, ThreadedEcho


class AnnouncesRequestedPort(ThreadedEcho):
    def announce(self, listener: socket.socket) -> None:
        print(f"[server] listening on {HOST}:{sys.argv[1]}", flush=True)  # the bug: getsockname()


AnnouncesRequestedPort().main()
