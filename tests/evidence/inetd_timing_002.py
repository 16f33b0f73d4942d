"""inetd's internal echo stalls ~40 ms on every 16 KiB round trip (TIMING-002): Nagle + delayed ACK.

openbsd-inetd's built-in echo service copies through a 4 KiB buffer without TCP_NODELAY, so a
16 KiB message is echoed in four writes and Nagle's algorithm holds the later ones until the
client acknowledges the first -- which the client's kernel delays by ~40 ms (8 KiB
messages stall the same way). Control: a 4 KiB message, echoed in one write, does not stall.
inetd runs as the suite runs it (tests/inetd/run_inetd.sh: root, a private mount namespace that
moves the echo service off port 7).

    python3 tests/evidence/inetd_timing_002.py     # exit status 0: reproduced
"""

from __future__ import annotations

import sys
from pathlib import Path

from _timing_nagle import Case, reproduce

ECHO = f"sh {Path(__file__).resolve().parent.parent / 'inetd' / 'run_inetd.sh'} {{port}}"

if __name__ == "__main__":
    sys.exit(
        reproduce(
            Case("inetd echo, 16 KiB messages", ECHO, 16384),
            [Case("inetd echo, 4 KiB messages", ECHO, 4096)],
        )
    )
