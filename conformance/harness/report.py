"""The conformance matrix: scenarios x implementations, in the terminal, as JSON and as HTML.

Under pytest-xdist the workers run the tests and the controller receives their reports; each
report carries the scenario's ID, title, level and target in ``user_properties``, so the matrix
is built in the controller from reports alone and is the same with or without ``-n``.
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

import pytest

from conformance.harness.scenarios import Scenario, scenario_of

PASS, FAIL, NON_STRICT, SKIP = "PASS", "FAIL", "NON-STRICT", "SKIP"
SEVERITY = {SKIP: 0, PASS: 1, NON_STRICT: 2, FAIL: 3}
DETAIL_LIMIT = 6000


@dataclass
class Cell:
    verdict: str = SKIP
    summary: str = ""  # one line: the assertion that failed, or the reason for a skip
    detail: str = ""

    def merge(self, verdict: str, summary: str, detail: str) -> None:
        """Keep the worst verdict of all the tests and phases that make up the cell."""
        if SEVERITY[verdict] > SEVERITY[self.verdict] or (
            verdict == self.verdict == SKIP and not self.summary
        ):
            self.verdict, self.summary, self.detail = verdict, summary, detail[-DETAIL_LIMIT:]


@dataclass
class Matrix:
    scenarios: dict[str, Scenario] = field(default_factory=dict)
    targets: list[str] = field(default_factory=list)
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)

    def record(self, scenario: Scenario, target: str, verdict: str, summary: str, detail: str) -> None:
        self.scenarios.setdefault(scenario.id, scenario)
        if target not in self.targets:
            self.targets.append(target)
        self.cells.setdefault((scenario.id, target), Cell()).merge(verdict, summary, detail)

    def rows(self) -> list[Scenario]:
        return [self.scenarios[key] for key in sorted(self.scenarios)]

    def cell(self, scenario_id: str, target: str) -> Cell | None:
        return self.cells.get((scenario_id, target))

    def totals(self) -> dict[str, dict[str, int]]:
        totals = {target: dict.fromkeys(SEVERITY, 0) for target in self.targets}
        for (_, target), cell in self.cells.items():
            totals[target][cell.verdict] += 1
        return totals

    def as_json(self, command: str) -> dict[str, Any]:
        return {
            "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": command,
            "machine": {"platform": platform.platform(), "python": sys.version.split()[0]},
            "targets": self.targets,
            "totals": self.totals(),
            "scenarios": [
                {
                    "id": row.id,
                    "family": row.family,
                    "level": row.level,
                    "title": row.title,
                    "results": {
                        target: {"verdict": cell.verdict, "summary": cell.summary, "detail": cell.detail}
                        for target in self.targets
                        if (cell := self.cell(row.id, target)) is not None
                    },
                }
                for row in self.rows()
            ],
        }


def _summary(report: pytest.TestReport) -> str:
    """One line that says what happened: the failed assertion's message or the skip reason."""
    if isinstance(report.longrepr, tuple):
        return report.longrepr[2].removeprefix("Skipped: ")
    crash = getattr(report.longrepr, "reprcrash", None)
    message = getattr(crash, "message", "") or report.longreprtext
    return next((line.strip() for line in message.splitlines() if line.strip()), "")


def _verdict(report: pytest.TestReport) -> tuple[str, str, str] | None:
    """Map one phase's report to (verdict, summary, detail); None: the phase says nothing new."""
    if report.passed:
        return (PASS, "", "") if report.when == "call" else None
    if hasattr(report, "wasxfail"):
        # A SHOULD scenario is marked xfail(strict=False) unless --strict: a failure is
        # NON-STRICT, a pass is an ordinary PASS.
        return (NON_STRICT, _summary(report), report.longreprtext) if report.skipped else (PASS, "", "")
    if report.skipped:
        reason = _summary(report)
        return SKIP, reason, reason
    return FAIL, _summary(report), report.longreprtext


def _properties(report: pytest.TestReport) -> dict[str, Any]:
    return dict(report.user_properties)


class MatrixPlugin:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.matrix = Matrix()

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        for item in items:
            if (found := scenario_of(item)) is None:
                continue
            target = getattr(item, "callspec", None)
            target_name = getattr(target.params.get("target"), "name", "?") if target else "?"
            item.user_properties.extend(
                [
                    ("scenario", found.id),
                    ("title", found.title),
                    ("level", found.level),
                    ("target", target_name),
                ]
            )
            if found.level == "SHOULD" and not config.getoption("strict"):
                item.add_marker(
                    pytest.mark.xfail(
                        strict=False, reason=f"{found.id} is a SHOULD: a failure is reported as NON-STRICT"
                    )
                )

    def pytest_itemcollected(self, item: pytest.Item) -> None:
        if (found := scenario_of(item)) is not None:
            item.extra_keyword_matches.add(found.id)  # so that -k ECHO-001 selects it

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = _properties(report)
        if "scenario" not in props or (verdict := _verdict(report)) is None:
            return
        found = Scenario(props["scenario"], props["title"], props["level"])
        self.matrix.record(found, props["target"], *verdict)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool | None:
        if not self.config.getoption("list_scenarios"):
            return None
        sys.stdout.write(list_scenarios(session.items) + "\n")
        return True

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.matrix.scenarios:
            return
        terminalreporter.section("conformance matrix")
        for line in render_text(self.matrix).splitlines():
            terminalreporter.write_line(line)
        command = " ".join(["pytest", *self.config.invocation_params.args])
        for option, writer in (("report_json", write_json), ("report_html", write_html)):
            path = self.config.getoption(option)
            if path:
                writer(self.matrix, Path(path), command)
                terminalreporter.write_line(f"matrix written to {path}")


def render_text(matrix: Matrix) -> str:
    width = max(12, *(len(target) + 2 for target in matrix.targets))
    header = (
        f"{'scenario':<10} {'level':<7}"
        + "".join(f"{target:<{width}}" for target in matrix.targets)
        + "title"
    )
    lines = [header, "-" * len(header)]
    notes: list[str] = []
    for row in matrix.rows():
        verdicts = ""
        for target in matrix.targets:
            cell = matrix.cell(row.id, target)
            verdicts += f"{cell.verdict if cell else '-':<{width}}"
            if cell and cell.verdict in (SKIP, NON_STRICT, FAIL):
                notes.append(f"  {row.id} [{target}] {cell.verdict}: {cell.summary[:150]}")
        lines.append(f"{row.id:<10} {row.level:<7}{verdicts}{row.title}")
    totals = matrix.totals()
    lines.append("-" * len(header))
    for target in matrix.targets:
        counts = ", ".join(f"{count} {verdict}" for verdict, count in totals[target].items() if count)
        lines.append(f"{target}: {counts}")
    return "\n".join(lines + (["", "notes:", *notes] if notes else []))


def write_json(matrix: Matrix, path: Path, command: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(matrix.as_json(command), indent=2) + "\n")


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.3em .6em;vertical-align:top}
th{background:#f4f4f4;text-align:left}.PASS{background:#d9f2d9}.FAIL{background:#f7c6c6}
.NON-STRICT{background:#fbe9b7}.SKIP{background:#e8e8e8;color:#555}
details pre{max-width:60em;white-space:pre-wrap;font-size:.8em}
"""


def _html_cell(cell: Cell | None) -> str:
    if cell is None:
        return "<td>-</td>"
    if not cell.detail:
        return f'<td class="{cell.verdict}">{cell.verdict}</td>'
    return (
        f'<td class="{cell.verdict}"><details><summary>{cell.verdict}: {html.escape(cell.summary[:100])}'
        "</summary>"
        f"<pre>{html.escape(cell.detail)}</pre></details></td>"
    )


def write_html(matrix: Matrix, path: Path, command: str) -> None:
    data = matrix.as_json(command)
    heads = "".join(f"<th>{html.escape(target)}</th>" for target in matrix.targets)
    rows = "".join(
        f"<tr><td>{row.id}</td><td>{row.level}</td><td>{html.escape(row.title)}</td>"
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
    page = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Echo conformance matrix</title><style>{_CSS}</style></head><body>"
        "<h1>Echo server conformance matrix</h1>"
        f"<p>Generated {data['generated']} on {html.escape(data['machine']['platform'])}, "
        f"Python {data['machine']['python']}.<br>Command: <code>{html.escape(command)}</code></p>"
        f"<ul>{totals}</ul>"
        f"<table><tr><th>scenario</th><th>level</th><th>title</th>{heads}</tr>{rows}</table>"
        "</body></html>\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)


def list_scenarios(items: list[pytest.Item]) -> str:
    found = {s.id: s for item in items if (s := scenario_of(item)) is not None}
    return "\n".join(f"{s.id:<10} {s.level:<7} {s.title}" for s in (found[key] for key in sorted(found)))
