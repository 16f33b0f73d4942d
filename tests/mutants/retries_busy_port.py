# MUTANT: when the port is busy it waits and retries bind() forever instead of failing | expect: LIFE-006
"""A threaded echo server that "helpfully" waits for a busy port to become free: started on a
port another process holds, it hangs instead of failing, and the operator sees nothing wrong.

    python3 tests/mutants/retries_busy_port.py PORT
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


def bind_when_free(port):
    while True:
        try:
            return socket.create_server(("127.0.0.1", port))
        except OSError:
            time.sleep(1.0)  # the bug: should report EADDRINUSE and exit non-zero


def stop(signum, frame):
    raise SystemExit(0)


def main():
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    listener = bind_when_free(int(sys.argv[1]))
    print(f"[server] listening on 127.0.0.1:{listener.getsockname()[1]}", flush=True)
    with listener:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()


main()
