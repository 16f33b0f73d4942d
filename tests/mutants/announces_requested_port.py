# MUTANT: announces the port it was asked for (0) instead of the one the kernel chose | expect: LIFE-002 | capabilities: announces
"""A threaded echo server that prints ``sys.argv[1]`` in its announce line: asked for port 0, it
announces port 0, and nobody can find it.

    python3 tests/mutants/announces_requested_port.py PORT
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
    listener = socket.create_server(("127.0.0.1", int(sys.argv[1])))
    print(f"[server] listening on 127.0.0.1:{sys.argv[1]}", flush=True)  # the bug: getsockname()
    with listener:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()


main()
