"""ncat's echo (--exec /bin/cat) deadlocks when a client sends a lot at once (FRAG-002, CONC-005,
FLOW-001, sometimes CONC-004).

ncat relays socket -> cat's stdin and cat's stdout -> socket in one loop with blocking writes.
When a client sends more than the pipes and socket buffers hold before reading the echo, ncat
blocks writing into cat's stdin while cat blocks writing into its stdout, which only ncat reads:
nobody moves again, however fast the client reads. The client here sends 256 KiB and reads at
the same time (a non-blocking loop), exactly as the suite's client does; in most attempts the
echo stops after a few tens of KiB (it is a race: the script tries up to 5 times). Control:
socat's fork + PIPE echo serves the same client in full.

    python3 tests/evidence/ncat_frag_002.py     # exit status 0: reproduced
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import time

NCAT = "ncat -l -k 127.0.0.1 {port} --exec /bin/cat"
SOCAT = "socat TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork PIPE"
PAYLOAD = bytes(range(256)) * 1024  # 256 KiB
STALL_S = 5.0
TIMEOUT_S = 10.0
ATTEMPTS = 5  # the deadlock is a race: one transfer may escape it


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_accepting(port: int) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.02)  # a readiness probe: ends at the first accepted connection
    raise SystemExit(f"the server did not accept on port {port} within {TIMEOUT_S} s")


def echo_while_sending(port: int) -> int:
    """Send PAYLOAD while reading; how many bytes came back before STALL_S without progress."""
    received, sent = 0, 0
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
        sock.setblocking(False)
        with selectors.DefaultSelector() as selector:
            selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
            while received < len(PAYLOAD):
                ready = selector.select(STALL_S)
                if not ready:
                    break  # no byte moved for STALL_S seconds
                for _, mask in ready:
                    if mask & selectors.EVENT_READ:
                        chunk = sock.recv(65536)
                        if not chunk:
                            return received
                        received += len(chunk)
                    if mask & selectors.EVENT_WRITE and sent < len(PAYLOAD):
                        sent += sock.send(PAYLOAD[sent : sent + 65536])
                    if sent == len(PAYLOAD):
                        selector.modify(sock, selectors.EVENT_READ)
    return received


def run(command: str) -> int:
    port = free_port()
    server = subprocess.Popen(command.format(port=port), shell=True, start_new_session=True)  # noqa: S602
    try:
        wait_until_accepting(port)
        return echo_while_sending(port)
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=TIMEOUT_S)


def main() -> int:
    for _ in range(ATTEMPTS):
        if (ncat := run(NCAT)) < len(PAYLOAD):
            break
    socat = run(SOCAT)
    print(f"ncat --exec cat: {ncat} of {len(PAYLOAD)} bytes echoed, then nothing for {STALL_S} s")
    print(f"socat PIPE (control): {socat} of {len(PAYLOAD)} bytes echoed")
    reproduced = ncat < len(PAYLOAD) and socat == len(PAYLOAD)
    print("reproduced: ncat's relay deadlocked" if reproduced else "not reproduced")
    return 0 if reproduced else 1


if __name__ == "__main__":
    sys.exit(main())
