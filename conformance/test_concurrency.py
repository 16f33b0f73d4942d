"""CONC: many clients at once, each served as if it were alone.

An echo server is shared: its clients connect, talk and leave independently. The bugs this
family catches are the ones a single-client test never sees: bytes of one connection echoed
to another (a buffer shared between connections), a server that serves one client at a time
until its EOF (an iterative accept-read-write loop), an accept loop that blocks on a read
from a client that has not spoken yet, and head-of-line blocking, where one client that stops
reading freezes a server that writes with blocking calls from a single loop. CONC-006 keeps
the server busy instead: clients streaming at full speed must not starve a newcomer or a quiet
client (a loop that serves ready data before it accepts, or drains one connection before it
looks at the others).
"""

from __future__ import annotations

import multiprocessing
import random
import time
from contextlib import ExitStack
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event

from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.harness.duplex import Outcome, connect, connect_within, exchange
from conformance.harness.payloads import assert_same_stream, describe_mismatch, seeded_payload
from conformance.harness.pressure import exchange_crowd, push_until_stalled, raise_fd_limit, read_back
from conformance.harness.scenarios import NO_SHRINK, scenario
from conformance.harness.servers import Address
from conformance.harness.targets import Target
from conformance.harness.tls import ClientTLS, Stream

MiB = 1 << 20
CROWD = 500
CROWD_MAX_PAYLOAD = 8192
SILENT_CLIENTS = 3
STALLED_PUSH = 48 * MiB
FAST_ECHO_S = 2.0  # a 1 KiB echo on loopback takes about a millisecond; 2 s means "blocked"
FULL_DUPLEX = 64 * MiB
STREAMERS = 3
STREAM_SIZE = 32 * MiB  # per streamer, full duplex: a second or more of full-speed load
PROMPT_S = 1.0  # the most a newcomer's or a quiet client's 64-byte echo may take under that load
MIN_PROBES = 3  # probes that must run while every streamer is still streaming
MAX_PROBES = 50
PROBE_DEADLINE_S = 120.0
CHILD_START_S = 30.0  # a spawned Python process imports the harness: about a second, more when loaded
STREAM_TIMEOUT_S = 150.0


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


def timed_echo(address: Address, payload: bytes, sock: Stream | None = None) -> float:
    """A ``payload`` round trip (a new connection unless ``sock``); its seconds, echo checked."""
    started = time.monotonic()
    outcome = exchange(address, payload, half_close=False, sock=sock, timeout=10.0)
    elapsed = time.monotonic() - started
    what = "a new client under load" if sock is None else "the quiet client under load"
    assert_same_stream(payload, outcome.received, what=what)
    return elapsed


def stream_in_child(  # noqa: PLR0917 (a child entry point: plain values)
    host: str, port: int, cafile: str | None, tls: bool, seed: int, started: Event, results: Queue[str]
) -> None:
    """One full-duplex stream of STREAM_SIZE bytes, run in a process of its own so that the
    probing process measures the server, not its own threads' contention; puts the mismatch,
    or ""."""
    address = Address(host, port, ClientTLS.trusting(cafile) if tls else None)
    payload = seeded_payload(STREAM_SIZE, seed=seed)
    started.set()
    try:
        outcome = exchange(address, payload, timeout=120.0)
    except (AssertionError, OSError) as exc:  # a stall or a reset, said in the parent's report
        results.put(f"streaming client (seed {seed}): {exc}")
        return
    results.put(describe_mismatch(payload, outcome.received, what=f"streaming client (seed {seed})"))


class Streams:
    """STREAMERS child processes, each streaming full duplex to the server."""

    def __init__(self, address: Address) -> None:
        spawn = multiprocessing.get_context("spawn")
        self.results: Queue[str] = spawn.Queue()
        self.started = [spawn.Event() for _ in range(STREAMERS)]
        cafile = address.tls.cafile if address.tls is not None else None
        self.processes = [
            spawn.Process(
                target=stream_in_child,
                args=(
                    address.host,
                    address.port,
                    cafile,
                    address.tls is not None,
                    60 + index,
                    started,
                    self.results,
                ),
                daemon=True,
            )
            for index, started in enumerate(self.started)
        ]
        for process in self.processes:
            process.start()

    def wait_started(self) -> None:
        for index, started in enumerate(self.started):
            assert started.wait(CHILD_START_S), (
                f"streaming client {index} did not start within {CHILD_START_S} s"
            )

    def running(self) -> bool:
        return all(process.is_alive() for process in self.processes)

    def mismatches(self) -> list[str]:
        """Each stream's mismatch (or ""), once all have ended."""
        found = [self.results.get(timeout=STREAM_TIMEOUT_S) for _ in self.processes]
        for process in self.processes:
            process.join(timeout=STREAM_TIMEOUT_S)
        return found

    def stop(self) -> None:
        for process in self.processes:
            if process.is_alive():
                process.kill()
                process.join(timeout=STREAM_TIMEOUT_S)


def probe_while_streaming(address: Address, quiet: Stream, streams: Streams) -> list[tuple[float, float]]:
    """(new client's, quiet client's) echo seconds, probed again and again while the streams
    run; a probe counts when every stream was still running as it began."""
    probes: list[tuple[float, float]] = []
    deadline = time.monotonic() + PROBE_DEADLINE_S
    while len(probes) < MAX_PROBES and time.monotonic() < deadline and streams.running():
        payload = random.Random(len(probes)).randbytes(64)
        probes.append((timed_echo(address, payload), timed_echo(address, payload, sock=quiet)))
    return probes


@scenario(
    "CONC-006", f"{STREAMERS} clients streaming at full speed: a new and a quiet client are echoed in 1 s"
)
def test_busy_clients_do_not_starve_others(target: Target) -> None:
    """The server MUST stay responsive to everyone while some clients keep it fully busy.

    Three clients (each in a process of its own) stream 32 MiB each, full duplex, as fast as
    the server echoes. Meanwhile a new client is accepted and echoed, and a small message on an
    already open, quiet connection comes back, each within 1 s, probe after probe. A loop that
    serves ready connections before it accepts, or stays with one busy connection until it
    pauses, starves them.
    """
    address = target.address
    with connect(address, timeout=10.0, nodelay=True) as quiet:
        timed_echo(address, b"quiet client, before the load", sock=quiet)
        streams = Streams(address)
        try:
            streams.wait_started()
            probes = probe_while_streaming(address, quiet, streams)
            mismatches = streams.mismatches()
        finally:
            streams.stop()
    assert not any(mismatches), next(filter(None, mismatches))
    assert len(probes) >= MIN_PROBES, (
        f"only {len(probes)} probes completed while the {STREAMERS} streams ran "
        f"(at least {MIN_PROBES} needed): the streams ended too soon to judge"
    )
    slowest_newcomer = max(newcomer for newcomer, _ in probes)
    slowest_quiet = max(quiet_echo for _, quiet_echo in probes)
    starved = (
        f"under the load of {STREAMERS} full-speed streams, over {len(probes)} probes: the slowest echo to a "
        f"new client took {slowest_newcomer:.2f} s, to the quiet client {slowest_quiet:.2f} s "
        f"(limit {PROMPT_S} s): the busy connections starve the others"
    )
    assert slowest_newcomer < PROMPT_S, f"{starved} (ready data served before accept()?)"
    assert slowest_quiet < PROMPT_S, f"{starved} (one connection drained before the next?)"
