"""Shared by the inetd LIFE evidence scripts: start inetd's internal echo as the suite does.

tests/inetd/run_inetd.sh runs ``inetd -d`` (foreground) with the echo service moved to a port of
our choosing (root, a private mount namespace). Standard library only; Linux (/proc).
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from _evidence import TIMEOUT_S

RUN_INETD = Path(__file__).resolve().parent.parent / "inetd" / "run_inetd.sh"


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
