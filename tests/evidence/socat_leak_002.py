"""socat's PIPE echo leaves a process behind for every client that stopped reading (LEAK-002; CONC-004).

A client sends without reading until TCP flow control stops it, then reads again, then closes.
socat's per-connection child (``fork``) has meanwhile been caught writing 8192 bytes into its own,
nearly full pipe (see socat_conc_005.py): it never echoes the rest -- the client waits in vain --
and after the client has gone it never exits, holding a process, its pipe and its socket for
good. Control: the same command with ``-b4096`` echoes everything and leaves no child behind.

    python3 tests/evidence/socat_leak_002.py     # exit status 0: reproduced
"""

from __future__ import annotations

import sys

from _flow_deadlock import leaves_processes

DEFECT = "socat TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork PIPE"
CONTROL = "socat -b4096 TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork PIPE"
# A race. Measured (2 vCPU VM): 30 of 30 rounds of 5 clients left processes behind. At the
# low end of the 95 % interval, p = 0.89 per round, 4 rounds all escape with probability
# 0.11^4 = 1.7e-4 < 1/1000. A round takes about 14 s.
ATTEMPTS = 4
BUDGET_S = 80.0


def main() -> int:
    return leaves_processes(
        DEFECT,
        CONTROL,
        limit=ATTEMPTS,
        budget_s=BUDGET_S,
        what="stalled clients' socat children never exit",
    )


if __name__ == "__main__":
    sys.exit(main())
