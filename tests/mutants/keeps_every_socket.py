# MUTANT: keeps every accepted socket in a list and never removes finished ones | expect: LEAK-001
"""A threaded echo server that registers each connection in a list (for a status page) and
forgets to take it out: the thread returns at EOF without closing, the list keeps the socket
alive, and one descriptor per connection ever made stays open.

    python3 tests/mutants/keeps_every_socket.py PORT
"""

import socket
import sys
import threading

connections = []


def serve(conn):
    try:
        while data := conn.recv(65536):
            conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)  # tell the client we are done ... the bug: no close()
    except OSError:
        pass


def main():
    with socket.create_server(("127.0.0.1", int(sys.argv[1]))) as listener:
        while True:
            conn, _ = listener.accept()
            connections.append(conn)
            threading.Thread(target=serve, args=(conn,), daemon=True).start()


main()
