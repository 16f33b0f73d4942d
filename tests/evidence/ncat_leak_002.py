"""ncat --exec leaves ncat and cat behind for every client that stopped reading (LEAK-002; CONC-004).

A client sends without reading until TCP flow control stops it, then reads again, then closes.
ncat's per-connection process, relaying between the socket and cat with blocking writes, has
meanwhile blocked writing to cat's stdin while cat blocks writing to its stdout, which only ncat
reads (see ncat_conc_005.py): the client never gets the rest of its echo, and after it has gone
the ncat and cat pair never exits, holding two processes, their pipes and the socket for good.
Control: the same clients against socat -b4096 PIPE get everything back and leave nothing.

    python3 tests/evidence/ncat_leak_002.py     # exit status 0: reproduced
"""

from __future__ import annotations

import sys

from _flow_deadlock import leaves_processes

DEFECT = "ncat -l -k 127.0.0.1 {port} --exec /bin/cat"
CONTROL = "socat -b4096 TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork PIPE"
# A race. Measured (2 vCPU VM): 28 of 30 rounds of 5 clients left processes behind (one more
# round failed in the measuring script itself, fixed since). At the low end of the 95 % interval,
# p = 0.79 per round, 5 rounds all escape with probability 0.21^5 = 4e-4 < 1/1000 (one round,
# as before, missed about 1 run in 15). A round takes about 12 s.
ATTEMPTS = 5
BUDGET_S = 90.0


def main() -> int:
    return leaves_processes(
        DEFECT,
        CONTROL,
        limit=ATTEMPTS,
        budget_s=BUDGET_S,
        what="stalled clients' ncat and cat never exit",
    )


if __name__ == "__main__":
    sys.exit(main())
