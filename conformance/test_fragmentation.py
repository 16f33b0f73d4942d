"""FRAG: the echo does not depend on how the stream is cut into segments.

TCP delivers a byte stream; where one recv() ends and the next begins is an accident of timing,
buffer sizes and the network. Servers that take one recv() as one message (echo it, then close),
that wait until a read buffer is full before echoing, or that only work when a write arrives
whole, pass every test whose payload arrives in one piece and break as soon as a real network
splits it. These scenarios cut the client's writes and reads every which way, pause between the
pieces, and finally run the stream through the suite's fragmenting proxy, which re-slices both
directions with seeded random sizes and delays.

The client never half-closes here: it reads until the whole echo is back, then closes. A server
that mishandles the half-close fails the HALF family, not this one.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.harness.duplex import connect, exchange
from conformance.harness.payloads import assert_same_stream, seeded_payload
from conformance.harness.proxy import FragmentingProxy
from conformance.harness.scenarios import NO_SHRINK, scenario
from conformance.harness.servers import Address
from conformance.harness.targets import Target
from conformance.harness.tls import Stream

KiB = 1 << 10
PRIME_CHUNK = 997
MAX_PAUSE_S = 0.003
PAUSE_BUDGET_S = 0.3  # total pausing per example, however many chunks there are
FRAGMENT_ECHO_TIMEOUT_S = 5.0
ECHO_TIMEOUT_S = 10.0  # for at most 256 KiB over loopback; seconds are already generous

chunk_size = st.one_of(st.just(1), st.just(PRIME_CHUNK), st.integers(min_value=1, max_value=8 * KiB))
read_size = st.one_of(st.just(1), st.just(PRIME_CHUNK), st.integers(min_value=1, max_value=64 * KiB))


@dataclass(frozen=True)
class CutPayload:
    """A payload, seeded_payload(size, seed), and how the client cuts it."""

    size: int
    seed: int
    chunk_sizes: list[int]
    read_sizes: list[int]
    pauses_s: list[float]
    nodelay: bool

    def describe(self) -> str:
        return (
            f"{self.size} random bytes (seed {self.seed}), "
            f"chunk_sizes={self.chunk_sizes}, read_sizes={self.read_sizes}, "
            f"pauses_s={self.pauses_s}, nodelay={self.nodelay}"
        )


def bounded_pauses(pauses: list[float], chunk_sizes: list[int], payload_size: int) -> list[float]:
    """Scale the pauses down so that their total over the whole payload stays in the budget.

    The client cycles through the chunk sizes and the pauses together, one pause per chunk.
    """
    total, offset = 0.0, 0
    sizes, waits = itertools.cycle(chunk_sizes), itertools.cycle(pauses or [0.0])
    while offset < payload_size:
        offset += next(sizes)
        total += next(waits)
    scale = min(1.0, PAUSE_BUDGET_S / total) if total else 1.0
    return [pause * scale for pause in pauses]


@st.composite
def cut_payloads(draw: st.DrawFn) -> CutPayload:
    size, seed = draw(st.integers(min_value=1, max_value=16 * KiB)), draw(st.integers(0, 2**32 - 1))
    chunk_sizes = draw(st.lists(chunk_size, min_size=1, max_size=8))
    pauses = draw(st.lists(st.floats(min_value=0.0, max_value=MAX_PAUSE_S), max_size=4))
    return CutPayload(
        size=size,
        seed=seed,
        chunk_sizes=chunk_sizes,
        read_sizes=draw(st.lists(read_size, min_size=1, max_size=8)),
        pauses_s=bounded_pauses(pauses, chunk_sizes, size),
        nodelay=draw(st.booleans()),
    )


def assert_echoed(target: Target, payload: bytes, how: str, via: Address | None = None, **cuts: Any) -> None:
    """Send ``payload`` cut as ``cuts`` say (``exchange`` keywords), and read until all is back."""
    outcome = exchange(via or target.address, payload, half_close=False, timeout=ECHO_TIMEOUT_S, **cuts)
    what = f"one connection to {target.name}{' through the proxy' if via else ''}"
    assert_same_stream(payload, outcome.received, what=what, data=how)
    assert not outcome.reset, f"the connection was reset ({how})"


@scenario("FRAG-001", "writes cut in Hypothesis-chosen sizes, with pauses, read in arbitrary sizes")
@settings(max_examples=15, phases=NO_SHRINK)
@given(cut=cut_payloads())
def test_hypothesis_chunking(target: Target, cut: CutPayload) -> None:
    """The server MUST echo the stream byte-exact however the client's writes and reads are cut."""
    assert_echoed(
        target,
        seeded_payload(cut.size, cut.seed),
        cut.describe(),
        chunk_sizes=cut.chunk_sizes,
        read_sizes=cut.read_sizes,
        pauses_s=cut.pauses_s,
        nodelay=cut.nodelay,
    )


@scenario("FRAG-002", "256 KiB written whole, read back in 1-, 7- and 997-byte recv()s")
def test_whole_write_small_reads(target: Target) -> None:
    """The server MUST echo a payload offered in one send(), larger than any one recv() can return."""
    payload = seeded_payload(256 * KiB, seed=2)
    how = "256 KiB random bytes (seed 2) offered to send() whole, read 1, 7, 997 bytes at a time"
    assert_echoed(target, payload, how, read_sizes=[1, 7, PRIME_CHUNK])


@scenario("FRAG-003", "byte at a time: 4 KiB sent as 4096 one-byte segments (TCP_NODELAY)")
def test_byte_at_a_time(target: Target) -> None:
    """The server MUST echo a stream that arrives one byte per segment, no byte lost or repeated."""
    payload = seeded_payload(4 * KiB, seed=3)
    how = "4 KiB random bytes (seed 3), one byte per send() with TCP_NODELAY"
    assert_echoed(target, payload, how, chunk_sizes=[1], read_sizes=[1, 2, 3], nodelay=True)


@scenario("FRAG-004", "a message, a pause, then trailing data on the same connection")
@settings(max_examples=5, phases=NO_SHRINK)
@given(
    message_size=st.integers(min_value=1, max_value=4 * KiB),
    trailer_size=st.integers(min_value=1, max_value=4 * KiB),
    seed=st.integers(0, 2**32 - 1),
)
def test_trailing_data_after_a_pause(target: Target, message_size: int, trailer_size: int, seed: int) -> None:
    """The server MUST echo bytes that arrive after a pause, not just the first message it reads."""
    pause_s = 0.05  # long enough that the server has read, and echoed, the message by itself
    payload = seeded_payload(message_size + trailer_size, seed)
    how = (
        f"{message_size + trailer_size} random bytes (seed {seed}) as a {message_size}-byte message, "
        f"a {pause_s} s pause, a {trailer_size}-byte trailer"
    )
    assert_echoed(
        target,
        payload,
        how,
        chunk_sizes=[message_size, trailer_size],
        pauses_s=[pause_s],
        nodelay=True,
    )


LOCKSTEP_SIZES = [1, 2, 3, 17, PRIME_CHUNK, 1500, 1]


@scenario("FRAG-005", "lockstep: each small fragment is echoed before the next is sent")
def test_fragment_echoed_without_waiting_for_more(target: Target) -> None:
    """The server MUST echo whatever has arrived without waiting for a full buffer or more data."""
    payload = seeded_payload(sum(LOCKSTEP_SIZES), seed=5)
    offsets = itertools.pairwise(itertools.accumulate(LOCKSTEP_SIZES, initial=0))
    received = bytearray()
    with connect(target.address, timeout=FRAGMENT_ECHO_TIMEOUT_S, nodelay=True) as sock:
        for index, (start, end) in enumerate(offsets):
            sock.sendall(payload[start:end])
            received += receive_exactly(sock, end - start, time.monotonic() + FRAGMENT_ECHO_TIMEOUT_S)
            assert_same_stream(
                payload[:end],
                bytes(received),
                what=(
                    f"fragment {index} of {len(LOCKSTEP_SIZES)} ({end - start} bytes), its echo awaited "
                    f"for up to {FRAGMENT_ECHO_TIMEOUT_S} s before sending more"
                ),
                data=f"fragments of {LOCKSTEP_SIZES} bytes of random bytes from seed 5, no half-close",
            )


def receive_exactly(sock: Stream, size: int, deadline: float) -> bytes:
    """Read ``size`` bytes, or whatever arrived by the deadline (the caller compares)."""
    data = bytearray()
    while len(data) < size and (remaining := deadline - time.monotonic()) > 0:
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(size - len(data))
        except TimeoutError:
            break
        if not chunk:
            break
        data += chunk
    return bytes(data)


@scenario("FRAG-006", "through the fragmenting proxy: both directions re-sliced with seeded sizes and delays")
@settings(max_examples=10, phases=NO_SHRINK)
@given(size=st.integers(min_value=0, max_value=64 * KiB), seed=st.integers(0, 2**32 - 1))
def test_through_fragmenting_proxy(target: Target, size: int, seed: int) -> None:
    """The server MUST echo the stream whatever segments the network cuts it into, in both directions."""
    payload = seeded_payload(size, seed)
    with FragmentingProxy(target.address, seed) as proxy:
        try:
            assert_echoed(target, payload, f"{size} random bytes (seed {seed})", via=proxy.address)
        except AssertionError as failure:
            raise AssertionError(f"{failure}\n  {proxy.describe()}") from None
