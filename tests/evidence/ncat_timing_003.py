"""ncat's echo (--exec /bin/cat) stalls ~40 ms on some round trips of a message written as
10 + 54 bytes (TIMING-003, a race).

ncat sets no TCP_NODELAY (and has no option for it). When it relays the two pieces separately,
the second echo waits for the client's delayed acknowledgement of the first. Control: socat with
its ``nodelay`` option, a relay of the same kind that sets TCP_NODELAY.

    python3 tests/evidence/ncat_timing_003.py     # exit status 0: reproduced
"""

from __future__ import annotations

import sys

from _timing_split import reproduce

DEFECT = "ncat -l -k 127.0.0.1 {port} --exec /bin/cat"
CONTROL = "socat TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,nodelay PIPE"

if __name__ == "__main__":
    sys.exit(reproduce(DEFECT, CONTROL))
