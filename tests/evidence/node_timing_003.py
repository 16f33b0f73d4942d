"""node's one-line echo stalls ~40 ms on some round trips of a message written as 10 + 54 bytes
(TIMING-003, a race).

``net.createServer(s => s.pipe(s))`` leaves Nagle's algorithm on (no ``setNoDelay``). When node
reads the two pieces separately, it writes two echoes, and the second waits for the client's
delayed acknowledgement of the first. Control: the same server with ``s.setNoDelay(true)``.

    python3 tests/evidence/node_timing_003.py     # exit status 0: reproduced
"""

from __future__ import annotations

import sys

from _timing_split import reproduce

DEFECT = "node -e \"require('net').createServer(s => s.pipe(s)).listen({port}, '127.0.0.1')\""
CONTROL = "node -e \"require('net').createServer(s => { s.setNoDelay(true); s.pipe(s) })" + (
    ".listen({port}, '127.0.0.1')\""
)

if __name__ == "__main__":
    sys.exit(reproduce(DEFECT, CONTROL))
