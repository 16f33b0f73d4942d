"""The conformance matrix (conformance/harness/report.py): terminal, JSON and HTML, with and without xdist.

Most tests run pytest in a subprocess over a small selection and read what it wrote, because the
matrix is built from the reports a whole session produces. The unit tests at the end pin down how
one cell merges the verdicts of all its tests and phases: the worst verdict wins.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.harness.report import (
    DETAIL_LIMIT,
    FAIL,
    NON_STRICT,
    PASS,
    SEVERITY,
    SKIP,
    Cell,
    Matrix,
    render_text,
)
from conformance.harness.scenarios import Scenario
from conformance.harness.servers import start_announcing
from impls.table import BY_NAME, ROOT

CHILD_TIMEOUT_S = 120.0
# The matrix needs neither plugin; pytest-benchmark also warns when xdist is active, and the
# project turns warnings into errors.
CHILD_OPTIONS = ("-p", "no:cacheprovider", "-p", "no:benchmark")
ECHO_SELECTION = (
    "conformance/test_payloads.py",
    "-k",
    "ECHO-002 or ECHO-007",
    "--impl",
    "threaded",
    "--transport",
    "tcp",
)
SLOW_SERVER = Path(__file__).with_name("slow_echo_server.py")
SLOW_SERVER_CMD = f"{shlex.quote(sys.executable)} {shlex.quote(str(SLOW_SERVER))} {{port}}"
TIMING_SELECTION = ("conformance/test_timing.py", "-k", "TIMING-001", "--server-cmd", SLOW_SERVER_CMD)
EXTERNAL_URL = re.compile(r"\b(?:src|href)\s*=|https?://|<script|<link|@import|url\(", re.IGNORECASE)
VOLATILE_KEYS = ("generated", "command", "machine")


@dataclass(frozen=True)
class Run:
    """One pytest subprocess: its exit status, its terminal output and the matrix files it wrote."""

    returncode: int
    output: str
    json_path: Path
    html_path: Path

    @property
    def report(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.json_path.read_text())
        return parsed

    def verdict(self, scenario_id: str, target: str) -> dict[str, str]:
        row = next(row for row in self.report["scenarios"] if row["id"] == scenario_id)
        result: dict[str, str] = row["results"][target]
        return result

    def matrix_lines(self) -> list[str]:
        """The terminal's matrix section, without blank lines."""
        lines = self.output.splitlines()
        start = next(index for index, line in enumerate(lines) if " conformance matrix " in line)
        end = next(index for index, line in enumerate(lines) if line.startswith("matrix written to"))
        return [line for line in lines[start + 1 : end] if line.strip()]


def run_pytest(directory: Path, *args: str) -> Run:
    json_path, html_path = directory / "matrix.json", directory / "matrix.html"
    argv = [sys.executable, "-m", "pytest", *CHILD_OPTIONS]
    argv += ["--report-json", str(json_path), "--report-html", str(html_path), *args]
    # The outer session's variables (PYTEST_XDIST_WORKER, PYTEST_ADDOPTS...) must not leak in.
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTEST_")}
    result = subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False
    )
    return Run(result.returncode, result.stdout + result.stderr, json_path, html_path)


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    run = run_pytest(tmp_path_factory.mktemp("plain"), *ECHO_SELECTION)
    assert run.returncode == 0, run.output
    return run


@pytest.fixture(scope="module")
def parallel_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    run = run_pytest(tmp_path_factory.mktemp("parallel"), *ECHO_SELECTION, "-n", "2")
    assert run.returncode == 0, run.output
    return run


def test_json_has_scenarios_targets_and_verdicts(plain_run: Run) -> None:
    report = plain_run.report
    assert report["targets"] == ["threaded"]
    assert [row["id"] for row in report["scenarios"]] == ["ECHO-002", "ECHO-007"]
    for row in report["scenarios"]:
        assert (row["family"], row["level"]) == ("ECHO", "MUST")
        assert row["title"]
        assert row["results"] == {"threaded": {"verdict": PASS, "summary": "", "detail": ""}}
    assert report["totals"]["threaded"][PASS] == 2


def test_html_is_self_contained(plain_run: Run) -> None:
    page = plain_run.html_path.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert not EXTERNAL_URL.search(page), (
        f"the page refers to something outside itself: {EXTERNAL_URL.search(page)}"
    )
    assert "<table" in page
    assert "ECHO-002" in page
    assert "ECHO-007" in page
    assert page.count(f'class="{PASS}"') == 2


def test_terminal_shows_the_matrix(plain_run: Run) -> None:
    lines = plain_run.matrix_lines()
    assert re.match(r"scenario\s+level\s+threaded\s+title", lines[0]), lines
    assert any(re.match(r"ECHO-002\s+MUST\s+PASS\s+every byte value", line) for line in lines), lines
    assert any(re.match(r"ECHO-007\s+MUST\s+PASS\s+no unsolicited bytes", line) for line in lines), lines
    assert "threaded: 2 PASS" in lines


def test_matrix_is_the_same_under_xdist(plain_run: Run, parallel_run: Run) -> None:
    def stable(report: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in report.items() if key not in VOLATILE_KEYS}

    assert stable(parallel_run.report) == stable(plain_run.report)
    assert parallel_run.matrix_lines() == plain_run.matrix_lines()


def test_server_addr_skips_what_needs_the_process(tmp_path: Path) -> None:
    server, address = start_announcing(BY_NAME["threaded"].argv())
    try:
        selection = ("conformance/test_payloads.py", "conformance/test_lifecycle.py")
        run = run_pytest(
            tmp_path, *selection, "-k", "ECHO-002 or LIFE-003 or LIFE-005", "--server-addr", str(address)
        )
    finally:
        server.stop()
    assert run.returncode == 0, run.output
    assert run.verdict("ECHO-002", "external")["verdict"] == PASS
    for scenario_id in ("LIFE-003", "LIFE-005"):
        cell = run.verdict(scenario_id, "external")
        assert cell["verdict"] == SKIP, run.output
        assert "--server-addr" in cell["detail"], (
            f"{scenario_id} skipped without the reason: {cell['detail']!r}"
        )
    assert any(
        re.match(r"\s+LIFE-003 \[external\] SKIP: .*--server-addr", line) for line in run.matrix_lines()
    )


def test_should_failure_is_non_strict_and_the_run_passes(tmp_path: Path) -> None:
    run = run_pytest(tmp_path, *TIMING_SELECTION)
    assert run.returncode == 0, run.output
    cell = run.verdict("TIMING-001", "external")
    assert cell["verdict"] == NON_STRICT, run.output
    assert "p99" in cell["detail"], "the evidence (percentiles) must reach the report"
    assert any(re.match(r"TIMING-001\s+SHOULD\s+NON-STRICT", line) for line in run.matrix_lines())


def test_strict_turns_a_should_failure_into_a_failed_run(tmp_path: Path) -> None:
    run = run_pytest(tmp_path, *TIMING_SELECTION, "--strict")
    assert run.returncode == 1, run.output
    assert run.verdict("TIMING-001", "external")["verdict"] == FAIL


def test_list_scenarios_prints_ids_levels_and_titles(tmp_path: Path) -> None:
    run = run_pytest(tmp_path, "conformance", "--list-scenarios", "--impl", "threaded")
    assert run.returncode == 0, run.output
    rows = [line for line in run.output.splitlines() if re.match(r"[A-Z]+-\d{3} ", line)]
    ids = [row.split()[0] for row in rows]
    assert ids == sorted(set(ids)), "one line per scenario, sorted by ID"
    assert f"{'ECHO-002':<10} {'MUST':<7} every byte value 0x00-0xFF survives the round trip" in rows
    assert any(re.match(r"TIMING-001\s+SHOULD\s+64-byte messages", row) for row in rows), rows
    assert " conformance matrix " not in run.output, "--list-scenarios must run nothing"


def test_k_with_a_scenario_id_selects_exactly_that_scenario(tmp_path: Path) -> None:
    run = run_pytest(
        tmp_path,
        "conformance",
        "-k",
        "ECHO-002",
        "--impl",
        "threaded",
        "--impl",
        "asyncio",
        "--collect-only",
        "-q",
    )
    assert run.returncode == 0, run.output
    selected = [line for line in run.output.splitlines() if "::" in line]
    assert selected == [
        "conformance/test_payloads.py::test_every_byte_value[threaded]",
        "conformance/test_payloads.py::test_every_byte_value[asyncio]",
        "conformance/test_payloads.py::test_every_byte_value[threaded-tls]",
        "conformance/test_payloads.py::test_every_byte_value[asyncio-tls]",
    ]


def test_each_transport_is_a_column_of_its_own(tmp_path: Path) -> None:
    run = run_pytest(tmp_path, "conformance/test_payloads.py", "-k", "ECHO-002", "--impl", "threaded")
    assert run.returncode == 0, run.output
    assert run.report["targets"] == ["threaded", "threaded-tls"]
    assert run.verdict("ECHO-002", "threaded-tls")["verdict"] == PASS


# Unit tests of the matrix itself.

ALL_VERDICTS = sorted(SEVERITY, key=SEVERITY.__getitem__)


@given(st.lists(st.sampled_from(ALL_VERDICTS), min_size=1, max_size=8))
def test_a_cell_keeps_the_worst_verdict_and_its_first_detail(verdicts: list[str]) -> None:
    cell = Cell()
    for index, verdict in enumerate(verdicts):
        cell.merge(verdict, f"{verdict} #{index}", f"detail of {verdict} #{index}")
    worst = max(verdicts, key=SEVERITY.__getitem__)
    assert cell.verdict == worst
    assert cell.summary == f"{worst} #{verdicts.index(worst)}"
    assert cell.detail == f"detail of {worst} #{verdicts.index(worst)}"


def test_a_skip_reason_fills_an_empty_skip_only_once() -> None:
    cell = Cell()
    cell.merge(SKIP, "", "")
    cell.merge(SKIP, "needs the process", "needs the process")
    cell.merge(SKIP, "another reason", "another reason")
    assert (cell.verdict, cell.summary) == (SKIP, "needs the process")


def test_a_long_detail_keeps_its_end() -> None:
    cell = Cell()
    cell.merge(FAIL, "the assertion", "x" * DETAIL_LIMIT + "the assertion")
    assert len(cell.detail) == DETAIL_LIMIT
    assert cell.detail.endswith("the assertion")


def test_matrix_records_rows_targets_and_totals() -> None:
    matrix = Matrix()
    second, first = Scenario("ECHO-002", "bytes", "MUST"), Scenario("ECHO-001", "payloads", "MUST")
    matrix.record(second, "threaded", PASS, "", "")
    matrix.record(second, "cpp", FAIL, "echo mismatch at offset 7", "E   echo mismatch at offset 7")
    matrix.record(first, "threaded", PASS, "", "")
    matrix.record(
        first, "threaded", FAIL, "server exited 1", "E   teardown: server exited 1"
    )  # a later phase fails
    assert [row.id for row in matrix.rows()] == ["ECHO-001", "ECHO-002"]
    assert matrix.targets == ["threaded", "cpp"]
    assert matrix.totals() == {
        "threaded": {SKIP: 0, PASS: 1, NON_STRICT: 0, FAIL: 1},
        "cpp": {SKIP: 0, PASS: 0, NON_STRICT: 0, FAIL: 1},
    }
    rows = matrix.as_json("pytest conformance")["scenarios"]
    assert rows[0]["results"]["threaded"] == {
        "verdict": FAIL,
        "summary": "server exited 1",
        "detail": "E   teardown: server exited 1",
    }
    assert "cpp" not in rows[0]["results"], "no cell for a scenario a target never ran"
    text = render_text(matrix)
    assert "  ECHO-002 [cpp] FAIL: echo mismatch at offset 7" in text


SOCAT_TLS = "socat OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={certkey},verify=0 EXEC:cat"


@pytest.mark.skipif(shutil.which("socat") is None, reason="needs socat (apt-get install socat)")
def test_an_external_tls_server_gets_the_suites_certificate(tmp_path: Path) -> None:
    selection = ("conformance/test_payloads.py", "conformance/test_tls.py", "-k", "ECHO-002 or TLS-001")
    run = run_pytest(tmp_path, *selection, "--transport", "tls", "--server-cmd", SOCAT_TLS)
    assert run.returncode == 0, run.output
    assert run.report["targets"] == ["external-tls"]
    assert run.verdict("ECHO-002", "external-tls")["verdict"] == PASS
    assert run.verdict("TLS-001", "external-tls")["verdict"] == PASS


def test_an_external_tls_server_needs_a_way_to_be_trusted(tmp_path: Path) -> None:
    run = run_pytest(tmp_path, "conformance", "--transport", "tls", "--server-addr", "127.0.0.1:9", "--co")
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.output
    assert "--tls-cafile PEM or --tls-insecure" in run.output, run.output
