# MUTANT: takes one recv() as the whole message: echoes it, then closes | expect: FRAG-002
"""A threaded echo server that assumes one recv() returns everything the client sent.

python3 tests/mutants/one_recv.py PORT
"""

import socket
import sys
import threading


def serve(conn):
    with conn:
        data = conn.recv(65536)  # the bug: TCP is a stream, a message may take many recv()s
        conn.sendall(data)


def main():
    with socket.create_server(("127.0.0.1", int(sys.argv[1]))) as listener:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()


main()
