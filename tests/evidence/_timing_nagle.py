"""Shared by the TIMING evidence scripts: run echo server commands and time a ping-pong against each.

Standard library only, so the evidence stands apart from the suite. Each case starts a server
command with ``{port}`` filled in, ping-pongs messages of one size on one connection (client
TCP_NODELAY, blocking socket with a timeout), prints the round-trip percentiles and stops the server.
"""

from __future__ import annotations

import os
import socket
import statistics
import time
from dataclasses import dataclass

from _evidence import connect_when_ready, receive_exactly, running, verdict

ROUND_TRIPS = 50
STALL_MS = 30.0  # a Nagle + delayed-ACK stall is ~40 ms; a loopback echo is well under 1 ms


@dataclass(frozen=True)
class Case:
    label: str
    command: str
    size: int


def ping_pong_ms(sock: socket.socket, size: int) -> list[float]:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    message = os.urandom(size)
    rtts = []
    for _ in range(ROUND_TRIPS):
        started = time.perf_counter()
        sock.sendall(message)  # 16 KiB fits the socket buffers: no need to read while sending
        echo = receive_exactly(sock, size)
        rtts.append((time.perf_counter() - started) * 1000)
        assert echo == message, "the echo differs from the message"
    return rtts


def measure(case: Case) -> list[float]:
    with running(case.command, ready=False) as (_, port), connect_when_ready(port) as sock:
        rtts = ping_pong_ms(sock, case.size)
    cuts = statistics.quantiles(rtts, n=100, method="inclusive")
    print(
        f"{case.label:<40} {case.size:>6} B x {ROUND_TRIPS}: p50 {cuts[49]:6.2f} ms  "
        f"p99 {cuts[98]:6.2f} ms  stalls (> {STALL_MS:.0f} ms): {sum(rtt > STALL_MS for rtt in rtts)}"
    )
    return rtts


def reproduce(defect: Case, controls: list[Case]) -> int:
    """Exit status 0 if the defect case stalls on most round trips and no control case does."""
    print(f"command: {defect.command}")
    stalled = statistics.median(measure(defect)) > STALL_MS
    clean = all(max(measure(control)) < STALL_MS for control in controls)
    return verdict(stalled and clean, "the defect stalls ~40 ms on most round trips, no control does")
