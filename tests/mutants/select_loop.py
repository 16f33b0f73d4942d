# MUTANT: an event loop on select(): no descriptor at or above FD_SETSIZE (1024) can be watched | expect: SCALE-001
"""A single-threaded echo server built on select.select(), the way many tutorials start.

select() takes bit sets of FD_SETSIZE (1024) descriptors: once a connection's descriptor
number reaches 1024, Python's select() raises "filedescriptor out of range in select()" and
the loop dies -- the server handles about a thousand clients at most, whatever its limits.

python3 tests/mutants/select_loop.py PORT
"""

import select
import socket
import sys


def main():
    listener = socket.create_server(("127.0.0.1", int(sys.argv[1])), backlog=128)
    listener.setblocking(False)
    sockets = [listener]
    pending = {}
    while True:
        writers = [sock for sock in sockets if pending.get(sock)]
        readable, writable, _ = select.select(sockets, writers, [])  # the bug: select(), capped at 1024
        for sock in readable:
            if sock is listener:
                try:
                    conn, _ = listener.accept()
                except BlockingIOError:
                    continue
                conn.setblocking(False)
                sockets.append(conn)
                pending[conn] = bytearray()
                continue
            try:
                data = sock.recv(65536)
            except (BlockingIOError, ConnectionError):
                data = None
            if data:
                pending[sock] += data
            elif data == b"" and not pending[sock]:
                sockets.remove(sock)
                del pending[sock]
                sock.close()
        for sock in writable:
            if sock in pending:
                try:
                    del pending[sock][: sock.send(pending[sock])]
                except (BlockingIOError, ConnectionError):
                    pass


main()
