# MUTANT: one selectors loop for all clients, but it writes the echo with blocking sendall() | expect: CONC-004
"""A single-threaded selectors echo server that reads non-blocking but writes with a blocking
sendall(): one client that stops reading freezes the loop, and every other client with it.

    python3 tests/mutants/blocking_writes.py PORT
"""

import selectors
import socket
import sys


def main():
    selector = selectors.DefaultSelector()
    listener = socket.create_server(("127.0.0.1", int(sys.argv[1])))
    selector.register(listener, selectors.EVENT_READ)
    while True:
        for key, _ in selector.select():
            if key.fileobj is listener:
                conn, _ = listener.accept()
                selector.register(conn, selectors.EVENT_READ)  # left in blocking mode
                continue
            conn = key.fileobj
            try:
                data = conn.recv(65536)
                if data:
                    conn.sendall(data)  # the bug: blocks the whole loop until this client reads
                    continue
            except ConnectionError:
                pass
            selector.unregister(conn)
            conn.close()


main()
