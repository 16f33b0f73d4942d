"""A correct but deliberately slow echo server: it waits 50 ms before echoing each chunk it reads.

Every byte comes back, so MUST scenarios pass against it; the TIMING scenarios (SHOULD) fail. The
report's tests start it through --server-cmd to see a SHOULD failure reported as NON-STRICT.

    python3 tests/slow_echo_server.py PORT
"""

from __future__ import annotations

import socket
import sys
import threading
import time

DELAY_S = 0.05


def echo_slowly(conn: socket.socket) -> None:
    with conn:
        while data := conn.recv(65536):
            time.sleep(DELAY_S)
            conn.sendall(data)


def main() -> None:
    with socket.create_server(("127.0.0.1", int(sys.argv[1]))) as listener:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=echo_slowly, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
