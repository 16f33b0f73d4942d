# MUTANT: reads in 8 KiB pieces and writes each at once, without TCP_NODELAY (Nagle stalls) | expect: TIMING-002 | strict
"""A threaded echo server with a small read buffer and Nagle's algorithm left on: a 16 KiB
message is echoed as two writes, and the second waits for the client's delayed ACK (~40 ms).
TIMING is a SHOULD family, so this is caught with --strict only.

    python3 tests/mutants/no_nodelay_8k_reads.py PORT
"""

import socket
import sys
import threading


def serve(conn):
    with conn:
        try:
            while data := conn.recv(8192):  # the bug: with no TCP_NODELAY, small reads mean split echoes
                conn.sendall(data)
        except OSError:
            pass


def main():
    with socket.create_server(("127.0.0.1", int(sys.argv[1]))) as listener:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()


main()
