"""ncat serves at most 100 clients at once: the 101st is closed unserved (CONC-002, a SHOULD).

``ncat -l -k`` has a connection limit (``--max-conns``) that defaults to 100. The clients here
connect one after another, each echoes a line and stays connected; client 101 is accepted and
closed at once (an EOF, or a reset when its bytes are unread), without an echo. A documented
default rather than a bug, hence CONC-002 is a SHOULD (NON-STRICT): ncat turns the load away
rather than mishandling it. Control: the same command with ``--max-conns 1000`` serves all 150
clients.

    python3 tests/evidence/ncat_conc_002.py     # exit status 0: reproduced
"""

from __future__ import annotations

import socket
import sys
from contextlib import ExitStack

from _evidence import TIMEOUT_S, running, verdict

DEFECT = "ncat -l -k 127.0.0.1 {port} --exec /bin/cat"
CONTROL = "ncat -l -k --max-conns 1000 127.0.0.1 {port} --exec /bin/cat"
CLIENTS = 150


def echo_of(sock: socket.socket, line: bytes) -> bytes:
    """Send ``line`` and read its echo; whatever came back before an EOF or a reset."""
    echo = b""
    try:
        sock.sendall(line)
        while len(echo) < len(line) and (chunk := sock.recv(len(line) - len(echo))):
            echo += chunk
    except ConnectionResetError:
        pass
    return echo


def first_unserved(command: str) -> int | None:
    """Connect CLIENTS clients, keeping each open; the number of the first one not echoed."""
    with running(command) as (_, port), ExitStack() as stack:
        for number in range(1, CLIENTS + 1):
            sock = stack.enter_context(socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S))
            line = f"client {number}\n".encode()
            if echo_of(sock, line) != line:
                return number
    return None


def main() -> int:
    defect = first_unserved(DEFECT)
    control = first_unserved(CONTROL)
    for command, unserved in ((DEFECT, defect), (CONTROL, control)):
        outcome = (
            f"client {unserved} was closed (EOF or reset) without an echo"
            if unserved
            else f"all {CLIENTS} served"
        )
        print(f"{command}:\n  {outcome}")
    return verdict(defect == 101 and control is None, "the 101st simultaneous client is turned away")


if __name__ == "__main__":
    sys.exit(main())
