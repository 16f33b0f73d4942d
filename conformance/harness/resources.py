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
