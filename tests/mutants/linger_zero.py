# MUTANT: sets SO_LINGER {on, 0} "to avoid TIME_WAIT", so every close is a reset | expect: HALF-001
"""A threaded echo server whose close() sends RST instead of FIN: the client sees its connection
reset instead of an orderly end (and may lose the last bytes of its echo).

    python3 tests/mutants/linger_zero.py PORT
"""

import socket
import struct
import sys
import threading


def serve(conn):
    # the bug: linger 0 turns close() into an abortive close
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with conn:
        while data := conn.recv(65536):
            conn.sendall(data)


def main():
    with socket.create_server(("127.0.0.1", int(sys.argv[1]))) as listener:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()


main()
