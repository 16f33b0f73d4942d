"""Shared by the inetd LIFE evidence scripts: start inetd's internal echo as the suite does.

tests/inetd/run_inetd.sh runs ``inetd -d`` (foreground) with the echo service moved to a port of
our choosing (root, a private mount namespace). Standard library only; Linux (/proc).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

RUN_INETD = Path(__file__).resolve().parent.parent / "inetd" / "run_inetd.sh"
TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def inetd(port: int) -> Iterator[subprocess.Popen[bytes]]:
    """inetd on ``port``, in a process group of its own that is killed afterwards."""
    server = subprocess.Popen(
        ["sh", str(RUN_INETD), str(port)], start_new_session=True, stderr=subprocess.PIPE
    )
    try:
        yield server
    finally:
        with suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=TIMEOUT_S)


def connect_when_ready(port: int) -> socket.socket:
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)  # a readiness probe: ends at the first accepted connection


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.getpgid(int(entry)) == pgid:
                    members.append(int(entry))
            except ProcessLookupError:
                continue
    return members
