# MUTANT: line-based: echoes a line only once its newline has arrived | expect: FRAG-005
"""A threaded echo server that reads lines (file.readline) instead of bytes: a fragment with no
newline waits for one that may never come.

    python3 tests/mutants/line_based.py PORT
"""

import socket
import sys
import threading


def serve(conn):
    with conn, conn.makefile("rb") as lines:
        for line in lines:  # the bug: the stream has no lines, only bytes
            conn.sendall(line)


def main():
    with socket.create_server(("127.0.0.1", int(sys.argv[1]))) as listener:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()


main()
