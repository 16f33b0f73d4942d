"""SCALE: more connections than the classic fixed limits, and connects that arrive in bursts.

Two limits of 1024 shape naive servers: ``select()`` can watch only descriptors below
FD_SETSIZE (1024), and a process starts with a soft RLIMIT_NOFILE of 1024 on most systems. A
server that uses select(), or that never raises its own soft limit, stops at about a thousand
clients (EMFILE, or "filedescriptor out of range in select()"). SCALE-001 holds 1100
connections open at once. SCALE-002 sends connects in bursts: dozens arrive together and wait
in the listen backlog. A small backlog only costs SYN retransmits (seconds); a server that
accepts one connection per wake-up of an edge-triggered poll leaves the rest of a burst in
its backlog until another client arrives, and after the last burst none does.
"""

from __future__ import annotations

import random
import selectors
import socket
import time
from contextlib import ExitStack

from conformance.harness.pressure import exchange_connected, exchange_crowd, raise_fd_limit
from conformance.harness.scenarios import scenario
from conformance.harness.servers import Address
from conformance.harness.targets import Target
from conformance.harness.tls import Stream, connect_tls
from conformance.test_concurrency import assert_each_echoed

MANY = 1100  # past FD_SETSIZE and the default soft RLIMIT_NOFILE, both 1024
MANY_PAYLOAD = 256
FD_HEADROOM = 256  # descriptors this process needs besides the crowd
BURST = 64
BURSTS = 5
# Generous: a SYN dropped from a full backlog is retransmitted after 1 s, then 3 s and 7 s.
BURST_DEADLINE_S = 20.0


def payloads_for(seed: int, count: int, size: int) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(size) for _ in range(count)]


@scenario("SCALE-001", f"{MANY} connections open at once, past FD_SETSIZE and the default RLIMIT_NOFILE")
def test_more_connections_than_fd_setsize(target: Target) -> None:
    """The server MUST serve 1100 simultaneous connections, each echoing its own bytes.

    1100 is past select()'s FD_SETSIZE (1024) and a default soft RLIMIT_NOFILE (1024): a
    server built on select(), or one that does not raise its own soft limit, cannot hold them.
    """
    available = raise_fd_limit(MANY + FD_HEADROOM)
    assert available >= MANY + FD_HEADROOM, (
        f"this machine allows the test only {available} descriptors (hard RLIMIT_NOFILE); "
        f"it needs {MANY + FD_HEADROOM}"
    )
    payloads = payloads_for(11, MANY, MANY_PAYLOAD)
    outcomes = exchange_crowd(target.address, payloads, timeout=120.0, stall_s=10.0)
    assert_each_echoed(
        payloads,
        outcomes,
        f"of {MANY} open at once",
        data=f"{MANY} random payloads of {MANY_PAYLOAD} B, seed 11",
    )


def connect_burst(address: Address, count: int, deadline: float) -> list[socket.socket]:
    """``count`` non-blocking connects started back to back; returns once all have completed."""
    sockets = []
    with selectors.DefaultSelector() as selector:
        for _ in range(count):
            sock = socket.socket(address.family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.connect_ex((address.host, address.port))
            selector.register(sock, selectors.EVENT_WRITE, sock)
        waiting = set(sockets)
        while waiting and time.monotonic() < deadline:
            for key, _ in selector.select(deadline - time.monotonic()):
                connected: socket.socket = key.data
                error = connected.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                assert error == 0, f"connect {len(sockets) - len(waiting)} of the burst failed: errno {error}"
                selector.unregister(connected)
                waiting.discard(connected)
    assert not waiting, f"{len(waiting)} of {count} connects of a burst did not complete by the deadline"
    for sock in sockets:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
    return sockets


def secured(address: Address, sockets: list[socket.socket], deadline: float) -> list[Stream]:
    """Over TLS: each connection's handshake, in order; a connection the server never
    accepted is named."""
    if address.tls is None:
        return list(sockets)
    streams: list[Stream] = []
    for index, sock in enumerate(sockets):
        try:
            streams.append(
                connect_tls(sock, address.tls, address.host, deadline - time.monotonic(), str(address))
            )
        except (TimeoutError, OSError) as exc:
            raise AssertionError(
                f"client {index} of a burst of {len(sockets)}: no TLS handshake by the deadline ({exc}): "
                "left in the listen backlog until another client arrives (one accept() per wake-up)?"
            ) from exc
    return streams


@scenario("SCALE-002", f"{BURSTS} bursts of {BURST} connects at once: every client served")
def test_connect_bursts(target: Target) -> None:
    """The server MUST accept every connection of a burst, not only as many as it was woken for.

    Each burst starts 64 non-blocking connects back to back, then every client echoes a small
    message and half-closes, within a generous deadline (a full backlog costs SYN retransmits
    of seconds, never more). A server that accepts one connection per edge-triggered wake-up
    leaves the rest in its backlog until another client connects; after the last one, never.
    """
    raise_fd_limit(BURST + FD_HEADROOM)
    for burst in range(BURSTS):
        deadline = time.monotonic() + BURST_DEADLINE_S
        with ExitStack() as stack:
            sockets = connect_burst(target.address, BURST, deadline)
            for sock in sockets:
                stack.callback(sock.close)
            streams = secured(target.address, sockets, deadline)
            payloads = payloads_for(burst, BURST, 64)
            outcomes = exchange_connected(
                streams,
                payloads,
                timeout=round(max(1.0, deadline - time.monotonic()), 1),
                stall_s=BURST_DEADLINE_S,
            )
        assert_each_echoed(payloads, outcomes, f"of burst {burst + 1} of {BURSTS} ({BURST} connects at once)")
