# MUTANT: closes the socket on a clean EOF but not when the client resets | expect: LEAK-002
"""The threaded echo server (tests/mutants/_kit.py) whose error path returns without closing:
every client that resets leaves one descriptor behind (the thread holds it in a list of sockets
"to clean up later").

    python3 tests/mutants/leaks_fd_on_reset.py PORT
"""

import socket

from _kit import ThreadedEcho

to_clean_up = []


class LeaksFdOnReset(ThreadedEcho):
    def serve(self, conn: socket.socket) -> None:
        try:
            self.echo(conn)
        except OSError:
            to_clean_up.append(conn)  # the bug: "later" never comes; should be conn.close()
            return
        conn.close()


LeaksFdOnReset().main()
