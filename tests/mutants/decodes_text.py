# MUTANT: decodes what it reads as UTF-8 (errors="replace") and re-encodes it | expect: ECHO-003
"""A threaded echo server that treats the stream as text: invalid UTF-8 turns into U+FFFD, and a
character split between two recv()s is mangled.

    python3 tests/mutants/decodes_text.py PORT
"""

import socket
import sys
import threading


def serve(conn):
    with conn:
        while data := conn.recv(65536):
            text = data.decode("utf-8", errors="replace")  # the bug: bytes are not text
            conn.sendall(text.encode("utf-8"))


def main():
    with socket.create_server(("127.0.0.1", int(sys.argv[1]))) as listener:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()


main()
