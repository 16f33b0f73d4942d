"""ECHO: whatever bytes the client sends come back, byte for byte, in order.

RFC 862: "Once a connection is established any data received is sent back." Nothing about the
bytes matters to an echo server: not their values, not whether they decode as text, not how the
sizes fall against its buffers.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.harness.duplex import connect, exchange
from conformance.harness.payloads import assert_same_stream, seeded_payload
from conformance.harness.scenarios import NO_SHRINK, scenario
from conformance.harness.targets import Target

MiB = 1 << 20
SILENCE_S = 0.3


def roundtrip(target: Target, payload: bytes, *, data: str = "", timeout: float = 30.0) -> None:
    """Send while reading until every byte is back. No half-close: what a server does after the
    client's EOF is the HALF family's question, so a defect there is not reported here again."""
    outcome = exchange(target.address, payload, half_close=False, timeout=timeout)
    assert_same_stream(payload, outcome.received, what=f"one connection to {target.name}", data=data)
    assert not outcome.reset, "the connection was reset"


@scenario("ECHO-001", "Hypothesis binary payloads (0-64 KiB) come back byte-exact")
@given(payload=st.binary(min_size=0, max_size=64 * 1024))
def test_hypothesis_payloads(target: Target, payload: bytes) -> None:
    """The server MUST send back exactly the bytes it received, whatever they are."""
    roundtrip(target, payload)


@scenario("ECHO-002", "every byte value 0x00-0xFF survives the round trip")
def test_every_byte_value(target: Target) -> None:
    """The server MUST treat the stream as opaque bytes: no value is special (NUL, CR, LF, 0xFF)."""
    roundtrip(target, bytes(range(256)) * 64)


@scenario("ECHO-003", "invalid UTF-8 and multi-byte characters are not altered")
@pytest.mark.parametrize(
    "payload",
    [
        "Grüße, नमस्ते, 你好, 🧗‍♀️ Annapurna".encode(),
        b"\xc3\x28\xa0\xa1\xe2\x28\xa1\xf0\x28\x8c\xbc\xff\xfe\xfd",
        "é".encode()[:1] + b"\r\n\x00" + "€".encode()[:2],
    ],
    ids=["utf8-multibyte", "invalid-utf8", "split-characters"],
)
def test_text_is_not_decoded(target: Target, payload: bytes) -> None:
    """The server MUST NOT decode, normalise or re-encode text: bytes in, the same bytes out."""
    roundtrip(target, payload)


BUFFER_EDGES = [1, 1023, 1024, 1025, 4095, 4096, 4097, 65535, 65536, 65537]


@scenario("ECHO-004", "sizes on buffer edges (1, 1023-1025, 4095-4097, 65535-65537)")
@pytest.mark.parametrize("size", BUFFER_EDGES)
def test_buffer_edge_sizes(target: Target, size: int) -> None:
    """The server MUST echo messages whose sizes straddle common buffer sizes, none lost or added."""
    roundtrip(target, seeded_payload(size, seed=size), data=f"{size} random bytes from seed {size}")


@scenario("ECHO-005", "large payloads (1, 4, 16 MiB) come back whole")
@pytest.mark.parametrize("mib", [1, 4, 16])
@settings(max_examples=3, phases=NO_SHRINK)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_large_payloads(target: Target, mib: int, seed: int) -> None:
    """The server MUST echo payloads far larger than any buffer, in order, without loss."""
    payload = seeded_payload(mib * MiB, seed)
    roundtrip(target, payload, timeout=60.0, data=f"{mib} MiB of random bytes from seed {seed}")


@scenario("ECHO-006", "many messages on one connection, each echoed before the next")
@given(messages=st.lists(st.binary(min_size=1, max_size=2048), min_size=2, max_size=50))
def test_many_messages_one_connection(target: Target, messages: list[bytes]) -> None:
    """The server MUST keep echoing for the life of the connection, not just the first message."""
    with connect(target.address, timeout=10.0) as sock:
        for index, message in enumerate(messages):
            outcome = exchange(target.address, message, half_close=False, sock=sock, timeout=10.0)
            assert_same_stream(message, outcome.received, what=f"message {index} of {len(messages)}")


@scenario("ECHO-007", "no unsolicited bytes: nothing arrives before the client sends")
def test_no_unsolicited_bytes(target: Target) -> None:
    """The server MUST NOT send a banner or anything else the client did not send."""
    with connect(target.address, timeout=SILENCE_S) as sock:
        try:
            greeting = sock.recv(1024)
        except TimeoutError:
            greeting = b""
        assert greeting == b"", f"the server sent {len(greeting)} bytes unprompted: {greeting[:64]!r}"
