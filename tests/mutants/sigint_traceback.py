# MUTANT: Ctrl-C (SIGINT) is left to Python: KeyboardInterrupt traceback, killed by SIGINT (status -2) | expect: LIFE-004 | capabilities: announces,graceful-exit
"""A threaded echo server that handles SIGTERM but not SIGINT: Ctrl-C raises KeyboardInterrupt in
the accept loop, prints a traceback and dies of SIGINT (Python re-raises it on the way out).

    python3 tests/mutants/sigint_traceback.py PORT
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
    # the bug: SIGINT is left to Python's default KeyboardInterrupt
    listener = socket.create_server(("127.0.0.1", int(sys.argv[1])))
    print(f"[server] listening on 127.0.0.1:{listener.getsockname()[1]}", flush=True)
    with listener:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()


main()
