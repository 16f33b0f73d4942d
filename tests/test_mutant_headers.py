"""Every mutant says what it is: its first line is the header the self-test parses (the bug, the
scenario expected to catch it), and a "the bug:" comment marks the line where the bug lives, so a
reader finds it without diffing the file against a correct server.

This runs without the self-test's servers: a malformed header would otherwise surface only when
tests/test_suite_catches.py is collected under ``-m selftest``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from suite_runs import MUTANTS
from test_suite_catches import HEADER, mutant_sources

MUTANT_SOURCES = mutant_sources()  # helper modules (``_kit.py``) excluded
BUG_MARKER = "the bug:"


def test_mutants_are_found() -> None:
    assert len(MUTANT_SOURCES) >= 2, f"no mutants found in {MUTANTS}"


@pytest.mark.parametrize("source", MUTANT_SOURCES, ids=lambda path: path.name)
def test_mutant_has_header_line(source: Path) -> None:
    first_line = source.read_text().splitlines()[0]
    assert HEADER.match(first_line), (
        f"{source}: first line is not '# MUTANT: <bug> | expect: <ID>...' (see tests/test_suite_catches.py): "
        f"{first_line!r}"
    )


@pytest.mark.parametrize("source", MUTANT_SOURCES, ids=lambda path: path.name)
def test_mutant_marks_its_bug(source: Path) -> None:
    assert BUG_MARKER in source.read_text(), f"{source}: no {BUG_MARKER!r} comment marks the buggy line"
