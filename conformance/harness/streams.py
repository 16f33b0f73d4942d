"""Compare what was sent with what came back, and explain a difference.

A failure report says what was sent and what came back: both lengths, the first differing
offset, a hexdump window around it, which connection, and how to replay it.
"""

from __future__ import annotations

import random

WINDOW = 32  # bytes of context shown on each side of the first difference


def seeded_payload(size: int, seed: int) -> bytes:
    """Large payloads are drawn as (size, seed), never as huge Hypothesis binaries: the pair is
    all a failure report needs to replay them."""
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


def describe_mismatch(expected: bytes, actual: bytes, *, what: str = "", replay: str = "") -> str:
    offset = first_difference(expected, actual)
    if offset is None:
        return ""
    start, end = max(0, offset - WINDOW), offset + WINDOW
    parts = [
        f"echo mismatch{f' on {what}' if what else ''}: sent {len(expected)} bytes, "
        f"received {len(actual)} bytes, first difference at offset {offset}",
        "  sent:",
        hexdump(expected, start, min(end, len(expected)), offset),
        "  received:",
        hexdump(actual, start, min(end, len(actual)), offset),
    ]
    if replay:
        parts.append(f"  replay: {replay}")
    return "\n".join(parts)


def assert_same_stream(expected: bytes, actual: bytes, *, what: str = "", replay: str = "") -> None:
    """Fail with a readable report unless the two byte streams are identical."""
    if expected != actual:
        raise AssertionError(describe_mismatch(expected, actual, what=what, replay=replay))
