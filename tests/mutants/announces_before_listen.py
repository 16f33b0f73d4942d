# MUTANT: prints the announce line after bind() but before listen() | expect: LIFE-001 | capabilities: announces
"""A threaded echo server that announces its address as soon as it knows the port (after bind),
then prepares its worker pool and only then listens: a client that trusts the announce line
connects to a port nobody listens on yet (ECONNREFUSED).

    python3 tests/mutants/announces_before_listen.py PORT
"""

import signal
import socket
import sys
import threading
import time


def serve(conn):
    with conn:
        try:
            while data := conn.recv(65536):
                conn.sendall(data)
        except OSError:
            pass


def warm_up_worker_pool():
    """Stands for start-up work (threads, config, caches) done between bind() and listen()."""
    for _ in range(8):
        threading.Thread(target=time.sleep, args=(0.05,)).start()
    time.sleep(0.5)


def stop(signum, frame):
    raise SystemExit(0)


def main():
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", int(sys.argv[1])))
    # the bug: the announce line promises a listening socket that does not exist yet
    print(f"[server] listening on 127.0.0.1:{listener.getsockname()[1]}", flush=True)
    warm_up_worker_pool()
    listener.listen()
    with listener:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()


main()
