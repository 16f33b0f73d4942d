# MUTANT: greets every client with a banner before echoing | expect: ECHO-007
"""A threaded echo server that says hello first: the client receives bytes it never sent.

python3 tests/mutants/banner.py PORT
"""

import socket
import sys
import threading


def serve(conn):
    with conn:
        conn.sendall(b"Welcome to the echo service!\r\n")  # the bug: echo servers speak only when spoken to
        while data := conn.recv(65536):
            conn.sendall(data)


def main():
    with socket.create_server(("127.0.0.1", int(sys.argv[1]))) as listener:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()


main()
