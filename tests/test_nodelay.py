"""Every built-in server turns Nagle's algorithm off on each connection it accepts.

TIMING-003 catches a server with Nagle on only when a round trip happens to stall on a delayed
ACK, a race. This checks the cause itself, every run: the test copies the server's end of a
connection out of the server process (pidfd_getfd, Linux 5.6) and reads its TCP_NODELAY.
The asyncio server once missed it: asyncio sets TCP_NODELAY only on sockets created with
proto=IPPROTO_TCP, and ``socket.create_server`` makes proto 0.
"""

from __future__ import annotations

import ctypes
import os
import socket
import time

import psutil
import pytest

from conformance.harness.targets import TargetSpec
from impls.table import IMPLEMENTATIONS, Implementation

SYS_PIDFD_GETFD = 438  # the same number on every Linux architecture
ACCEPT_DEADLINE_S = 10.0
POLL_S = 0.01

libc = ctypes.CDLL(None, use_errno=True)


def copy_fd(pid: int, fd: int) -> int:
    """A descriptor of ours for the server's ``fd`` (needs ptrace rights over the server: ours)."""
    pidfd = os.pidfd_open(pid)
    try:
        copied = libc.syscall(SYS_PIDFD_GETFD, pidfd, fd, 0)
        if copied < 0:
            errno = ctypes.get_errno()
            if errno in {1, 38}:  # EPERM (no ptrace rights), ENOSYS (a kernel before 5.6)
                pytest.skip(f"pidfd_getfd unavailable here: {os.strerror(errno)}")
            raise OSError(errno, f"pidfd_getfd: {os.strerror(errno)}")
        return int(copied)
    finally:
        os.close(pidfd)


def accepted_fd(pid: int, client: socket.socket) -> int:
    """The server's descriptor of ``client``'s connection, once its accept() has returned."""
    peer = client.getsockname()
    deadline = time.monotonic() + ACCEPT_DEADLINE_S
    while time.monotonic() < deadline:
        for process in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
            for conn in process.net_connections(kind="tcp"):
                if conn.raddr and tuple(conn.raddr) == peer and conn.fd >= 0:
                    return copy_fd(process.pid, conn.fd)
        time.sleep(POLL_S)
    raise AssertionError(f"no server descriptor for the connection from {peer} after {ACCEPT_DEADLINE_S} s")


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS, ids=lambda impl: impl.name)
def test_accepted_connections_have_nodelay(implementation: Implementation) -> None:
    server, address = TargetSpec(implementation.name, implementation=implementation).launch()
    try:
        with socket.create_connection((address.host, address.port), timeout=5) as client:
            client.sendall(b"x")
            assert client.recv(1) == b"x"
            fd = accepted_fd(server.pid, client)
            with socket.socket(fileno=fd) as copy:
                nodelay = copy.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert nodelay, f"{implementation.name}: its accepted socket has Nagle on (TCP_NODELAY 0)"
    finally:
        server.stop()
