"""node's one-line echo server dies when a client closes with its echo unread (ABORT-002, -003, LEAK-002).

``net.createServer(s => s.pipe(s))`` has no 'error' listener on its sockets. A client that sends
until flow control stops it and then closes without reading makes its kernel answer with a reset;
node's pending write of the echo fails (ECONNRESET or EPIPE), the socket emits 'error', nobody
handles it, and the whole process exits -- every other client with it. (node_state_001.py shows
the same death from a plain reset.) Control: the same server with an 'error' listener survives.

    python3 tests/evidence/node_abort_002.py     # exit status 0: reproduced
"""

from __future__ import annotations

import socket
import subprocess
import sys

from _evidence import TIMEOUT_S, MiB, free_port, verdict, wait_until_accepting
from _flow_deadlock import payload, push_until_stalled

ONE_LINER = "require('net').createServer(s => s.pipe(s)).listen(PORT, '127.0.0.1')"
WITH_HANDLER = (
    "require('net').createServer(s => { s.on('error', () => {}); s.pipe(s) }).listen(PORT, '127.0.0.1')"
)


def survives_an_unread_close(program: str) -> tuple[bool, str]:
    port = free_port()
    server = subprocess.Popen(
        ["node", "-e", program.replace("PORT", str(port))], stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until_accepting(port)
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
            pushed = push_until_stalled(sock, payload(16 * MiB))
        # leaving the block closes the socket with unread echo in it: the kernel sends RST
        try:
            server.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            return True, f"pushed {pushed} bytes, closed unread: still running"
        assert server.stderr is not None
        return (
            False,
            f"pushed {pushed} bytes, closed unread: exited with {server.returncode}:\n{server.stderr.read()}",
        )
    finally:
        server.kill()
        server.wait(timeout=TIMEOUT_S)


def main() -> int:
    defect_alive, defect_report = survives_an_unread_close(ONE_LINER)
    control_alive, control_report = survives_an_unread_close(WITH_HANDLER)
    print(f"s => s.pipe(s): {defect_report}")
    print(f"with an 'error' listener: {control_report}")
    return verdict(not defect_alive and control_alive, "one client's unread close killed the server")


if __name__ == "__main__":
    sys.exit(main())
