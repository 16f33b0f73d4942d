"""CONC: many clients at once, each served as if it were alone.

An echo server is shared: its clients connect, talk and leave independently. The bugs this
family catches are the ones a single-client test never sees: bytes of one connection echoed
to another (a buffer shared between connections), a server that serves one client at a time
until its EOF (an iterative accept-read-write loop), an accept loop that blocks on a read
from a client that has not spoken yet, and head-of-line blocking, where one client that stops
reading freezes a server that writes with blocking calls from a single loop.
"""

from __future__ import annotations

import random
import time
from contextlib import ExitStack

from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.harness.duplex import Outcome, connect, connect_within, exchange
from conformance.harness.payloads import assert_same_stream, seeded_payload
from conformance.harness.pressure import exchange_crowd, push_until_stalled, raise_fd_limit, read_back
from conformance.harness.scenarios import NO_SHRINK, scenario
from conformance.harness.targets import Target

MiB = 1 << 20
CROWD = 500
CROWD_MAX_PAYLOAD = 8192
SILENT_CLIENTS = 3
STALLED_PUSH = 48 * MiB
FAST_ECHO_S = 2.0  # a 1 KiB echo on loopback takes about a millisecond; 2 s means "blocked"
FULL_DUPLEX = 64 * MiB


def crowd_payloads(seed: int, count: int) -> list[bytes]:
    """One payload per client, each of its own size (1 byte to 8 KiB) and content."""
    rng = random.Random(seed)
    return [rng.randbytes(rng.randint(1, CROWD_MAX_PAYLOAD)) for _ in range(count)]


def assert_each_echoed(payloads: list[bytes], outcomes: list[Outcome], what: str, data: str = "") -> None:
    """Every client got exactly its own bytes back, then EOF; the report counts those that did not."""
    failed = [
        index
        for index, (payload, outcome) in enumerate(zip(payloads, outcomes, strict=True))
        if outcome.received != payload or not outcome.eof
    ]
    if not failed:
        return
    # Show a client that received bytes it never sent (cross-talk) before one that got too few.
    first = min(failed, key=lambda index: (payloads[index].startswith(outcomes[index].received), index))
    outcome = outcomes[first]
    client = (
        f"client {first} of {len(payloads)} {what} ({len(failed)} clients failed; "
        f"this one saw eof={outcome.eof}, reset={outcome.reset})"
    )
    assert_same_stream(payloads[first], outcome.received, what=client, data=data)
    raise AssertionError(f"{client}: the server did not close its side after the client's half-close")


@scenario("CONC-001", "5 interleaved clients, lock-step small chunks: no cross-talk, no waiting for EOF")
@settings(max_examples=10)
@given(
    payloads=st.lists(st.binary(min_size=1, max_size=2048), min_size=5, max_size=5, unique=True),
    chunk_size=st.integers(min_value=1, max_value=512),
)
def test_interleaved_clients(target: Target, payloads: list[bytes], chunk_size: int) -> None:
    """The server MUST serve 5 connections at once, echoing each one's bytes to it alone.

    The clients take turns writing one chunk each and wait for its echo before the next, and
    none half-closes before all have their echo: a server that serves one client until its
    EOF cannot complete this, and one that mixes up connections fails the comparison.
    """
    outcomes = exchange_crowd(
        target.address, payloads, chunk_size=chunk_size, window=chunk_size, timeout=60.0
    )
    assert_each_echoed(payloads, outcomes, f"interleaved in chunks of {chunk_size} bytes")


@scenario("CONC-002", f"{CROWD} simultaneous clients, all connected before any finishes", "SHOULD")
@settings(max_examples=2, phases=NO_SHRINK)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_hundreds_of_simultaneous_clients(target: Target, seed: int) -> None:
    """The server SHOULD serve 500 clients connected at the same time, each getting its own bytes back.

    A SHOULD, not a MUST: a server may cap its connections on purpose (ncat's default
    --max-conns is 100); CONC-001 is the MUST that catches one-client-at-a-time servers.
    """
    raise_fd_limit(CROWD + 256)
    payloads = crowd_payloads(seed, CROWD)
    outcomes = exchange_crowd(target.address, payloads, timeout=60.0)
    assert_each_echoed(
        payloads, outcomes, "connected at once", data=f"{CROWD} random payloads of 1 B-8 KiB from seed {seed}"
    )


@scenario("CONC-003", "clients that connect and send nothing do not block the others")
def test_silent_clients_do_not_block_accept(target: Target) -> None:
    """The server MUST go on accepting and serving while connected clients stay silent.

    An accept loop that reads from each new connection before accepting the next never
    reaches the client that speaks.
    """
    with ExitStack() as stack:
        silent = [connect_within(stack, target.address, timeout=10.0) for _ in range(SILENT_CLIENTS)]
        payload = seeded_payload(1024, seed=3)
        outcome = exchange(target.address, payload, half_close=False, timeout=10.0)
        assert_same_stream(payload, outcome.received, what=f"a client after {SILENT_CLIENTS} silent ones")
        for index, sock in enumerate(silent):
            late = f"silent client {index} speaking at last".encode()
            echo = exchange(target.address, late, half_close=False, sock=sock, timeout=10.0)
            assert_same_stream(late, echo.received, what=f"silent client {index}, after the others")


@scenario("CONC-004", "a client that stopped reading does not delay another client's echo")
def test_stalled_client_does_not_delay_others(target: Target) -> None:
    """The server MUST keep serving others promptly while one client does not read its echo.

    That client's echo cannot be written, so a server that writes with blocking calls from
    one loop for all its connections freezes: every other client waits behind it.
    """
    unread = seeded_payload(STALLED_PUSH, seed=4)
    with connect(target.address, timeout=10.0) as stalled:
        push = push_until_stalled(stalled, unread)
        payload = seeded_payload(1024, seed=5)
        started = time.monotonic()
        outcome = exchange(target.address, payload, half_close=False, timeout=10.0)
        elapsed = time.monotonic() - started
        what = f"another client while one has {push.sent} bytes unread"
        assert_same_stream(payload, outcome.received, what=what)
        assert elapsed < FAST_ECHO_S, (
            f"{what}: a 1 KiB echo took {elapsed:.2f} s (limit {FAST_ECHO_S} s); "
            f"the stalled client had pushed {push.sent} bytes (stalled={push.stalled})"
        )
        read_back(stalled, unread, push, what="the stalled client")


@scenario("CONC-005", "64 MiB full duplex on one connection: no deadlock")
def test_full_duplex_without_deadlock(target: Target) -> None:
    """The server MUST read and write one connection at the same time, however much is in flight.

    A server that reads everything before writing (or writes everything before reading)
    deadlocks against a client that does the same once the socket buffers are full.
    """
    payload = seeded_payload(FULL_DUPLEX, seed=64)
    outcome = exchange(target.address, payload, chunk_sizes=[MiB], half_close=False, timeout=60.0)
    assert_same_stream(
        payload, outcome.received, what="one 64 MiB connection", data="64 MiB of random bytes from seed 64"
    )
