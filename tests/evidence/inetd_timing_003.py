"""inetd's internal echo stalls ~40 ms on some round trips of a message written as 10 + 54 bytes
(TIMING-003, a race).

openbsd-inetd's built-in echo sets no TCP_NODELAY. When it reads the two pieces separately, the
second echo waits (Nagle) for the client's delayed acknowledgement of the first. inetd has no
option to turn Nagle off, so the control is another forking relay that does: socat with its
``nodelay`` option, which shows the client itself does not stall. inetd runs as the suite runs
it (tests/inetd/run_inetd.sh: root, a private mount namespace).

    python3 tests/evidence/inetd_timing_003.py     # exit status 0: reproduced
"""

from __future__ import annotations

import sys
from pathlib import Path

from _timing_split import reproduce

DEFECT = f"sh {Path(__file__).resolve().parent.parent / 'inetd' / 'run_inetd.sh'} {{port}}"
CONTROL = "socat TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,nodelay PIPE"

if __name__ == "__main__":
    sys.exit(reproduce(DEFECT, CONTROL))
