"""Shared by the TIMING-003 evidence scripts: a message written in two pieces (10 + 54 bytes).

Standard library only. The client (TCP_NODELAY) writes 10 bytes, a moment later 54 more, and reads
the 64-byte echo, many times over one connection. A server without TCP_NODELAY stalls ~40 ms on
a round trip whenever it happens to read the two pieces separately before the client has seen
the first echo: its second write waits (Nagle) for an acknowledgement the client delays. That is
a race on loopback (rare for some servers), so the script looks for a stall for up to 30 s,
over connections with a few pauses between the pieces; a control server with TCP_NODELAY must
have none over as many round trips.
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import time

from timing_nagle import STALL_MS, connect_when_ready, free_port

ROUND_TRIPS = 1000  # per connection, at one gap
SEARCH_S = 30.0  # how long to look for a stall: the race is rare for some servers
# Pauses between the pieces: which one makes a server read them separately most often depends
# on how fast its relay turns (node, ncat: tens of microseconds; socat: about a millisecond).
GAPS_S = (30e-6, 300e-6, 1e-3)
PIECES = (10, 54)
TIMEOUT_S = 5.0


def stalls(command: str, gap_s: float) -> int:
    """Round trips slower than STALL_MS, out of ROUND_TRIPS, against ``command``."""
    port = free_port()
    server = subprocess.Popen(command.replace("{port}", str(port)), shell=True, start_new_session=True)  # noqa: S602
    slow = 0
    try:
        with connect_when_ready(port) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for _ in range(ROUND_TRIPS):
                message = os.urandom(sum(PIECES))
                started = time.perf_counter()
                sock.sendall(message[: PIECES[0]])
                gap_ends = time.perf_counter() + gap_s
                while time.perf_counter() < gap_ends:
                    pass  # a busy wait: sleep() is too coarse for microseconds
                sock.sendall(message[PIECES[0] :])
                echo = b""
                while len(echo) < len(message):
                    chunk = sock.recv(len(message) - len(echo))
                    if not chunk:
                        raise ConnectionError(f"EOF after {len(echo)} of {len(message)} bytes")
                    echo += chunk
                assert echo == message, "the echo differs from the message"
                slow += (time.perf_counter() - started) * 1000 > STALL_MS
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=TIMEOUT_S)
    return slow


def reproduce(defect: str, control: str) -> int:
    """Exit status 0 if the defect stalls at some gap within SEARCH_S and the control never does."""
    deadline = time.monotonic() + SEARCH_S
    defect_stalls = tried = 0
    for gap_s in itertools.cycle(GAPS_S):
        defect_stalls += stalls(defect, gap_s)
        tried += ROUND_TRIPS
        if defect_stalls or time.monotonic() > deadline:
            break
    control_stalls = sum(stalls(control, gap_s) for gap_s in GAPS_S)
    print(f"{defect}: {defect_stalls} of {tried} round trips over {STALL_MS:.0f} ms")
    controlled = ROUND_TRIPS * len(GAPS_S)
    print(f"{control} (control): {control_stalls} of {controlled} round trips over {STALL_MS:.0f} ms")
    reproduced = defect_stalls > 0 and control_stalls == 0
    print("reproduced" if reproduced else "NOT reproduced")
    return 0 if reproduced else 1
