"""ncat's echo (--exec /bin/cat) drops the echo still in flight when the client half-closes (HALF-001).

The client sends some bytes and shuts down its sending side (a FIN), then reads until EOF. ncat
passes the bytes to cat, but on the client's EOF it closes the connection without waiting for
cat's output: the client reads EOF with some or all of its echo missing. Control: the same client
that reads the whole echo *before* half-closing gets every byte back, so the bytes are echoed --
only the half-close loses them.

    python3 tests/evidence/ncat_half_001.py     # exit status 0: reproduced
"""

from __future__ import annotations

import socket
import sys

from _evidence import TIMEOUT_S, running, verdict

NCAT = "ncat -l -k 127.0.0.1 {port} --exec /bin/cat"
SIZES = (1, 1000, 100_000)


def read_until(sock: socket.socket, size: int | None) -> bytes:
    """Read ``size`` bytes, or until EOF when ``size`` is None."""
    received = bytearray()
    while size is None or len(received) < size:
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return bytes(received)


def half_close_then_read(port: int, payload: bytes) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        return len(read_until(sock, None))


def read_then_half_close(port: int, payload: bytes) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        sock.sendall(payload)
        echoed = read_until(sock, len(payload))
        sock.shutdown(socket.SHUT_WR)
        return len(echoed + read_until(sock, None))


def main() -> int:
    lost = False
    with running(NCAT) as (_, port):
        for size in SIZES:
            payload = bytes(index % 251 for index in range(size))
            defect = half_close_then_read(port, payload)
            control = read_then_half_close(port, payload)
            print(f"{size:>7} bytes: half-close at once -> {defect:>7} echoed; read first -> {control:>7}")
            lost |= defect < size and control == size
    return verdict(lost, "the half-close lost echo")


if __name__ == "__main__":
    sys.exit(main())
