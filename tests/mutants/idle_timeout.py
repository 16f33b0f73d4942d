# MUTANT: a 2 s socket timeout "to drop dead clients" closes connections that are merely idle | expect: HALF-003
"""A threaded echo server that sets a receive timeout on every connection and closes it when the
client has been silent for 2 s: a client that pauses between messages loses its connection.

    python3 tests/mutants/idle_timeout.py PORT
"""

import socket
import sys
import threading

IDLE_LIMIT_S = 2.0


def serve(conn):
    conn.settimeout(IDLE_LIMIT_S)  # the bug: idle is not dead; TCP keepalive is the tool for that
    with conn:
        try:
            while data := conn.recv(65536):
                conn.sendall(data)
        except OSError:  # socket.timeout included
            pass


def main():
    with socket.create_server(("127.0.0.1", int(sys.argv[1]))) as listener:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()


main()
