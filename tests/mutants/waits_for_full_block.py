# MUTANT: reads fixed 4 KiB blocks (MSG_WAITALL) and echoes only full ones until EOF | expect: FRAG-004
"""A threaded echo server that waits for a full 4 KiB block before echoing anything.

python3 tests/mutants/waits_for_full_block.py PORT
"""

import socket
import sys
import threading

BLOCK = 4096


def serve(conn):
    with conn:
        # the bug: MSG_WAITALL holds a short message until more data (or EOF) arrives
        while data := conn.recv(BLOCK, socket.MSG_WAITALL):
            conn.sendall(data)


def main():
    with socket.create_server(("127.0.0.1", int(sys.argv[1]))) as listener:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()


main()
