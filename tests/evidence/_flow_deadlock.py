"""Shared by the CONC/FLOW/LEAK evidence scripts: a full-duplex client, a client that stops
reading, and a look inside the server's processes (where each one sleeps).

Each function is bounded in time. ``descendants`` reads /proc, so the scripts run on Linux.
"""

from __future__ import annotations

import os
import random
import selectors
import socket
import time
from dataclasses import dataclass

from _evidence import TIMEOUT_S, Attempts, MiB, running, until_reproduced, verdict

CONTROL_TRANSFERS = 6  # a control server must complete every one of them
STALLED_CLIENTS = 5  # per round of the LEAK evidence
EXIT_WAIT_S = 5.0  # how long the server's processes get to exit after the last client closed


@dataclass(frozen=True)
class Transfer:
    sent: int
    received: int
    stalled: bool  # nothing moved either way for the stall period before everything came back


def duplex(
    sock: socket.socket,
    payload: bytes,
    *,
    already_sent: int = 0,
    read_size: int = 1 << 16,
    stall_s: float = 5.0,
) -> Transfer:
    """Send ``payload[already_sent:]`` while reading, until the whole echo is back or nothing moves."""
    view = memoryview(payload)
    sent, received = already_sent, 0
    sock.setblocking(False)
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
        while received < len(payload):
            if sent >= len(payload):
                selector.modify(sock, selectors.EVENT_READ)
            events = selector.select(stall_s)
            if not events:
                return Transfer(sent, received, stalled=True)
            for _, mask in events:
                if mask & selectors.EVENT_READ:
                    chunk = sock.recv(read_size)
                    if not chunk:
                        return Transfer(sent, received, stalled=False)
                    received += len(chunk)
                if mask & selectors.EVENT_WRITE and sent < len(payload):
                    sent += sock.send(view[sent : sent + (1 << 20)])
    return Transfer(sent, received, stalled=False)


def push_until_stalled(sock: socket.socket, payload: bytes, quiet_s: float = 0.5) -> int:
    """Send without reading until the socket stays unwritable for ``quiet_s``; return bytes sent."""
    view = memoryview(payload)
    sent = 0
    sock.setblocking(False)
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_WRITE)
        while sent < len(payload) and selector.select(quiet_s):
            sent += sock.send(view[sent : sent + (1 << 18)])
    return sent


def payload(size: int, seed: int = 1) -> bytes:
    return random.Random(seed).randbytes(size)


def first_hang(command: str, size: int, read_size: int, *, limit: int, budget_s: float) -> Attempts:
    """Full-duplex transfers of ``size`` bytes, each to a server started for it, the client
    reading ``read_size`` bytes at a time, until one hangs (described), ``limit`` transfers
    were made, or ``budget_s`` has passed. A fresh server each time, because the rate of a race
    belongs to a server process: one ncat hung on 4 of 30 transfers, the next on 27 of 30, so
    attempts on one server are not independent and their miss rates do not multiply."""
    data = payload(size)

    def transfer(number: int) -> str | None:
        with (
            running(command) as (pid, port),
            socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock,
        ):
            moved = duplex(sock, data, read_size=read_size)
            if not moved.stalled:
                return None
            where = "\n".join(f"    {stuck}" for stuck in descendants(pid))
        return (
            f"transfer {number}: sent {moved.sent}, received {moved.received} of {size} bytes, "
            f"then nothing for 5 s; the server's processes:\n{where}"
        )

    return until_reproduced(transfer, limit=limit, budget_s=budget_s)


def hangs_in_duplex(
    defect: str, control: str, *, size: int, read_size: int, limit: int, budget_s: float, what: str
) -> int:
    """The CONC evidence: transfers against ``defect`` until one hangs; CONTROL_TRANSFERS against
    ``control`` must all complete. Returns the script's exit status."""
    found = first_hang(defect, size, read_size, limit=limit, budget_s=budget_s)
    control_run = first_hang(control, size, read_size, limit=CONTROL_TRANSFERS, budget_s=budget_s)
    print(f"{defect}:\n  {found}")
    print(f"{control} (control):\n  {control_run}")
    return verdict(
        found.hit is not None and control_run.hit is None and control_run.made == CONTROL_TRANSFERS, what
    )


def stalled_clients(command: str, clients: int, exit_wait_s: float) -> tuple[int, list[Stuck]]:
    """Clients that push until stalled, read back, and close; return (how many got their echo
    back, the server's processes still there ``exit_wait_s`` after the last one closed)."""
    echoed = 0
    with running(command) as (pid, port):
        for seed in range(clients):
            data = payload(16 * MiB, seed)
            with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as sock:
                pushed = push_until_stalled(sock, data)
                echoed += not duplex(sock, data[:pushed], already_sent=pushed, stall_s=2.0).stalled
        deadline = time.monotonic() + exit_wait_s
        while (left := descendants(pid)) and time.monotonic() < deadline:
            time.sleep(0.1)  # polls for the children to exit, bounded by exit_wait_s
        return echoed, left


def leaves_processes(
    defect: str,
    control: str,
    *,
    limit: int,
    budget_s: float,
    what: str,
    clients: int = STALLED_CLIENTS,
    exit_wait_s: float = EXIT_WAIT_S,
) -> int:
    """The LEAK evidence: rounds of ``clients`` stalled clients against ``defect`` until one
    leaves processes behind; one round against ``control`` must echo everything and leave none.
    Returns the script's exit status."""

    def a_round(number: int) -> str | None:
        echoed, left = stalled_clients(defect, clients, exit_wait_s)
        if not left:
            return None
        stuck = "".join(f"\n    {process}" for process in left)
        return f"round {number}: {echoed} of {clients} echoed; {len(left)} processes outlived them:{stuck}"

    found = until_reproduced(a_round, limit=limit, budget_s=budget_s)
    control_echoed, control_left = stalled_clients(control, clients, exit_wait_s)
    print(f"{defect}:\n  {found}")
    print(f"{control} (control):\n  {control_echoed} of {clients} echoed after reading again")
    print(f"  {len(control_left)} processes left {exit_wait_s} s after every client closed")
    return verdict(found.hit is not None and not control_left and control_echoed == clients, what)


@dataclass(frozen=True)
class Stuck:
    pid: int
    name: str
    wchan: str  # the kernel function it sleeps in, e.g. anon_pipe_write
    blocked_in: str  # the system call it sleeps in, when it is a read or a write

    def __str__(self) -> str:
        where = f"pid {self.pid} ({self.name}) sleeps in {self.wchan}"
        return f"{where}: {self.blocked_in}" if self.blocked_in else where


def descendants(pid: int) -> list[Stuck]:
    """The processes below ``pid``, with where each one sleeps."""
    found: list[Stuck] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        for child in _children(parent):
            found.append(_describe(child))
            pending.append(child)
    return found


def _children(pid: int) -> list[int]:
    """The children of ``pid``; none once it has exited (a child may exit while we look)."""
    children: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return children
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as listing:
                children += [int(child) for child in listing.read().split()]
        except FileNotFoundError:
            continue
    return children


SYSCALLS = {"0": "read", "1": "write"}  # x86-64 numbers


def _describe(pid: int) -> Stuck:
    def read(name: str) -> str:
        try:
            with open(f"/proc/{pid}/{name}") as source:
                return source.read().strip()
        except OSError:
            return "?"

    number, *arguments = read("syscall").split() or ["?"]
    blocked_in = ""
    if number in SYSCALLS and len(arguments) >= 3:
        fd, count = int(arguments[0], 16), int(arguments[2], 16)
        blocked_in = f"{SYSCALLS[number]}(fd {fd} = {_fd_target(pid, fd)}, {count} bytes)"
        if (also := _other_fds(pid, fd)) is not None:
            blocked_in += f"; the same process holds {also}"
    return Stuck(pid, read("comm"), read("wchan"), blocked_in)


def _fd_target(pid: int, fd: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/fd/{fd}")
    except OSError:
        return "?"


def _other_fds(pid: int, fd: int) -> str | None:
    """Other descriptors of ``pid`` open on the same pipe as ``fd`` (e.g. its read end)."""
    target = _fd_target(pid, fd)
    if not target.startswith("pipe:"):
        return None
    try:
        descriptors = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:  # it exited while we looked
        return None
    others = [
        int(other) for other in descriptors if int(other) != fd and _fd_target(pid, int(other)) == target
    ]
    return f"fd {', '.join(map(str, others))} on that pipe too" if others else None
