# MUTANT: polls its non-blocking sockets in a loop with a 20 ms sleep instead of select() | expect: TIMING-001 | strict
"""A single-threaded echo server that visits every socket in turn and then sleeps "to spare the
CPU": each echo waits for the next pass, up to 20 ms. Every byte comes back, only late.
TIMING is a SHOULD family, so this is caught with --strict only.

    python3 tests/mutants/polls_with_sleep.py PORT
"""

import socket
import sys
import time

PASS_INTERVAL_S = 0.02
OUTBOX_LIMIT = 256 * 1024


def main():
    listener = socket.create_server(("127.0.0.1", int(sys.argv[1])))
    listener.setblocking(False)
    clients = {}  # socket -> [pending echo, client half-closed]
    while True:
        try:
            conn, _ = listener.accept()
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            clients[conn] = [bytearray(), False]
        except BlockingIOError:
            pass
        for conn, (outbox, eof) in list(clients.items()):
            try:
                if not eof and len(outbox) < OUTBOX_LIMIT:
                    data = conn.recv(65536)
                    outbox += data
                    clients[conn][1] = eof = not data
                if outbox:
                    del outbox[: conn.send(outbox)]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                eof, outbox = True, b""
            if eof and not outbox:
                del clients[conn]
                conn.close()
        time.sleep(PASS_INTERVAL_S)  # the bug: should wait in select()/poll() for readiness


main()
