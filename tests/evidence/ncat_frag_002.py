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

import selectors
import socket
import sys

from _evidence import TIMEOUT_S, running, until_reproduced, verdict

NCAT = "ncat -l -k 127.0.0.1 {port} --exec /bin/cat"
SOCAT = "socat TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork PIPE"
PAYLOAD = bytes(range(256)) * 1024  # 256 KiB
STALL_S = 5.0
# A race. Measured (2 vCPU VM): 23 of 30 transfers deadlocked with the machine idle. At the low
# end of the 95 % interval, p = 0.59 per transfer, 8 transfers all escape with probability
# 0.41^8 = 8e-4 < 1/1000. A transfer takes about 4 s (a deadlock 5 s).
ATTEMPTS = 8
BUDGET_S = 60.0


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
    with running(command) as (_, port):
        return echo_while_sending(port)


def ncat_hangs(number: int) -> str | None:
    echoed = run(NCAT)
    return (
        f"transfer {number}: {echoed} of {len(PAYLOAD)} bytes echoed, then nothing for {STALL_S} s"
        if echoed < len(PAYLOAD)
        else None
    )


def main() -> int:
    defect = until_reproduced(ncat_hangs, limit=ATTEMPTS, budget_s=BUDGET_S)
    socat = run(SOCAT)
    print(f"ncat --exec cat: {defect}")
    print(f"socat PIPE (control): {socat} of {len(PAYLOAD)} bytes echoed")
    return verdict(defect.hit is not None and socat == len(PAYLOAD), "ncat's relay deadlocked")


if __name__ == "__main__":
    sys.exit(main())
