# MUTANT: the handler thread uses the accept loop's global `conn`, i.e. the newest client | expect: STATE-001
"""A threaded echo server whose handler reads the module-level ``conn`` instead of taking the
connection as an argument: as soon as a second client connects, every thread serves it.

    python3 tests/mutants/global_conn.py PORT
"""

import socket
import sys
import threading

conn = None


def serve():
    try:
        while data := conn.recv(65536):  # the bug: `conn` is whichever client connected last
            conn.sendall(data)
    except OSError:
        pass


def main():
    global conn
    with socket.create_server(("127.0.0.1", int(sys.argv[1]))) as listener:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve, daemon=True).start()


main()
