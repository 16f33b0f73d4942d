"""ncat's --exec echo deadlocks with its own cat under load (CONC-005; also CONC-004, FLOW-001/003).

``ncat -l -k --exec /bin/cat`` relays between the client's socket and cat's stdin and stdout
pipes from one process, with blocking writes. When the echo goes out slower than it comes in
(here a client that reads in 512-byte pieces, but reads all along), cat's stdout pipe fills, cat
blocks writing to it and stops reading its stdin, that pipe fills too, and ncat blocks writing
8 KiB to cat's stdin -- so nobody reads cat's stdout ever again: each waits for the other, and
the connection hangs for good. Control: the same client against a server that takes what it
can without blocking (socat -b4096 PIPE) completes every transfer.

    python3 tests/evidence/ncat_conc_005.py     # exit status 0: reproduced
"""

from __future__ import annotations

import sys

from flow_deadlock import MiB, first_hang

DEFECT = "ncat -l -k 127.0.0.1 {port} --exec /bin/cat"
CONTROL = "socat -b4096 TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork PIPE"
ATTEMPTS = 10
SIZE = 16 * MiB
READ_SIZE = 512  # a client that reads in small pieces: the echo goes out slower than it comes in


def main() -> int:
    defect = first_hang(DEFECT, ATTEMPTS, SIZE, READ_SIZE)
    control = first_hang(CONTROL, ATTEMPTS, SIZE, READ_SIZE)
    print(f"{DEFECT}:\n  {defect or f'all {ATTEMPTS} transfers completed'}")
    print(f"{CONTROL}:\n  {control or f'all {ATTEMPTS} transfers completed'}")
    reproduced = defect is not None and control is None
    print("reproduced: ncat and cat wait for each other" if reproduced else "not reproduced")
    return 0 if reproduced else 1


if __name__ == "__main__":
    sys.exit(main())
