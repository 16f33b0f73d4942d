# MUTANT: no SIGTERM handler: SIGTERM kills it (status -15) instead of a clean exit 0 | expect: LIFE-003 | capabilities: announces,graceful-exit
"""A threaded echo server that only handles Ctrl-C: SIGTERM, what supervisors and container
runtimes send, takes the default action and kills the process (no clean exit, status -SIGTERM).

    python3 tests/mutants/dies_on_sigterm.py PORT
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
    # the bug: SIGTERM is left at its default action
    signal.signal(signal.SIGINT, stop)
    listener = socket.create_server(("127.0.0.1", int(sys.argv[1])))
    print(f"[server] listening on 127.0.0.1:{listener.getsockname()[1]}", flush=True)
    with listener:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()


main()
