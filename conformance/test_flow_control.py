"""FLOW: a client that does not read is held back by TCP flow control, not buffered without bound.

An echo server cannot echo faster than its client reads. When the client stops reading, a
correct server stops reading too: its receive buffer fills, TCP's window closes and the
client's sends stall, with a few MiB in the socket buffers and little or nothing in the
server's memory. The bug this family catches is unbounded buffering -- a server that keeps
reading and queues the echo in memory (an event loop that ignores its transport's write
buffer, a ``write()`` whose return value is ignored): one client that never reads can then
take all of its memory. It also checks that the held-back data is not lost (every byte
arrives once the client reads) and that one held-back client does not hold back the others.
"""

from __future__ import annotations

from conformance.harness.duplex import connect, exchange
from conformance.harness.payloads import assert_same_stream, seeded_payload
from conformance.harness.pressure import Push, push_until_stalled, read_back, resume
from conformance.harness.resources import usage
from conformance.harness.scenarios import scenario
from conformance.harness.targets import Target

MiB = 1 << 20
# Far more than loopback socket buffers hold: the built-in and third-party servers stall the
# client after 5-10 MiB, where net.ipv4.tcp_wmem / tcp_rmem let a socket buffer grow to 4 and
# 32 MiB; so a client that gets all of it out without reading was buffered by the server.
UNREAD_TOTAL = 48 * MiB
RSS_GROWTH_LIMIT = 64 * MiB
# FLOW-002 offers twice the limit, so that a server which buffers all it is sent must exceed it.
OFFERED_TO_MEMORY = 2 * RSS_GROWTH_LIMIT
BYSTANDER_SIZE = 4 * MiB
SEED = 48


def unread_payload() -> bytes:
    return seeded_payload(UNREAD_TOTAL, SEED)


def assert_plateaued(push: Push) -> None:
    assert push.sent < UNREAD_TOTAL, (
        f"a client that never read got all {UNREAD_TOTAL} bytes out in {push.elapsed_s:.1f} s: "
        "the server kept reading what it could not echo, so it buffers without bound"
    )
    assert push.stalled, (
        f"a client that never read was still getting bytes out after {push.elapsed_s:.1f} s "
        f"({push.sent} of {UNREAD_TOTAL} bytes): its sends never plateaued"
    )


@scenario("FLOW-001", "a client that does not read is stopped well short of 48 MiB, then gets every byte")
def test_non_reading_client_is_held_back_then_drained(target: Target) -> None:
    """The server MUST stop reading from a client that does not read its echo, and lose nothing.

    The client's non-blocking sends must plateau below the 48 MiB it tries to send; once it
    reads again, it must receive every byte it sent, in order.
    """
    payload = unread_payload()
    with connect(target.address, timeout=30.0) as sock:
        push = push_until_stalled(sock, payload)
        assert_plateaued(push)
        outcome = resume(sock, payload, push.sent)
    assert_same_stream(
        payload,
        outcome.received,
        what=f"the held-back client, which had pushed {push.sent} bytes before reading",
        data=f"{UNREAD_TOTAL} random bytes from seed {SEED}",
    )


@scenario(
    "FLOW-002", f"server memory grows by less than {RSS_GROWTH_LIMIT // MiB} MiB while a client does not read"
)
def test_memory_stays_bounded_while_client_does_not_read(target: Target) -> None:
    """The server MUST NOT queue a non-reading client's echo without bound in its own memory.

    Resident memory of the server's process tree (forked children included) may grow by less
    than 64 MiB while a client pushes all it can of 128 MiB without reading.
    """
    pid = target.require_process().pid
    # A repeated random MiB: cheap to build, and the server cannot tell the difference.
    payload = seeded_payload(MiB, SEED) * (OFFERED_TO_MEMORY // MiB)
    before = usage(pid)
    with connect(target.address, timeout=30.0) as sock:
        push = push_until_stalled(sock, payload)
        during = usage(pid)
        growth = during.rss_bytes - before.rss_bytes
        assert growth < RSS_GROWTH_LIMIT, (
            f"the server's RSS grew by {growth / MiB:.1f} MiB ({before.rss_bytes} -> {during.rss_bytes} "
            f"bytes, {during.processes} processes) while a client pushed {push.sent} of {len(payload)} "
            f"bytes without reading (stalled={push.stalled}); limit {RSS_GROWTH_LIMIT // MiB} MiB"
        )
        read_back(sock, payload, push, what="the client that did not read")


@scenario("FLOW-003", "while one client is held back, another is served in full")
def test_other_clients_are_served_while_one_is_held_back(target: Target) -> None:
    """The server MUST hold back only the client that does not read, and go on serving others.

    A server that pauses reading globally (one shared buffer, one flag) starves everyone when
    a single client stops reading. Afterwards the held-back client still gets all its bytes.
    """
    held_back = unread_payload()
    bystander = seeded_payload(BYSTANDER_SIZE, SEED + 1)
    with connect(target.address, timeout=30.0) as sock:
        push = push_until_stalled(sock, held_back)
        assert_plateaued(push)
        served = exchange(target.address, bystander, half_close=False, timeout=30.0)
        assert_same_stream(
            bystander, served.received, what=f"a 4 MiB client while another has {push.sent} bytes unread"
        )
        read_back(sock, held_back, push, what="the held-back client, after the other was served")
