"""ncat's echo (--exec /bin/cat) stalls ~40 ms on every 16 KiB round trip (TIMING-002).

ncat relays at most 8 KiB per read between the socket and cat and does not set TCP_NODELAY, so
a 16 KiB echo leaves in two writes and Nagle's algorithm holds the second until the client
acknowledges the first -- which the client's kernel delays by ~40 ms. ncat has no option to set
TCP_NODELAY; the control is an 8 KiB message, echoed in one write, which does not stall.

    python3 tests/evidence/ncat_timing_002.py     # exit status 0: reproduced
"""

from __future__ import annotations

import sys

from _timing_nagle import Case, reproduce

ECHO = "ncat -l -k 127.0.0.1 {port} --exec /bin/cat"

if __name__ == "__main__":
    sys.exit(
        reproduce(
            Case("ncat --exec cat, 16 KiB messages", ECHO, 16384),
            [Case("ncat --exec cat, 8 KiB messages", ECHO, 8192)],
        )
    )
