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

from flow_deadlock import MiB, first_hang

DEFECT = "socat TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork PIPE"
CONTROL = "socat -b4096 TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork PIPE"
ATTEMPTS = 6
SIZE = 16 * MiB
READ_SIZE = 1024  # a client that reads in small pieces: the echo goes out slower than it comes in


def main() -> int:
    defect = first_hang(DEFECT, ATTEMPTS, SIZE, READ_SIZE)
    control = first_hang(CONTROL, ATTEMPTS, SIZE, READ_SIZE)
    print(f"{DEFECT}:\n  {defect or f'all {ATTEMPTS} transfers completed'}")
    print(f"{CONTROL}:\n  {control or f'all {ATTEMPTS} transfers completed'}")
    reproduced = defect is not None and control is None
    print("reproduced: socat hung writing to its own pipe" if reproduced else "not reproduced")
    return 0 if reproduced else 1


if __name__ == "__main__":
    sys.exit(main())
