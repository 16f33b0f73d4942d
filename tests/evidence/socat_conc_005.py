"""socat's PIPE echo deadlocks on its own pipe under load (CONC-005; also CONC-004, FLOW-001/003).

``socat TCP-LISTEN:...,fork PIPE`` echoes through an unnamed pipe that the same process both
writes and reads. It reads up to 8192 bytes (its -b default) from the client, waits until the
pipe is "writable" -- which poll() reports once PIPE_BUF (4096) bytes are free -- and then
write()s all 8192 bytes in blocking mode. With fewer than 8192 bytes free that write sleeps until
someone reads the pipe, but the only reader is the sleeping process itself: the connection hangs
for good, although the client reads everything all along. It happens when the pipe is nearly
full, i.e. when the echo goes out slower than it comes in -- here, a client that reads in
1 KiB pieces; a 16 MiB full-duplex transfer gets there within a few tries. Control: the same
command with ``-b4096`` (reads never exceed what a writable pipe is sure to take) completes
every transfer.

    python3 tests/evidence/socat_conc_005.py     # exit status 0: reproduced
"""

from __future__ import annotations

import sys

from _evidence import MiB
from _flow_deadlock import hangs_in_duplex

DEFECT = "socat TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork PIPE"
CONTROL = "socat -b4096 TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork PIPE"
SIZE = 16 * MiB
READ_SIZE = 1024  # a client that reads in small pieces: the echo goes out slower than it comes in
# A race. Measured (2 vCPU VM, 30 transfers each): 11 of 30 hung with the machine idle, 13 of 30
# with the other core busy; re-measured on the CI machine of 2026-12-03, a fresh server per
# transfer (see _flow_deadlock.first_hang), 28 of 30 with the other core busy. At the low end of
# the 95 % interval of the slowest machine, p = 0.22 per transfer, 30 transfers all escape with
# probability 0.78^30 = 6e-4 < 1/1000. A transfer takes 0.2-2 s (a hang 5 s); the budget bounds
# the worst case. Typically the first or second transfer hangs.
ATTEMPTS = 30
BUDGET_S = 90.0


def main() -> int:
    return hangs_in_duplex(
        DEFECT,
        CONTROL,
        size=SIZE,
        read_size=READ_SIZE,
        limit=ATTEMPTS,
        budget_s=BUDGET_S,
        what="socat hung writing to its own pipe",
    )


if __name__ == "__main__":
    sys.exit(main())
