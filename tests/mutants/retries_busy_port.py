# MUTANT: when the port is busy it waits and retries bind() forever instead of failing | expect: LIFE-006
"""The threaded echo server (tests/mutants/_kit.py) "helpfully" waiting for a busy port to become
free: started on a port another process holds, it hangs instead of failing, and the operator
sees nothing wrong.

    python3 tests/mutants/retries_busy_port.py PORT
"""

import socket
import time

from _kit import ThreadedEcho


class RetriesBusyPort(ThreadedEcho):
    def listen(self, port: int) -> socket.socket:
        while True:
            try:
                return super().listen(port)
            except OSError:
                time.sleep(1.0)  # the bug: should report EADDRINUSE and exit non-zero


RetriesBusyPort().main()
