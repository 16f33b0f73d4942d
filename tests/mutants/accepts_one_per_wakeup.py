# MUTANT: edge-triggered epoll on the listener, one accept() per wake-up: a burst's rest waits in the backlog | expect: SCALE-002
"""A threaded echo server whose accept loop waits on edge-triggered epoll.

Edge-triggered readiness is reported once per change, not once per connection: when several
connects arrive before the loop waits again, epoll reports the listener once, this loop
accepts one, and the others stay in the listen backlog until a new connection makes a new
edge. With EPOLLET the accept must be repeated until EAGAIN.

python3 tests/mutants/accepts_one_per_wakeup.py PORT
"""

import select
import socket
import sys
import threading


def serve(conn):
    with conn:
        try:
            while data := conn.recv(65536):
                conn.sendall(data)
        except ConnectionError:
            pass


def main():
    listener = socket.create_server(("127.0.0.1", int(sys.argv[1])), backlog=128)
    listener.setblocking(False)
    poller = select.epoll()
    poller.register(listener, select.EPOLLIN | select.EPOLLET)
    while True:
        for _ in poller.poll():
            try:
                conn, _ = listener.accept()  # the bug: once per edge, not until EAGAIN
            except BlockingIOError:
                continue
            conn.setblocking(True)
            threading.Thread(target=serve, args=(conn,), daemon=True).start()


main()
