"""Shared by the TIMING-003 evidence scripts: a message written in two pieces (10 + 54 bytes).

Standard library only. The client (TCP_NODELAY) writes 10 bytes, a moment later 54 more, and reads
the 64-byte echo, many times over one connection. A server without TCP_NODELAY stalls ~40 ms on
a round trip whenever it happens to read the two pieces separately before the client has seen
the first echo: its second write waits (Nagle) for an acknowledgement the client delays. That is
a race on loopback (rare for some servers), so the script looks for a stall over up to ATTEMPTS
connections, cycling through a few pauses between the pieces; a control server with TCP_NODELAY must
have none over as many round trips.
"""

from __future__ import annotations

import os
import socket
import time

from _evidence import connect_when_ready, receive_exactly, running, until_reproduced, verdict
from _timing_nagle import STALL_MS

ROUND_TRIPS = 1000  # per connection, at one gap: one attempt
# Pauses between the pieces: which one makes a server read them separately most often depends
# on how fast its relay turns; 30 us and 100 us suit node and ncat best, idle or loaded.
GAPS_S = (30e-6, 100e-6)
PIECES = (10, 54)
# A race. Measured on the 2-vCPU CI machine, 30 attempts of ROUND_TRIPS each per gap, idle | with
# one core kept busy by a spin loop (the evidence step runs two scripts at once): attempts that
# stalled at 30 us / 100 us -- node 14|2 / 20|14 of 30, ncat 19|20 / 28|23. Taking the low end of
# each 95 % (Clopper-Pearson) interval, node loaded is the worst case: a cycle of both gaps misses
# with probability at most (1 - 0.008) x (1 - 0.28) = 0.71, so 21 cycles (42 attempts) all miss
# with probability 0.71^21 = 8e-4 < 1/1000 (ncat loaded: 0.53 x 0.42 = 0.22 per cycle, 1e-14).
# An attempt without a stall takes about 0.2 s, so the budget covers every attempt.
# socat is not gated here: it stalled at 30 us in 30 of 30 attempts idle but 0 of 30 loaded (at
# 100 us-3 ms: 2, 1, 0 idle and 0 loaded), so no attempt count makes a miss rare on a busy
# machine; its script runs in tox's report-only env (see tests/third_party.py REPORT_ONLY).
ATTEMPTS = 42
BUDGET_S = 60.0


def round_trip(sock: socket.socket, gap_s: float) -> float:
    """One message written as PIECES, ``gap_s`` apart; its round trip in ms."""
    message = os.urandom(sum(PIECES))
    started = time.perf_counter()
    sock.sendall(message[: PIECES[0]])
    gap_ends = time.perf_counter() + gap_s
    while time.perf_counter() < gap_ends:
        pass  # a busy wait: sleep() is too coarse for microseconds
    sock.sendall(message[PIECES[0] :])
    echo = receive_exactly(sock, len(message))
    assert echo == message, "the echo differs from the message"
    return (time.perf_counter() - started) * 1000


def stalls(command: str, gap_s: float) -> int:
    """Round trips slower than STALL_MS, out of ROUND_TRIPS, against ``command``."""
    with running(command, ready=False) as (_, port), connect_when_ready(port) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sum(round_trip(sock, gap_s) > STALL_MS for _ in range(ROUND_TRIPS))


def reproduce(defect: str, control: str) -> int:
    """Exit status 0 if the defect stalls at some gap within the attempts and the control never does."""

    def attempt(number: int) -> str | None:
        gap_s = GAPS_S[(number - 1) % len(GAPS_S)]
        slow = stalls(defect, gap_s)
        return (
            f"{slow} of {ROUND_TRIPS} round trips over {STALL_MS:.0f} ms at a {gap_s * 1e6:.0f} us gap"
            if slow
            else None
        )

    found = until_reproduced(attempt, limit=ATTEMPTS, budget_s=BUDGET_S)
    control_stalls = sum(stalls(control, gap_s) for gap_s in GAPS_S)
    print(f"{defect}: {found}")
    controlled = ROUND_TRIPS * len(GAPS_S)
    print(f"{control} (control): {control_stalls} of {controlled} round trips over {STALL_MS:.0f} ms")
    return verdict(
        found.hit is not None and control_stalls == 0, "the split message stalls, the control never does"
    )
