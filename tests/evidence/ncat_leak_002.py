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

from flow_deadlock import stalled_clients

DEFECT = "ncat -l -k 127.0.0.1 {port} --exec /bin/cat"
CONTROL = "socat -b4096 TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork PIPE"
CLIENTS = 5
EXIT_WAIT_S = 5.0


def main() -> int:
    defect_echoed, defect_left = stalled_clients(DEFECT, CLIENTS, EXIT_WAIT_S)
    control_echoed, control_left = stalled_clients(CONTROL, CLIENTS, EXIT_WAIT_S)
    for command, echoed, left in (
        (DEFECT, defect_echoed, defect_left),
        (CONTROL, control_echoed, control_left),
    ):
        print(f"{command}:\n  {echoed} of {CLIENTS} clients got their echo back after reading again")
        print(f"  {len(left)} processes left {EXIT_WAIT_S} s after every client closed")
        for stuck in left:
            print(f"    {stuck}")
    reproduced = bool(defect_left) and not control_left and control_echoed == CLIENTS
    print("reproduced: stalled clients' ncat and cat never exit" if reproduced else "not reproduced")
    return 0 if reproduced else 1


if __name__ == "__main__":
    sys.exit(main())
