"""socat's echo stalls ~40 ms on every 16 KiB round trip (TIMING-002): Nagle + delayed ACK.

socat copies at most 8192 bytes per read (its -b default) and does not set TCP_NODELAY, so a
16 KiB message is echoed as two writes and Nagle's algorithm holds the second until the client
acknowledges the first -- which the client's kernel delays by ~40 ms. Controls: the same
command with socat's ``nodelay`` option, and an 8 KiB message (echoed in one write), do not stall.

    python3 tests/evidence/socat_timing_002.py     # exit status 0: reproduced
"""

from __future__ import annotations

import sys

from _timing_nagle import Case, reproduce

ECHO = "socat TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork PIPE"
ECHO_NODELAY = "socat TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,nodelay PIPE"

if __name__ == "__main__":
    sys.exit(
        reproduce(
            Case("socat, 16 KiB messages", ECHO, 16384),
            [
                Case("socat with nodelay, 16 KiB messages", ECHO_NODELAY, 16384),
                Case("socat, 8 KiB messages", ECHO, 8192),
            ],
        )
    )
