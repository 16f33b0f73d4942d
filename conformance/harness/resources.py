"""What a server process holds: memory, descriptors, threads (read from /proc through psutil).

A forking server (socat fork, inetd) serves each connection in a child, so every figure is
summed over the process and its descendants.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import psutil

POLL_INTERVAL_S = 0.05


@dataclass(frozen=True)
class Usage:
    rss_bytes: int
    open_fds: int
    threads: int
    processes: int


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def usage(pid: int) -> Usage:
    rss = fds = threads = count = 0
    for process in _tree(pid):
        try:
            with process.oneshot():
                rss += process.memory_info().rss
                fds += process.num_fds()
                threads += process.num_threads()
                count += 1
        except psutil.NoSuchProcess:
            continue  # a child that finished between the listing and the reading
    return Usage(rss, fds, threads, count)


def settle(pid: int, done: Callable[[Usage], bool], timeout: float) -> Usage:
    """Poll until ``done(usage)`` holds or the deadline passes; return the last reading.

    Servers release a connection's resources asynchronously after the client closes (a thread
    has to notice EOF, a forked child has to exit), so the check waits for the count to come
    down, bounded in time, and the caller asserts on what it finally saw.
    """
    deadline = time.monotonic() + timeout
    current = usage(pid)
    while not done(current) and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL_S)
        current = usage(pid)
    return current


SETTLE_S = 5.0  # time for a server to notice the last closes (threads end, children exit)
STEADY_READINGS = 4  # a baseline is taken once this many polls in a row agree


def counts(reading: Usage) -> tuple[int, int, int]:
    """What a released connection gives back: descriptors, threads, processes."""
    return reading.open_fds, reading.threads, reading.processes


def steady_baseline(pid: int) -> Usage:
    """The counts once they stop changing (STEADY_READINGS polls agree; bounded by SETTLE_S)."""
    readings: list[tuple[int, int, int]] = []

    def steady(reading: Usage) -> bool:
        readings.append(counts(reading))
        return len(readings) >= STEADY_READINGS and len(set(readings[-STEADY_READINGS:])) == 1

    return settle(pid, steady, SETTLE_S)


def assert_back_to_baseline(pid: int, baseline: Usage, what: str) -> None:
    """Within SETTLE_S, the server holds no more descriptors, threads or processes than before.

    Zero tolerance: a correct server holds, once idle, exactly what it held when idle before.
    """

    def released(reading: Usage) -> bool:
        return all(now <= then for now, then in zip(counts(reading), counts(baseline), strict=True))

    after = settle(pid, released, SETTLE_S)
    assert released(after), (
        f"{SETTLE_S} s after {what}, the server holds {after.open_fds} fds, {after.threads} threads, "
        f"{after.processes} processes; before: {baseline.open_fds} fds, {baseline.threads} threads, "
        f"{baseline.processes} processes"
    )
