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

from flow_deadlock import stalled_clients

DEFECT = "socat TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork PIPE"
CONTROL = "socat -b4096 TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork PIPE"
CLIENTS = 5
EXIT_WAIT_S = 5.0
ATTEMPTS = 3  # the deadlock is a race: a round of clients may all escape it


def main() -> int:
    for _ in range(ATTEMPTS):
        defect_echoed, defect_left = stalled_clients(DEFECT, CLIENTS, EXIT_WAIT_S)
        if defect_left:
            break
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
    print("reproduced: stalled clients' socat children never exit" if reproduced else "not reproduced")
    return 0 if reproduced else 1


if __name__ == "__main__":
    sys.exit(main())
