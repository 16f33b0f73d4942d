"""Payloads and mismatch reports: draw a payload, compare what came back with what was sent,
and explain a difference.

A failure report says what was sent and what came back: both lengths, the first differing
offset, a hexdump window around it, which connection, what the data was, and the likely cause
(the shape of the difference usually names the bug). The command line that replays the
scenario is added by the plugin.
"""

from __future__ import annotations

import random

WINDOW = 32  # bytes of context shown on each side of the first difference


def seeded_payload(size: int, seed: int) -> bytes:
    """Large payloads are drawn as (size, seed), never as huge Hypothesis binaries: the pair is
    all a failure report needs to describe them, and Hypothesis prints it with the failure."""
    return random.Random(seed).randbytes(size)


def first_difference(expected: bytes, actual: bytes) -> int | None:
    """Offset of the first byte where the streams differ (a length difference counts)."""
    for offset, (want, got) in enumerate(zip(expected, actual, strict=False)):
        if want != got:
            return offset
    return None if len(expected) == len(actual) else min(len(expected), len(actual))


def hexdump(data: bytes, start: int, end: int, mark: int) -> str:
    """``data[start:end]`` as hexdump lines; the byte at ``mark`` is bracketed."""
    lines = []
    for line_start in range(start - start % 16, end, 16):
        cells = []
        for offset in range(line_start, min(line_start + 16, end)):
            if offset < start:
                cells.append("  ")
                continue
            cell = f"{data[offset]:02x}"
            cells.append(f"[{cell}]" if offset == mark else cell)
        lines.append(f"  {line_start:08x}  {' '.join(cells)}")
    return "\n".join(lines) if lines else "  (nothing)"


# Sizes a server's read buffer often has: an echo that stops at one of them was one recv().
BUFFER_SIZES = frozenset(1 << bits for bits in range(9, 21)) | {1000, 1400, 1448, 1460, 8000, 65535}
# What one recv() returns at most from a loaded loopback socket with a common buffer: an echo cut
# short at or below it, yet not at a buffer size, is still most likely one read (the kernel
# handed over less than the buffer).
ONE_READ = 1 << 16
REPLACEMENT_CHARACTER = "\ufffd".encode()


def likely_cause(expected: bytes, actual: bytes) -> str:
    """What a difference between the two streams most likely means, as a question."""
    short = expected.startswith(actual)
    causes = (
        (not actual, "nothing came back: does the server echo at all, or close at once?"),
        (
            short and len(actual) in BUFFER_SIZES,
            f"the echo stopped at {len(actual)} bytes, a buffer size: one recv() taken as one message?",
        ),
        (
            short and len(actual) <= ONE_READ,
            f"the echo stopped after {len(actual)} of {len(expected)} bytes, at most one read's worth: "
            "one recv() taken as one message?",
        ),
        (
            short,
            f"the echo stopped after {len(actual)} of {len(expected)} bytes: the rest lost, "
            "e.g. a partial write not retried, or data dropped at the client's EOF?",
        ),
        (
            actual.startswith(expected),
            "extra bytes after the echo: another connection's, or a chunk sent twice?",
        ),
        (bool(expected) and expected in actual, "bytes before the echo: a banner or greeting?"),
        (
            REPLACEMENT_CHARACTER in actual and REPLACEMENT_CHARACTER not in expected,
            "U+FFFD in the echo: the server decodes the stream as text and re-encodes it?",
        ),
        (
            len(actual) == len(expected),
            "bytes altered in place: a buffer shared between connections, or a text conversion?",
        ),
    )
    return next(
        (cause for matches, cause in causes if matches),
        "bytes out of order or from elsewhere: a buffer shared between connections?",
    )


def describe_mismatch(expected: bytes, actual: bytes, *, what: str = "", data: str = "") -> str:
    offset = first_difference(expected, actual)
    if offset is None:
        return ""
    start, end = max(0, offset - WINDOW), offset + WINDOW
    parts = [
        f"echo mismatch{f' on {what}' if what else ''}: {likely_cause(expected, actual)}",
        f"  sent {len(expected)} bytes, received {len(actual)} bytes, first difference at offset {offset}",
        "  sent:",
        hexdump(expected, start, min(end, len(expected)), offset),
        "  received:",
        hexdump(actual, start, min(end, len(actual)), offset),
    ]
    if data:
        parts.append(f"  data: {data}")
    return "\n".join(parts)


def assert_same_stream(expected: bytes, actual: bytes, *, what: str = "", data: str = "") -> None:
    """Fail with a readable report unless the two byte streams are identical."""
    if expected != actual:
        raise AssertionError(describe_mismatch(expected, actual, what=what, data=data))
