"""node's one-line echo server dies when one client resets its connection (STATE-001).

``net.createServer(s => s.pipe(s))`` attaches no 'error' listener to the sockets; when a client
closes with a reset (SO_LINGER 0, or close() with unread data), the socket emits ECONNRESET as an
'error' event nobody handles, and Node.js exits on the uncaught exception -- dropping every other
client. Control: the same server with ``s.on('error', () => {})`` survives the reset and keeps
echoing.

    python3 tests/evidence/node_state_001.py     # exit status 0: reproduced
"""

from __future__ import annotations

import socket
import struct
import subprocess
import sys

from _evidence import TIMEOUT_S, free_port, verdict, wait_until_accepting

ONE_LINER = "require('net').createServer(s => s.pipe(s)).listen(PORT, '127.0.0.1')"
WITH_HANDLER = (
    "require('net').createServer(s => { s.on('error', () => {}); s.pipe(s) }).listen(PORT, '127.0.0.1')"
)


def closes_cleanly(probe: socket.socket) -> None:
    """The readiness probe ends with a clean close, not a reset (which would kill the defect)."""
    probe.shutdown(socket.SHUT_WR)
    probe.recv(1)


def reset_a_connection(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        sock.sendall(b"hello")
        assert sock.recv(5) == b"hello"
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    # leaving the block closes the socket: with SO_LINGER {1, 0} that sends RST


def survives_a_reset(program: str) -> tuple[bool, str]:
    port = free_port()
    server = subprocess.Popen(
        ["node", "-e", program.replace("PORT", str(port))], stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until_accepting(port, closes_cleanly)
        reset_a_connection(port)
        try:
            server.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            return True, ""
        assert server.stderr is not None
        return False, f"exited with {server.returncode}:\n{server.stderr.read()}"
    finally:
        server.kill()
        server.wait(timeout=TIMEOUT_S)


def main() -> int:
    defect_alive, defect_report = survives_a_reset(ONE_LINER)
    control_alive, _ = survives_a_reset(WITH_HANDLER)
    print(f"s => s.pipe(s): {'still running' if defect_alive else defect_report}")
    print(f"with an 'error' listener: {'still running' if control_alive else 'died too'}")
    return verdict(not defect_alive and control_alive, "one client's reset killed the server")


if __name__ == "__main__":
    sys.exit(main())
