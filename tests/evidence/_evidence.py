"""Shared by every evidence script: a free port, a server command started and stopped, readiness,
defect versus control, and attempts at a race within a budget.

Standard library only, so the evidence stands apart from the suite. Every function is bounded in
time. A script exits 0 when it reproduces the defect and its control does not show it.

Races. Some defects happen in some runs only (a deadlock that depends on how the pipes fill). For
those, ``until_reproduced`` makes attempts until one shows the defect, up to a count and a time
budget chosen from the measured per-attempt rate p: n attempts all miss with probability
(1 - p)^n, kept below 1 in 1000 with p taken at the low end of what was measured (each script's
docstring gives its figures and the arithmetic).
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

TIMEOUT_S = 10.0
MiB = 1 << 20
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_accepting(port: int, probe: Callable[[socket.socket], object] = lambda sock: None) -> None:
    """Connect until the server accepts (the commands print nothing when they are ready);
    ``probe`` may do something with the first connection (e.g. close it cleanly)."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
                probe(sock)
                return
        except OSError:
            time.sleep(0.02)  # a readiness probe: ends at the first accepted connection
    raise SystemExit(f"the server did not accept on port {port} within {TIMEOUT_S} s")


def connect_when_ready(port: int) -> socket.socket:
    """The first connection the server accepts, kept open (for servers that serve it)."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)  # a readiness probe: ends at the first accepted connection


def receive_exactly(sock: socket.socket, size: int) -> bytes:
    """``size`` bytes from ``sock``, however the stream splits them (each recv bounded by the
    socket's timeout); ConnectionError if the server closes first."""
    received = b""
    while len(received) < size:
        chunk = sock.recv(size - len(received))
        if not chunk:
            raise ConnectionError(f"EOF after {len(received)} of {size} bytes")
        received += chunk
    return received


@contextmanager
def running(command: str, *, ready: bool = True) -> Iterator[tuple[int, int]]:
    """Start ``command`` ({port} filled in) in a process group of its own; yield (pid, port) once
    it accepts (``ready``); kill the whole group afterwards."""
    port = free_port()
    argv = shlex.split(command.replace("{port}", str(port)))
    server = subprocess.Popen(argv, start_new_session=True, stderr=subprocess.DEVNULL)
    try:
        if ready:
            wait_until_accepting(port)
        yield server.pid, port
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=TIMEOUT_S)


@dataclass(frozen=True)
class Attempts:
    """The first attempt that showed the defect (None: none did) and how many were made."""

    hit: str | None
    made: int
    limit: int
    seconds: float

    def __str__(self) -> str:
        if self.hit is not None:
            return f"attempt {self.made} of at most {self.limit}: {self.hit}"
        return f"none of {self.made} attempts (limit {self.limit}, {self.seconds:.0f} s) showed it"


def until_reproduced(attempt: Callable[[int], str | None], *, limit: int, budget_s: float) -> Attempts:
    """Call ``attempt(number)`` until it describes the defect (returns text), ``limit`` attempts
    were made, or ``budget_s`` has passed; the defect found first wins."""
    started = time.monotonic()
    made = 0
    while made < limit and time.monotonic() - started < budget_s:
        made += 1
        if (hit := attempt(made)) is not None:
            return Attempts(hit, made, limit, time.monotonic() - started)
    return Attempts(None, made, limit, time.monotonic() - started)


def verdict(reproduced: bool, what: str) -> int:
    """Print the conclusion; the script's exit status (0: reproduced)."""
    print(f"reproduced: {what}" if reproduced else "NOT reproduced")
    return 0 if reproduced else 1
