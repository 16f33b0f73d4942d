"""socat's fork + PIPE echo leaves a child process behind, forever, for some clients that close
with their echo unread (LEAK-002).

Each socat child relays socket -> pipe -> socket in one thread with blocking writes. A client
that sends without reading fills both directions; when it then closes (a reset), the child may
be blocked writing the socket's last bytes into its own pipe, which nobody will ever read: it
hangs in pipe_write with no connection left. Control: clients that reset right after connecting
leave no child behind, so the cleanup itself works.

    python3 tests/evidence/socat_leak_002.py     # exit status 0: reproduced
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable

COMMAND = "socat TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork PIPE"
CLIENTS = 30
PUSH = 16 << 20
SETTLE_S = 5.0
TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_accepting(port: int) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as probe:
                probe.shutdown(socket.SHUT_WR)
                probe.recv(1)
        except OSError:
            time.sleep(0.02)  # a readiness probe: ends at the first accepted connection
        else:
            return
    raise SystemExit(f"socat did not accept on port {port} within {TIMEOUT_S} s")


def push_until_stalled(sock: socket.socket) -> None:
    """Send without reading until the socket stays unwritable for 0.2 s (or 16 MiB are out)."""
    sock.setblocking(False)
    data, sent = bytes(PUSH), 0
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_WRITE)
        while sent < PUSH and selector.select(0.2):
            try:
                sent += sock.send(data[sent : sent + 262144])
            except BlockingIOError:
                continue


def close_unread(port: int) -> None:
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)
    push_until_stalled(sock)
    sock.close()  # unread echo in the receive queue: the kernel sends RST


def reset_at_once(port: int) -> None:
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def children(pid: int) -> list[str]:
    """The server's child processes and where each one sleeps in the kernel."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                with open(f"/proc/{entry}/wchan") as wchan:
                    found.append(f"pid {entry} waiting in {wchan.read() or '?'}")
        except (OSError, ValueError):
            continue
    return found


def lingering_after(client: Callable[[int], None]) -> list[str]:
    port = free_port()
    server = subprocess.Popen(COMMAND.format(port=port), shell=True, start_new_session=True, stderr=subprocess.DEVNULL)
    try:
        wait_until_accepting(port)
        for _ in range(CLIENTS):
            client(port)
        time.sleep(SETTLE_S)  # the scenario's settle time: children of closed connections exit
        return children(server.pid)
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=TIMEOUT_S)


def main() -> int:
    defect = lingering_after(close_unread)
    control = lingering_after(reset_at_once)
    print(f"{CLIENTS} clients closed with their echo unread: {len(defect)} children left {SETTLE_S} s later")
    for line in defect[:5]:
        print(f"  {line}")
    print(f"{CLIENTS} clients reset at once: {len(control)} children left")
    reproduced = bool(defect) and not control
    print("reproduced: socat children hang after clients close unread" if reproduced else "not reproduced")
    return 0 if reproduced else 1


if __name__ == "__main__":
    sys.exit(main())
