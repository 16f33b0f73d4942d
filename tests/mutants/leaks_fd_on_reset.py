# MUTANT: closes the socket on a clean EOF but not when the client resets | expect: LEAK-002
"""A threaded echo server whose error path returns without closing: every client that resets
leaves one descriptor behind (the thread holds it in a list of sockets "to clean up later").

    python3 tests/mutants/leaks_fd_on_reset.py PORT
"""

import socket
import sys
import threading

to_clean_up = []


def serve(conn):
    try:
        while data := conn.recv(65536):
            conn.sendall(data)
    except OSError:
        to_clean_up.append(conn)  # the bug: "later" never comes; should be conn.close()
        return
    conn.close()


def main():
    with socket.create_server(("127.0.0.1", int(sys.argv[1]))) as listener:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()


main()
