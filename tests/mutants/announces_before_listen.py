# MUTANT: prints the announce line after bind() but before listen() | expect: LIFE-001 | capabilities: announces
"""The threaded echo server (tests/mutants/_kit.py) announcing its address as soon as it knows
the port (after bind), then preparing its worker pool and only then listening: a client that
trusts the announce line connects to a port nobody listens on yet (ECONNREFUSED).

    python3 tests/mutants/announces_before_listen.py PORT
"""

import socket
import sys
import threading
import time

from _kit import HOST, ThreadedEcho


def warm_up_worker_pool():
    """Stands for start-up work (threads, config, caches) done between bind() and listen()."""
    for _ in range(8):
        threading.Thread(target=time.sleep, args=(0.05,)).start()
    time.sleep(0.5)


class AnnouncesBeforeListen(ThreadedEcho):
    def main(self) -> None:
        self.handle_signals()
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, int(sys.argv[1])))
        self.announce(listener)  # the bug: promises a listening socket that does not exist yet
        warm_up_worker_pool()
        listener.listen()
        with listener:
            self.accept_forever(listener)


AnnouncesBeforeListen().main()
