# MUTANT: serves one client at a time (no threads): the next waits until the first hangs up | expect: CONC-001
"""The textbook iterative echo server: accept, echo until EOF, close, accept the next.

python3 tests/mutants/iterative.py PORT
"""

import socket
import sys


def main():
    with socket.create_server(("127.0.0.1", int(sys.argv[1]))) as listener:
        while True:
            conn, _ = listener.accept()
            with conn:  # the bug: every other client waits in the backlog meanwhile
                try:
                    while data := conn.recv(65536):
                        conn.sendall(data)
                except ConnectionError:
                    pass


main()
