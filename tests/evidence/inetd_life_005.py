"""inetd's echo children ignore SIGTERM: stopping inetd leaves every open echo connection open
(LIFE-005: the old connections never close, so the restart scenario waits for their FIN in vain).

inetd serves each echo connection in a forked child that runs inetd's own code and keeps the
SIGTERM handler it inherited from the parent -- a handler that only makes sense in inetd's main
loop. SIGTERM to the whole process group (what a supervisor, or the suite, sends) ends the parent;
the child notes the signal and goes on waiting for its client: the connection stays open, with
nobody to stop it. Control: the same child does exit when its client closes, so it is alive and
well -- it just cannot be stopped.

    python3 tests/evidence/inetd_life_005.py     # exit status 0: reproduced
"""

from __future__ import annotations

import os
import signal
import sys
import time

from _evidence import TIMEOUT_S, connect_when_ready, free_port, verdict
from _inetd_life import group_members, inetd

FIN_WAIT_S = 2.0


def sigterm_closes_connection() -> tuple[bool, list[int]]:
    """(whether the client saw the connection close after SIGTERM, the group's survivors)."""
    port = free_port()
    with inetd(port) as server, connect_when_ready(port) as sock:
        sock.sendall(b"hello")
        assert sock.recv(5) == b"hello", "no echo"
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=TIMEOUT_S)
        sock.settimeout(FIN_WAIT_S)
        try:
            closed = sock.recv(1) == b""
        except TimeoutError:
            closed = False
        except ConnectionResetError:
            closed = True
        return closed, group_members(server.pid)


def client_close_ends_child() -> bool:
    port = free_port()
    with inetd(port) as server:
        with connect_when_ready(port) as sock:
            sock.sendall(b"hello")
            assert sock.recv(5) == b"hello", "no echo"
        deadline = time.monotonic() + FIN_WAIT_S
        while len(group_members(server.pid)) > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        return len(group_members(server.pid)) == 1  # inetd alone


def main() -> int:
    closed, survivors = sigterm_closes_connection()
    print(
        f"SIGTERM to inetd's process group: connection closed within {FIN_WAIT_S} s: {closed}; "
        f"still running: {survivors}"
    )
    for pid in survivors:
        with open(f"/proc/{pid}/status") as status:
            caught = next(line for line in status if line.startswith("SigCgt:")).split()[1]
        print(f"  pid {pid} catches signals {caught} (SIGTERM is bit 15: {bool(int(caught, 16) & 1 << 14)})")
    control = client_close_ends_child()
    print(f"control: the echo child exits when its client closes: {control}")
    reproduced = not closed and bool(survivors) and control
    return verdict(reproduced, "inetd's echo child survives SIGTERM")


if __name__ == "__main__":
    sys.exit(main())
