"""The conformance matrix: scenarios x targets, in the terminal, as JSON and as HTML.

Under pytest-xdist the workers run the tests and the controller receives their reports; each
report carries the scenario's ID, title, level, target and verdict in ``user_properties``, so
the matrix is built in the controller from reports alone and is the same with or without ``-n``.
The verdict of a test is the suite's own (see ``conformance.plugin``): PASS; FAIL (a MUST
failed); NON-STRICT (a SHOULD failed: reported, the run passes); EXPECTED (a failure the
``--expect`` file lists, with its reason: reported, the run passes); SKIP (with the reason). A
cell is every test of one scenario on one target: its verdict is the worst of them, and it
keeps every case that did not pass, so a report shows all the ways a scenario failed.
"""

from __future__ import annotations

import html
import json
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.harness.scenarios import Scenario

PASS, FAIL, NON_STRICT, EXPECTED, SKIP = "PASS", "FAIL", "NON-STRICT", "EXPECTED", "SKIP"
SEVERITY = {SKIP: 0, PASS: 1, EXPECTED: 2, NON_STRICT: 3, FAIL: 4}
DETAIL_LIMIT = 6000
# The terminal matrix: one short column per target, numbered, so that it fits TERMINAL_WIDTH.
TERMINAL_WIDTH = 120
SHORT = {PASS: "pass", FAIL: "FAIL", NON_STRICT: "ns", EXPECTED: "exp", SKIP: "skip"}
COLUMN = 5  # "skip" plus a space


@dataclass(frozen=True)
class Case:
    """One test of a cell that did not pass: which, how, and the command that replays it."""

    name: str
    verdict: str
    summary: str
    detail: str
    replay: str = ""


@dataclass
class Cell:
    verdict: str = SKIP
    summary: str = ""  # one line: the worst case's failed assertion, or the reason for a skip
    detail: str = ""
    cases: list[Case] = field(default_factory=list)  # every case that did not pass
    runs: int = 0  # tests (call phases) that ran in this cell, passed or not

    def merge(self, case: Case) -> None:
        """Keep every case that did not pass; the cell's verdict is the worst of them."""
        if case.verdict != PASS:
            self.cases.append(case)
        if SEVERITY[case.verdict] > SEVERITY[self.verdict] or (
            case.verdict == self.verdict == SKIP and not self.summary
        ):
            self.verdict, self.summary, self.detail = case.verdict, case.summary, case.detail[-DETAIL_LIMIT:]


@dataclass
class Matrix:
    scenarios: dict[str, Scenario] = field(default_factory=dict)
    targets: list[str] = field(default_factory=list)
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)
    expected: dict[str, str] = field(default_factory=dict)  # --expect: scenario ID -> reason
    order: list[str] = field(default_factory=list)  # the session's targets, in the order they were given

    def record(self, scenario: Scenario, target: str, case: Case, ran: bool) -> None:
        self.scenarios.setdefault(scenario.id, scenario)
        if target not in self.targets:
            self.targets.append(target)
            rank = {name: index for index, name in enumerate(self.order)}
            self.targets.sort(key=lambda name: rank.get(name, len(rank)))
        cell = self.cells.setdefault((scenario.id, target), Cell())
        cell.merge(case)
        cell.runs += ran

    def rows(self) -> list[Scenario]:
        return [self.scenarios[key] for key in sorted(self.scenarios)]

    def cell(self, scenario_id: str, target: str) -> Cell | None:
        return self.cells.get((scenario_id, target))

    def totals(self) -> dict[str, dict[str, int]]:
        totals = {target: dict.fromkeys(SEVERITY, 0) for target in self.targets}
        for (_, target), cell in self.cells.items():
            totals[target][cell.verdict] += 1
        return totals

    def now_passing(self) -> list[str]:
        """Scenarios the --expect file lists as failing that passed wherever they ran."""
        return [
            scenario_id
            for scenario_id in sorted(self.expected)
            if (cells := [c for (sid, _), c in self.cells.items() if sid == scenario_id])
            and all(cell.verdict == PASS for cell in cells)
        ]

    def as_json(self, command: str) -> dict[str, Any]:
        return {
            "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": command,
            "machine": {"platform": platform.platform(), "python": sys.version.split()[0]},
            "targets": self.targets,
            "totals": self.totals(),
            "expected": self.expected,
            "now_passing": self.now_passing(),
            "scenarios": [
                {
                    "id": row.id,
                    "family": row.family,
                    "level": row.level,
                    "title": row.title,
                    "results": {
                        target: {
                            "verdict": cell.verdict,
                            "summary": cell.summary,
                            "detail": cell.detail,
                            "runs": cell.runs,
                            "cases": [vars(case) for case in cell.cases],
                        }
                        for target in self.targets
                        if (cell := self.cell(row.id, target)) is not None
                    },
                }
                for row in self.rows()
            ],
        }


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def render_text(matrix: Matrix, width: int = TERMINAL_WIDTH) -> str:
    """The matrix in at most ``width`` columns: targets are numbered columns with a legend,
    verdicts are short words, titles are cut to fit; then a note per cell that did not pass."""
    keys = [str(number) for number in range(1, len(matrix.targets) + 1)]
    column = max(COLUMN, *(len(key) + 1 for key in keys))
    prefix = f"{'scenario':<11}{'level':<7}"
    title_width = width - len(prefix) - column * len(keys)
    legend = "targets: " + ", ".join(
        f"{key} {target}" for key, target in zip(keys, matrix.targets, strict=True)
    )
    words = "verdicts: " + ", ".join(f"{SHORT[verdict]} {verdict}" for verdict in SEVERITY)
    header = prefix + "".join(f"{key:<{column}}" for key in keys) + "title"
    lines = [*_wrap(legend, width), _cut(words, width), header, "-" * min(width, len(header) + 40)]
    notes: list[str] = []
    for row in matrix.rows():
        verdicts = ""
        for key, target in zip(keys, matrix.targets, strict=True):
            cell = matrix.cell(row.id, target)
            verdicts += f"{SHORT[cell.verdict] if cell else '-':<{column}}"
            if cell and cell.verdict != PASS:
                notes.append(_cut(f"  {row.id} [{key} {target}] {cell.verdict}: {cell.summary}", width))
        lines.append(f"{row.id:<11}{row.level:<7}{verdicts}{_cut(row.title, title_width)}")
    lines.append("-" * min(width, len(header) + 40))
    totals = matrix.totals()
    for key, target in zip(keys, matrix.targets, strict=True):
        counts = ", ".join(f"{count} {verdict}" for verdict, count in totals[target].items() if count)
        lines.append(_cut(f"{key} {target}: {counts}", width))
    if now_passing := matrix.now_passing():
        notes.append(
            _cut(f"  listed as failing in --expect but passed: {', '.join(now_passing)} (remove them)", width)
        )
    return "\n".join(lines + (["", "notes:", *notes] if notes else []))


def _wrap(text: str, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = "  " + word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, line]


def write_json(matrix: Matrix, path: Path, command: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(matrix.as_json(command), indent=2) + "\n")


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.3em .6em;vertical-align:top}
th{background:#f4f4f4;text-align:left}.PASS{background:#d9f2d9}.FAIL{background:#f7c6c6}
.NON-STRICT{background:#fbe9b7}.EXPECTED{background:#dde6f7}.SKIP{background:#e8e8e8;color:#555}
td.cell{min-width:6em;max-width:28em;overflow-wrap:anywhere}
details summary{cursor:pointer}details pre{max-width:60em;white-space:pre-wrap;font-size:.8em}
code{overflow-wrap:anywhere}
"""


def _html_case(case: Case) -> str:
    replay = f"<p>replay: <code>{html.escape(case.replay)}</code></p>" if case.replay else ""
    return (
        f"<details><summary>{html.escape(case.name)}: {case.verdict}: {html.escape(case.summary)}</summary>"
        f"{replay}<pre>{html.escape(case.detail)}</pre></details>"
    )


def _html_cell(cell: Cell | None) -> str:
    if cell is None:
        return "<td>-</td>"
    runs = f" ({len(cell.cases)} of {cell.runs} cases)" if cell.cases and cell.runs > 1 else ""
    cases = "".join(_html_case(case) for case in cell.cases)
    return f'<td class="cell {cell.verdict}"><b>{cell.verdict}</b>{runs}{cases}</td>'


def write_html(matrix: Matrix, path: Path, command: str) -> None:
    data = matrix.as_json(command)
    heads = "".join(f"<th>{html.escape(target)}</th>" for target in matrix.targets)
    rows = "".join(
        f"<tr><td>{row.id}</td><td>{row.level}</td><td>{html.escape(row.title)}"
        + (
            f"<br><i>expected to fail: {html.escape(matrix.expected[row.id])}</i>"
            if row.id in matrix.expected
            else ""
        )
        + "</td>"
        + "".join(_html_cell(matrix.cell(row.id, target)) for target in matrix.targets)
        + "</tr>"
        for row in matrix.rows()
    )
    totals = "".join(
        f"<li>{html.escape(target)}: "
        + ", ".join(f"{count} {verdict}" for verdict, count in counts.items() if count)
        + "</li>"
        for target, counts in data["totals"].items()
    )
    now_passing = (
        f"<p>Listed as failing in the expectation file, but passed: {', '.join(data['now_passing'])}.</p>"
        if data["now_passing"]
        else ""
    )
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Echo conformance matrix</title><style>{_CSS}</style></head><body>"
        "<h1>Echo server conformance matrix</h1>"
        f"<p>Generated {data['generated']} on {html.escape(data['machine']['platform'])}, "
        f"Python {data['machine']['python']}.<br>Command: <code>{html.escape(command)}</code></p>"
        f"<ul>{totals}</ul>{now_passing}"
        f"<table><tr><th>scenario</th><th>level</th><th>title</th>{heads}</tr>{rows}</table>"
        "</body></html>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
