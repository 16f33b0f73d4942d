# MUTANT: the accept loop reads a client's first bytes before handing it to a thread | expect: CONC-003
"""A threaded echo server whose accept loop does the first recv() itself ("to log the request"):
a client that connects and stays silent blocks the accept loop, and every later client with it.

    python3 tests/mutants/reads_before_thread.py PORT
"""

import socket
import sys
import threading


def serve(conn, first):
    with conn:
        try:
            data = first
            while data:
                conn.sendall(data)
                data = conn.recv(65536)
        except ConnectionError:
            pass


def main():
    with socket.create_server(("127.0.0.1", int(sys.argv[1]))) as listener:
        while True:
            conn, _ = listener.accept()
            first = conn.recv(65536)  # the bug: a blocking read in the accept loop
            threading.Thread(target=serve, args=(conn, first), daemon=True).start()


main()
