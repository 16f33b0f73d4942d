# MUTANT: binds without SO_REUSEADDR: cannot restart while old connections are in TIME_WAIT | expect: LIFE-005
"""A threaded echo server that creates its listening socket by hand and forgets SO_REUSEADDR
(socket.create_server would set it): after a stop with connections open, the port stays
unusable until TIME_WAIT expires, a minute on Linux.

    python3 tests/mutants/no_reuseaddr.py PORT
"""

import signal
import socket
import sys
import threading


def serve(conn):
    with conn:
        try:
            while data := conn.recv(65536):
                conn.sendall(data)
        except OSError:
            pass


def stop(signum, frame):
    raise SystemExit(0)


def main():
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    listener = socket.socket()  # the bug: no setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", int(sys.argv[1])))
    listener.listen()
    print(f"[server] listening on 127.0.0.1:{listener.getsockname()[1]}", flush=True)
    with listener:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()


main()
