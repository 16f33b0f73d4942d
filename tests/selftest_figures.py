"""selftest.md: the self-test's figures, written from the JUnit files of the run that measured them.

``tox -e selftest`` runs in two steps (the child-suite runs, then the evidence scripts), each
writing a JUnit file; this script reads both and writes the page the README links, so that
"caught N / N", the false failures and the times are never typed by hand:

    python tests/selftest_figures.py reports/selftest/children.xml reports/selftest/evidence.xml

A proof that did not run (a third-party server not installed: its test skips and says why) is
counted apart from one that failed, and the page lists every case that did not pass.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "selftest.md"

PASSED, FAILED, SKIPPED, XFAILED = "passed", "failed", "skipped", "xfailed"
CASE_ID = re.compile(r"^(?P<test>test_\w+)(?:\[(?P<param>.+)\])?$")


@dataclass(frozen=True)
class Case:
    """One test case of the run, as its JUnit file records it."""

    test: str  # the test function
    param: str  # its parameter id: the mutant, server or script ('' when not parametrized)
    outcome: str
    seconds: float
    properties: dict[str, str]
    message: str  # the first line of a failure or skip


@dataclass(frozen=True)
class Step:
    """One pytest session of the run: its JUnit file's cases and wall time."""

    name: str
    started: str
    seconds: float
    cases: tuple[Case, ...]


@dataclass(frozen=True)
class Proof:
    """A row of the figures: which test proves what, and how its cases are counted."""

    test: str
    what: str
    unit: str


PROOFS = (
    Proof("test_suite_catches_mutant", "mutants caught by the scenario they are aimed at", "mutant"),
    Proof("test_correct_server_passes_everything", "correct servers with no false failure", "server"),
    Proof(
        "test_verdicts_match_the_table",
        "third-party servers judged as tests/third_party.py records",
        "server",
    ),
    Proof("test_evidence_reproduces", "evidence scripts that reproduced their defect", "script"),
)


def _outcome(element: ET.Element) -> tuple[str, str]:
    for tag in ("failure", "error"):
        found = element.find(tag)
        if found is not None:
            message = found.get("message") or tag
            return FAILED, message.splitlines()[0]
    skipped = element.find("skipped")
    if skipped is not None:
        outcome = XFAILED if skipped.get("type") == "pytest.xfail" else SKIPPED
        return outcome, skipped.get("message") or ""
    return PASSED, ""


def read_step(path: Path) -> Step:
    suite = ET.parse(path).getroot()  # noqa: S314 -- our own run's JUnit file, not untrusted input
    if suite.tag == "testsuites":
        suite = suite[0]
    cases = []
    for element in suite.iter("testcase"):
        match = CASE_ID.match(element.get("name", ""))
        if match is None:
            continue
        outcome, message = _outcome(element)
        properties = {prop.get("name", ""): prop.get("value", "") for prop in element.iter("property")}
        seconds = float(element.get("time", 0))
        cases.append(Case(match["test"], match["param"] or "", outcome, seconds, properties, message))
    return Step(path.stem, suite.get("timestamp", ""), float(suite.get("time", 0)), tuple(cases))


def _minutes(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest:02d} s" if minutes else f"{rest} s"


def _machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )
    return f"{os.cpu_count()} CPUs ({model}), {platform.system()} {platform.release()}"


def _commit() -> str:
    result = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    return result.stdout.strip() or "unknown"


def figures(steps: Iterable[Step]) -> list[str]:
    cases = [case for step in steps for case in step.cases]
    rows = ["| proof | result | not run | slowest case |", "|---|---|---|---|"]
    for proof in PROOFS:
        mine = [case for case in cases if case.test == proof.test]
        if not mine:
            continue
        ran = [case for case in mine if case.outcome != SKIPPED]
        passed = sum(case.outcome == PASSED for case in ran)
        slowest = max(mine, key=lambda case: case.seconds)
        rows.append(
            f"| {proof.what} | **{passed} / {len(ran)}** | {len(mine) - len(ran)} | "
            f"{slowest.param} {slowest.seconds:.0f} s |"
        )
    return rows


def aimed_at(cases: Iterable[Case]) -> list[str]:
    mutants = sorted((case for case in cases if case.test == PROOFS[0].test), key=lambda case: case.param)
    rows = ["| mutant | aimed at | the bug | result | time |", "|---|---|---|---|---|"]
    rows += [
        f"| `{case.param}` | {case.properties.get('expect', '?')} | {case.properties.get('bug', '')} | "
        f"{case.outcome} | {case.seconds:.1f} s |"
        for case in mutants
    ]
    return rows


def page(steps: list[Step]) -> str:
    cases = [case for step in steps for case in step.cases]
    total = sum(step.seconds for step in steps)
    times = ", ".join(f"{step.name} {_minutes(step.seconds)}" for step in steps)
    lines = [
        "# Self-test figures",
        "",
        "Written by `tox -e selftest` (`tests/selftest_figures.py`, from the run's JUnit files); "
        "do not edit by hand. What the self-test is: the README's "
        "[Does the suite catch bugs, and spare correct servers?]"
        "(README.md#does-the-suite-catch-bugs-and-spare-correct-servers).",
        "",
        f"- run: started {steps[0].started or 'unknown'}, commit `{_commit()}`",
        f"- machine: {_machine()}",
        f"- time: {_minutes(total)} ({times})",
        "",
        *figures(steps),
        "",
    ]
    not_passed = [case for case in cases if case.outcome not in (PASSED, XFAILED)]
    if not_passed:
        lines += ["## Cases that did not pass", ""]
        lines += [f"- `{case.test}[{case.param}]` {case.outcome}: {case.message}" for case in not_passed]
        lines.append("")
    lines += ["## Mutants", "", *aimed_at(cases), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write selftest.md from the self-test's JUnit files.")
    parser.add_argument("junit", nargs="+", type=Path, help="the JUnit files of the run's steps, in order")
    parser.add_argument("--output", type=Path, default=PAGE, help=f"default: {PAGE.name}")
    args = parser.parse_args(argv)
    missing = [str(path) for path in args.junit if not path.is_file()]
    if missing:
        parser.error(f"no JUnit file at {', '.join(missing)}: run the self-test first (tox -e selftest)")
    args.output.write_text(page([read_step(path) for path in args.junit]))
    print(f"selftest figures: {args.output}")


if __name__ == "__main__":
    main()
