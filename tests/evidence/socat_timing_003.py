"""socat's echo stalls ~40 ms on some round trips of a message written as 10 + 54 bytes
(TIMING-003, a race).

socat sets no TCP_NODELAY unless told to. When it reads the two pieces separately, the second
echo waits for the client's delayed acknowledgement of the first. Control: the same command
with socat's ``nodelay`` option.

    python3 tests/evidence/socat_timing_003.py     # exit status 0: reproduced
"""

from __future__ import annotations

import sys

from _timing_split import reproduce

DEFECT = "socat TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork PIPE"
CONTROL = "socat TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,nodelay PIPE"

if __name__ == "__main__":
    sys.exit(reproduce(DEFECT, CONTROL))
