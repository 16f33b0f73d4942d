"""The suite catches broken servers: every mutant in tests/mutants/ fails the scenario it is aimed at.

A mutant is a small echo server with exactly one realistic bug, the kind people write when they
learn sockets; its first line names the bug and the scenario expected to catch it:

    # MUTANT: echoes one recv() then closes | expect: FRAG-002
    # MUTANT: ... | expect: TIMING-002 | strict                  (a SHOULD: the run uses --strict-should)
    # MUTANT: ... | expect: LIFE-003 | capabilities: announces,graceful-exit
    # MUTANT: ... | expect: TLS-008 | transport: tls             (run as PORT CERT KEY, over TLS)
    // MUTANT: ... | expect: ABORT-002 | gap: why no scenario catches it yet
    // MUTANT: ... | expect: ABORT-002 | flaky: why the catch is not reliable

(``//`` in C; C mutants are compiled once into tests/mutants/build/.) Each mutant gets a child
run of the conformance suite through ``--server-cmd``, restricted with ``--scenario`` to the expected
scenario alone: the rest of its family proves nothing about this mutant and would only cost
time (a server that loses data makes every scenario wait out its timeout). The run must fail,
with FAIL in that scenario's cell. The child uses the Hypothesis profile ``selftest`` (``ci``,
derandomized, without shrinking: against a server that stalls, every shrink step waits out a
timeout). Capabilities are declared with ``--server-capabilities``, so the LIFE scenarios run on
the mutants that claim them. A ``transport: tls`` mutant is started with the suite's test
certificate (``PORT CERT KEY``) and judged with ``--transport tls``. A mutant marked ``gap`` is a
strict xfail: it documents a bug the suite misses, and the day a scenario catches it, the XPASS
says to remove the mark. One marked ``flaky`` is caught in some runs only: a lenient xfail, until
its scenario is made reliable.
Every family must have at least two reliably caught mutants aimed at it.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from suite_runs import MUTANTS, TLS_ARGUMENTS, run_suite, server_command

from conformance.harness.report import FAIL
from conformance.harness.scenarios import catalogue
from impls.table import TLS

pytestmark = pytest.mark.selftest

HEADER = re.compile(
    r"^(?:#|//) MUTANT: (?P<bug>.+?) \| expect: (?P<expect>[A-Z]+-\d{3})(?P<strict> \| strict)?"
    r"(?: \| capabilities: (?P<capabilities>[a-z0-9,-]+))?(?: \| transport: (?P<transport>tls))?"
    r"(?: \| (?P<caveat>gap|flaky): (?P<why>.+))?\s*$"
)
MIN_MUTANTS_PER_FAMILY = 2


@dataclass(frozen=True)
class Mutant:
    source: Path
    bug: str
    expect: str
    strict: bool
    capabilities: str
    transport: str  # "tcp", or "tls": the mutant takes PORT CERT KEY and is tested over TLS
    caveat: str  # "gap": no scenario catches it yet; "flaky": one catches it in some runs only
    why: str

    @property
    def family(self) -> str:
        return self.expect.split("-")[0]

    def options(self) -> list[str]:
        """The child run's selection and options."""
        options = ["--scenario", self.expect]
        if self.strict:
            options.append("--strict-should")
        if self.capabilities:
            options += ["--server-capabilities", self.capabilities]
        if self.transport == TLS:
            options += ["--transport", TLS]
        return options

    @property
    def arguments(self) -> str:
        """What follows the program on its --server-cmd."""
        return TLS_ARGUMENTS if self.transport == TLS else "{port}"


def parse(source: Path) -> Mutant:
    first_line = source.read_text().splitlines()[0]
    match = HEADER.match(first_line)
    if match is None:
        raise ValueError(f"{source}: first line is not '# MUTANT: <bug> | expect: <ID>...': {first_line!r}")
    return Mutant(
        source=source,
        bug=match["bug"],
        expect=match["expect"],
        strict=bool(match["strict"]),
        capabilities=match["capabilities"] or "",
        transport=match["transport"] or "tcp",
        caveat=match["caveat"] or "",
        why=match["why"] or "",
    )


def mutant_sources() -> list[Path]:
    """Every mutant's source; ``_``-prefixed modules (``_kit.py``) are helpers that hold none."""
    sources = sorted([*MUTANTS.glob("*.py"), *MUTANTS.glob("*.c")])
    return [path for path in sources if not path.name.startswith("_")]


def discover() -> list[Mutant]:
    return [parse(path) for path in mutant_sources()]


def as_param(mutant: Mutant) -> Any:
    """A gap is a strict xfail (a catch, XPASS, says to drop the mark); a flaky catch a lenient one."""
    marks = (
        [pytest.mark.xfail(strict=mutant.caveat == "gap", reason=f"{mutant.caveat}: {mutant.why}")]
        if mutant.caveat
        else []
    )
    return pytest.param(mutant, id=mutant.source.stem, marks=marks)


ALL_MUTANTS = discover()


def test_every_family_has_mutants_aimed_at_it() -> None:
    scenarios = catalogue()
    unknown = {mutant.source.name: mutant.expect for mutant in ALL_MUTANTS if mutant.expect not in scenarios}
    assert not unknown, f"mutants expect scenarios the suite does not define: {unknown}"
    aimed = Counter(mutant.family for mutant in ALL_MUTANTS if not mutant.caveat)
    families = sorted({scenario_id.split("-")[0] for scenario_id in scenarios})
    short = {family: aimed[family] for family in families if aimed[family] < MIN_MUTANTS_PER_FAMILY}
    assert not short, (
        f"families with fewer than {MIN_MUTANTS_PER_FAMILY} caught mutants aimed at them: {short}"
    )


@pytest.fixture
def mutant_command(mutant: Mutant) -> str:
    """The mutant's --server-cmd; a C mutant that does not compile is an error, not a catch."""
    return server_command(mutant.source, mutant.arguments)


# The plugin's JUnit writer is xunit2, whose schema has no per-case properties; pytest warns about
# it by design but writes them anyway, and selftest.md (tests/selftest_figures.py) reads them.
@pytest.mark.filterwarnings("ignore:record_property is incompatible with junit_family:pytest.PytestWarning")
@pytest.mark.parametrize("mutant", [as_param(mutant) for mutant in ALL_MUTANTS])
def test_suite_catches_mutant(
    mutant: Mutant, mutant_command: str, tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    record_property("expect", mutant.expect)  # for selftest.md (tests/selftest_figures.py)
    record_property("bug", mutant.bug)
    run = run_suite(mutant_command, tmp_path, *mutant.options(), profile="selftest")
    verdict = run.verdicts().get(mutant.expect, "not run")
    caught = f"{mutant.source.name} ({mutant.bug}): {mutant.expect} is {verdict}"
    assert verdict == FAIL, f"not caught: {caught}, expected FAIL\n{run.explain()}"
    assert run.returncode != 0, f"{caught}, yet the child run exited 0\n{run.explain()}"
