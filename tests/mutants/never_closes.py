# MUTANT: on the client's EOF it stops watching the socket but never closes it | expect: HALF-002
"""A selectors echo server that unregisters a connection at EOF and forgets to close it (it still
holds it in its list of clients): the client waits for an EOF that never comes.

    python3 tests/mutants/never_closes.py PORT
"""

import selectors
import socket
import sys

selector = selectors.DefaultSelector()
clients = []  # kept for a "who is connected" report


def echo(conn):
    try:
        data = conn.recv(65536)
    except ConnectionError:
        data = b""
    if not data:
        selector.unregister(conn)  # the bug: no conn.close() and no clients.remove(conn)
        return
    conn.setblocking(True)
    conn.sendall(data)
    conn.setblocking(False)


def main():
    listener = socket.create_server(("127.0.0.1", int(sys.argv[1])))
    selector.register(listener, selectors.EVENT_READ)
    while True:
        for key, _ in selector.select():
            if key.fileobj is listener:
                conn, _ = listener.accept()
                conn.setblocking(False)
                clients.append(conn)
                selector.register(conn, selectors.EVENT_READ)
            else:
                echo(key.fileobj)


main()
