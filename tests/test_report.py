"""The conformance report (conformance/plugin.py, conformance/harness/report.py): verdicts, the
terminal matrix, JSON, HTML and JUnit, the selection and the expectation file, with and without xdist.

Most tests run pytest in a subprocess over a small selection and read what it wrote, because the
report is built from the reports a whole session produces. The unit tests at the end pin down how
one cell merges its cases (the worst verdict wins, every case that did not pass is kept) and that
the terminal matrix fits 120 columns.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.harness.payloads import likely_cause
from conformance.harness.report import (
    DETAIL_LIMIT,
    EXPECTED,
    FAIL,
    NON_STRICT,
    PASS,
    SEVERITY,
    SKIP,
    TERMINAL_WIDTH,
    Case,
    Cell,
    Matrix,
    render_text,
)
from conformance.harness.scenarios import Scenario, catalogue
from conformance.harness.servers import launch
from impls.table import BY_NAME, IMPLEMENTATIONS

ROOT = Path(__file__).resolve().parent.parent
CHILD_TIMEOUT_S = 120.0
# The matrix needs neither plugin; pytest-benchmark also warns when xdist is active, and the
# project turns warnings into errors.
CHILD_OPTIONS = ("-p", "no:cacheprovider", "-p", "no:benchmark")
ECHO_SELECTION = ("conformance", "--scenario", "ECHO-002", "--scenario", "ECHO-007", "--impl", "threaded")
TCP_ONLY = ("--transport", "tcp")
SLOW_SERVER = Path(__file__).with_name("slow_echo_server.py")
SLOW_SERVER_CMD = f"{shlex.quote(sys.executable)} {shlex.quote(str(SLOW_SERVER))} {{port}}"
TIMING_SELECTION = ("conformance", "--scenario", "TIMING-001", "--server-cmd", SLOW_SERVER_CMD)
ONE_RECV = ROOT / "tests" / "mutants" / "one_recv.py"
ONE_RECV_CMD = f"{shlex.quote(sys.executable)} {shlex.quote(str(ONE_RECV))} {{port}}"
EXTERNAL_URL = re.compile(r"\b(?:src|href)\s*=|https?://|<script|<link|@import|url\(", re.IGNORECASE)
VOLATILE_KEYS = ("generated", "command", "machine")


@dataclass(frozen=True)
class Run:
    """One pytest subprocess: its exit status, its terminal output and the report files it wrote."""

    returncode: int
    output: str
    directory: Path

    @property
    def report(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads((self.directory / "conformance.json").read_text())
        return parsed

    @property
    def html(self) -> str:
        return (self.directory / "conformance.html").read_text()

    @property
    def junit(self) -> ET.Element:
        return ET.parse(self.directory / "junit.xml").getroot()  # noqa: S314 - our own pytest's file

    def verdict(self, scenario_id: str, target: str) -> dict[str, Any]:
        row = next(row for row in self.report["scenarios"] if row["id"] == scenario_id)
        result: dict[str, Any] = row["results"][target]
        return result

    def matrix_lines(self) -> list[str]:
        """The terminal's matrix section, without blank lines."""
        lines = self.output.splitlines()
        start = next(index for index, line in enumerate(lines) if " conformance matrix " in line)
        end = next(index for index, line in enumerate(lines) if line.startswith("report: "))
        return [line for line in lines[start + 1 : end] if line.strip()]

    @property
    def closing_line(self) -> str:
        return self.output.strip().splitlines()[-1]


def run_pytest(directory: Path, *args: str, cwd: Path = ROOT, report: bool = True) -> Run:
    argv = [sys.executable, "-m", "pytest", *CHILD_OPTIONS]
    argv += ["--report-dir", str(directory)] if report else []
    # The outer session's variables (PYTEST_XDIST_WORKER, PYTEST_ADDOPTS...) must not leak in.
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTEST_")}
    result = subprocess.run(
        [*argv, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, check=False
    )
    return Run(result.returncode, result.stdout + result.stderr, directory)


@pytest.fixture(scope="module")
def plain_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    run = run_pytest(tmp_path_factory.mktemp("plain"), *ECHO_SELECTION, *TCP_ONLY)
    assert run.returncode == 0, run.output
    return run


@pytest.fixture(scope="module")
def parallel_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    run = run_pytest(tmp_path_factory.mktemp("parallel"), *ECHO_SELECTION, *TCP_ONLY, "-n", "2")
    assert run.returncode == 0, run.output
    return run


@pytest.fixture(scope="module")
def should_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """A SHOULD that fails (a server that holds every echo 50 ms: TIMING-001)."""
    run = run_pytest(tmp_path_factory.mktemp("should"), *TIMING_SELECTION)
    assert run.returncode == 0, run.output
    return run


@pytest.fixture(scope="module")
def failing_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """A MUST that fails: one recv() taken as the whole message (FRAG-002)."""
    run = run_pytest(
        tmp_path_factory.mktemp("failing"),
        "conformance",
        "--scenario",
        "FRAG-002",
        "--server-cmd",
        ONE_RECV_CMD,
    )
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, run.output
    return run


def test_json_has_scenarios_targets_and_verdicts(plain_run: Run) -> None:
    report = plain_run.report
    assert report["targets"] == ["threaded"]
    assert [row["id"] for row in report["scenarios"]] == ["ECHO-002", "ECHO-007"]
    for row in report["scenarios"]:
        assert (row["family"], row["level"]) == ("ECHO", "MUST")
        assert row["title"]
        assert row["results"] == {
            "threaded": {"verdict": PASS, "summary": "", "detail": "", "runs": 1, "cases": []}
        }
    assert report["totals"]["threaded"][PASS] == 2


def test_html_is_self_contained(plain_run: Run) -> None:
    page = plain_run.html
    assert page.startswith("<!DOCTYPE html>")
    assert not EXTERNAL_URL.search(page), (
        f"the page refers to something outside itself: {EXTERNAL_URL.search(page)}"
    )
    assert "<table" in page
    assert "ECHO-002" in page
    assert "ECHO-007" in page
    assert page.count(f'class="cell {PASS}"') == 2


def test_terminal_shows_the_matrix(plain_run: Run) -> None:
    lines = plain_run.matrix_lines()
    assert lines[0] == "targets: 1 threaded", lines
    assert re.match(r"scenario\s+level\s+1\s+title", lines[2]), lines
    assert any(re.match(r"ECHO-002\s+MUST\s+pass\s+every byte value", line) for line in lines), lines
    assert any(re.match(r"ECHO-007\s+MUST\s+pass\s+no unsolicited bytes", line) for line in lines), lines
    assert "1 threaded: 2 PASS" in lines


def test_matrix_is_the_same_under_xdist(plain_run: Run, parallel_run: Run) -> None:
    def stable(report: dict[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in report.items() if key not in VOLATILE_KEYS}

    assert stable(parallel_run.report) == stable(plain_run.report)
    assert parallel_run.matrix_lines() == plain_run.matrix_lines()


def test_server_addr_skips_what_needs_the_process(tmp_path: Path) -> None:
    server, address = launch(BY_NAME["threaded"].argv(), env=BY_NAME["threaded"].env())
    try:
        selection = ("--scenario", "ECHO-002", "--scenario", "LIFE-003", "--scenario", "LIFE-005")
        run = run_pytest(tmp_path, "conformance", *selection, "--server-addr", str(address))
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
        re.match(r"\s+LIFE-003 \[1 external\] SKIP: .*--server-addr", line) for line in run.matrix_lines()
    )


def test_should_failure_is_non_strict_and_the_run_passes(should_run: Run) -> None:
    cell = should_run.verdict("TIMING-001", "external")
    assert cell["verdict"] == NON_STRICT, should_run.output
    assert "p99" in cell["detail"], "the evidence (percentiles) must reach the report"
    assert any(re.match(r"TIMING-001\s+SHOULD\s+ns\b", line) for line in should_run.matrix_lines())


def test_a_non_strict_run_says_so_in_its_own_words(should_run: Run) -> None:
    """The closing line counts NON-STRICT results; nothing is an xfail, xpass or skip."""
    assert re.search(r"\b1 non-strict\b", should_run.closing_line), should_run.closing_line
    assert not re.search(r"xpass|xfail|skipped", should_run.closing_line), should_run.closing_line


def test_junit_does_not_call_a_non_strict_result_skipped(should_run: Run) -> None:
    case = should_run.junit.find(".//testcase")
    assert case is not None
    assert case.find("skipped") is None
    assert case.find("failure") is None
    properties = {prop.get("name"): prop.get("value") for prop in case.iter("property")}
    assert properties["verdict"] == NON_STRICT
    assert properties["scenario"] == "TIMING-001"


def test_strict_should_turns_a_should_failure_into_a_failed_run(tmp_path: Path) -> None:
    run = run_pytest(tmp_path, *TIMING_SELECTION, "--strict-should")
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, run.output
    assert run.verdict("TIMING-001", "external")["verdict"] == FAIL


def test_a_failure_says_the_likely_cause_and_the_command_that_replays_it(failing_run: Run) -> None:
    cell = failing_run.verdict("FRAG-002", "external")
    assert cell["verdict"] == FAIL
    # How far the echo got depends on the recv() size the kernel gave the mutant under load (65536
    # idle, less on a busy machine); which wording each cut gets is checked by the rule tests below.
    assert "the echo stopped" in cell["summary"]
    assert "one recv() taken as one message?" in cell["summary"]
    (case,) = cell["cases"]
    assert case["replay"] == shlex.join(
        ["echo-conformance", "--server-cmd", ONE_RECV_CMD, "--transport", "tcp", "--scenario", "FRAG-002"]
    )
    assert f"replay: <code>{case['replay']}".replace('"', "&quot;").replace("'", "&#x27;") in failing_run.html


def test_html_shows_every_failing_case_whole(tmp_path: Path) -> None:
    """ABORT-001 has several cases; against a server that dies on a reset each one fails, and the
    cell lists them all with their whole text (nothing cut mid-word)."""
    crashes = ROOT / "tests" / "mutants" / "crash_on_reset.py"
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(crashes))} {{port}}"
    run = run_pytest(tmp_path, "conformance", "--scenario", "ABORT-001", "--server-cmd", command)
    assert run.returncode == pytest.ExitCode.TESTS_FAILED, run.output
    cell = run.verdict("ABORT-001", "external")
    assert cell["runs"] == len(cell["cases"]) > 1, cell
    for case in cell["cases"]:
        assert f"{case['name']}: {FAIL}: " in run.html
        summary = case["summary"].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        assert summary.replace("'", "&#x27;").replace('"', "&quot;") in run.html


def test_the_command_in_the_html_can_be_pasted_back(failing_run: Run) -> None:
    words = shlex.split(failing_run.report["command"])
    assert words[0] == "pytest"
    assert words[words.index("--server-cmd") + 1] == ONE_RECV_CMD, words


def test_list_scenarios_prints_ids_levels_and_titles(tmp_path: Path) -> None:
    run = run_pytest(tmp_path, "conformance", "--list-scenarios", "--impl", "threaded", report=False)
    assert run.returncode == 0, run.output
    rows = [line for line in run.output.splitlines() if re.match(r"[A-Z]+-\d{3} ", line)]
    ids = [row.split()[0] for row in rows]
    assert ids == sorted(catalogue()), "one line per scenario of the catalogue, sorted by ID"
    assert f"{'ECHO-002':<10} {'MUST':<7} every byte value 0x00-0xFF survives the round trip" in rows
    assert any(re.match(r"TIMING-001\s+SHOULD\s+64-byte messages", row) for row in rows), rows
    assert any(re.match(r"TLS-001\s+MUST\s+.*\[tls only\]$", row) for row in rows), rows
    assert " conformance matrix " not in run.output, "--list-scenarios must run nothing"


def collected(run: Run) -> list[str]:
    return [line for line in run.output.splitlines() if "::" in line]


def test_scenario_selects_exactly_its_ids_and_families(tmp_path: Path) -> None:
    """-k "ECHO or HALF" also matched ABORT and FRAG test names; --scenario takes IDs and families."""
    run = run_pytest(
        tmp_path, "conformance", "--scenario", "ECHO", "--scenario", "half-001", "--impl", "threaded",
        *TCP_ONLY, "--collect-only", "-q", report=False,
    )  # fmt: skip
    assert run.returncode == 0, run.output
    files = {line.split("::")[0] for line in collected(run)}
    assert files == {"conformance/test_payloads.py", "conformance/test_half_close.py"}, collected(run)
    half = [line for line in collected(run) if "test_half_close" in line]
    assert half == ["conformance/test_half_close.py::test_everything_then_eof[threaded]"]


def test_a_selected_scenario_runs_all_its_cases(tmp_path: Path) -> None:
    run = run_pytest(
        tmp_path, "conformance", "--scenario", "ABORT-001", "--impl", "cpp", *TCP_ONLY,
        "--collect-only", "-q", report=False,
    )  # fmt: skip
    abort = [line for line in collected(run) if "test_abort" in line]
    assert len(abort) == 3, abort


def test_an_unknown_scenario_is_a_usage_error(tmp_path: Path) -> None:
    run = run_pytest(tmp_path, "conformance", "--scenario", "ECHO-999", "--impl", "threaded", report=False)
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.output
    assert "ECHO-999' is neither a scenario ID" in run.output
    assert "INTERNALERROR" not in run.output


def test_tls_scenarios_are_not_generated_for_tcp_targets(tmp_path: Path) -> None:
    run = run_pytest(
        tmp_path, "conformance", "--impl", "threaded", *TCP_ONLY, "--collect-only", "-q", report=False
    )
    assert run.returncode == 0, run.output
    assert not [line for line in collected(run) if "test_tls.py" in line]
    both = run_pytest(
        tmp_path, "conformance/test_tls.py", "--impl", "threaded", "--collect-only", "-q", report=False
    )
    assert all("[threaded-tls" in line for line in collected(both)), collected(both)
    assert collected(both), both.output


def test_each_transport_is_a_column_of_its_own(tmp_path: Path) -> None:
    run = run_pytest(tmp_path, "conformance", "--scenario", "ECHO-002", "--impl", "threaded")
    assert run.returncode == 0, run.output
    assert run.report["targets"] == ["threaded", "threaded-tls"]
    assert run.verdict("ECHO-002", "threaded-tls")["verdict"] == PASS


def write_expectations(path: Path, entries: dict[str, str]) -> Path:
    path.write_text(json.dumps(entries))
    return path


def test_an_expected_failure_is_reported_and_does_not_fail_the_run(tmp_path: Path) -> None:
    expect = write_expectations(tmp_path / "expect.json", {"FRAG-002": "reads one recv() per message"})
    run = run_pytest(
        tmp_path / "report", "conformance", "--scenario", "FRAG-002", "--scenario", "ECHO-002",
        "--server-cmd", ONE_RECV_CMD, "--expect", str(expect),
    )  # fmt: skip
    assert run.returncode == 0, run.output
    cell = run.verdict("FRAG-002", "external")
    assert cell["verdict"] == EXPECTED
    assert re.search(r"\b1 expected\b", run.closing_line), run.closing_line
    assert "expected to fail: reads one recv() per message" in run.html


def test_a_listed_scenario_that_passes_is_reported(tmp_path: Path) -> None:
    expect = write_expectations(tmp_path / "expect.json", {"ECHO-002": "it used to fail"})
    run = run_pytest(
        tmp_path / "report", "conformance", "--scenario", "ECHO-002", "--impl", "threaded", *TCP_ONLY,
        "--expect", str(expect),
    )  # fmt: skip
    assert run.returncode == 0, run.output
    assert run.report["now_passing"] == ["ECHO-002"]
    assert any("listed as failing in --expect but passed: ECHO-002" in line for line in run.matrix_lines())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"ECHO-999": "no such"}', "unknown scenario IDs ECHO-999"),
        ('{"ECHO-002": ""}', 'expected {"SCENARIO-ID": "the reason it fails"'),
        ("[1, 2]", 'expected {"SCENARIO-ID": "the reason it fails"'),
        ("{nope", "not JSON"),
    ],
    ids=["unknown-id", "no-reason", "not-an-object", "not-json"],
)
def test_a_bad_expectation_file_is_one_usage_error(tmp_path: Path, content: str, message: str) -> None:
    expect = tmp_path / "expect.json"
    expect.write_text(content)
    run = run_pytest(tmp_path, "conformance", "--impl", "threaded", "--expect", str(expect), report=False)
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.output
    assert message in run.output
    assert "Traceback" not in run.output
    assert "INTERNALERROR" not in run.output


def test_each_default_run_gets_a_report_directory_of_its_own(tmp_path: Path) -> None:
    conformance = str(ROOT / "conformance")
    runs = [
        run_pytest(
            tmp_path,
            conformance,
            "--scenario",
            "ECHO-002",
            "--impl",
            "cpp",
            *TCP_ONLY,
            cwd=tmp_path,
            report=False,
        )
        for _ in range(2)
    ]
    directories = sorted(path for path in (tmp_path / "reports").iterdir() if not path.is_symlink())
    assert len(directories) == 2, runs[-1].output
    for directory in directories:
        assert {path.name for path in directory.iterdir()} == {
            "conformance.json",
            "conformance.html",
            "junit.xml",
        }
    assert (tmp_path / "reports" / "latest").resolve() == directories[-1].resolve()
    assert f"report: reports/{directories[-1].name}/conformance.html" in runs[-1].output


def test_a_missing_tls_cafile_is_one_usage_error(tmp_path: Path) -> None:
    run = run_pytest(
        tmp_path, "conformance", "--transport", "tls", "--server-addr", "127.0.0.1:9",
        "--tls-cafile", str(tmp_path / "missing.pem"), report=False,
    )  # fmt: skip
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.output
    assert f"--tls-cafile {tmp_path / 'missing.pem'}: no such file" in run.output
    assert "INTERNALERROR" not in run.output
    assert "Traceback" not in run.output


def test_a_dead_server_address_stops_the_run_in_one_line(tmp_path: Path) -> None:
    run = run_pytest(tmp_path, "conformance", "--server-addr", "127.0.0.1:9", report=False)
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.output
    assert run.output.strip() == (
        "ERROR: the server could not be started or reached: cannot reach 127.0.0.1:9: Connection refused"
    )


SOCAT_TLS = "socat OPENSSL-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,cert={certkey},verify=0 EXEC:cat"


@pytest.mark.skipif(shutil.which("socat") is None, reason="needs socat (apt-get install socat)")
def test_an_external_tls_server_gets_the_suites_certificate(tmp_path: Path) -> None:
    selection = ("--scenario", "ECHO-002", "--scenario", "TLS-001")
    run = run_pytest(tmp_path, "conformance", *selection, "--transport", "tls", "--server-cmd", SOCAT_TLS)
    assert run.returncode == 0, run.output
    assert run.report["targets"] == ["external-tls"]
    assert run.verdict("ECHO-002", "external-tls")["verdict"] == PASS
    assert run.verdict("TLS-001", "external-tls")["verdict"] == PASS


def test_an_external_tls_server_needs_a_way_to_be_trusted(tmp_path: Path) -> None:
    run = run_pytest(tmp_path, "conformance", "--transport", "tls", "--server-addr", "127.0.0.1:9", "--co")
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.output
    assert "--tls-cafile PEM or --tls-insecure" in run.output, run.output


# Unit tests of the matrix itself.

ALL_VERDICTS = sorted(SEVERITY, key=SEVERITY.__getitem__)


def case(verdict: str, index: int) -> Case:
    return Case(f"test[{index}]", verdict, f"{verdict} #{index}", f"detail of {verdict} #{index}")


@given(st.lists(st.sampled_from(ALL_VERDICTS), min_size=1, max_size=8))
def test_a_cell_keeps_the_worst_verdict_and_every_case_that_did_not_pass(verdicts: list[str]) -> None:
    cell = Cell()
    for index, verdict in enumerate(verdicts):
        cell.merge(case(verdict, index))
    worst = max(verdicts, key=SEVERITY.__getitem__)
    assert cell.verdict == worst
    assert cell.summary == f"{worst} #{verdicts.index(worst)}"
    assert [c.verdict for c in cell.cases] == [verdict for verdict in verdicts if verdict != PASS]


def test_a_skip_reason_fills_an_empty_skip_only_once() -> None:
    cell = Cell()
    for summary in ("", "needs the process", "another reason"):
        cell.merge(Case("t", SKIP, summary, summary))
    assert (cell.verdict, cell.summary) == (SKIP, "needs the process")


def test_a_long_detail_keeps_its_end() -> None:
    cell = Cell()
    cell.merge(Case("t", FAIL, "the assertion", "x" * DETAIL_LIMIT + "the assertion"))
    assert len(cell.detail) == DETAIL_LIMIT
    assert cell.detail.endswith("the assertion")


def test_matrix_records_rows_targets_and_totals() -> None:
    matrix = Matrix(order=["threaded", "cpp"])
    second, first = Scenario("ECHO-002", "bytes", "MUST"), Scenario("ECHO-001", "payloads", "MUST")
    matrix.record(
        second, "cpp", Case("t", FAIL, "echo mismatch at offset 7", "E   echo mismatch at offset 7"), True
    )
    matrix.record(second, "threaded", Case("t", PASS, "", ""), True)
    matrix.record(first, "threaded", Case("t", PASS, "", ""), True)
    matrix.record(
        first, "threaded", Case("t", FAIL, "server exited 1", "E   teardown: server exited 1"), False
    )
    assert [row.id for row in matrix.rows()] == ["ECHO-001", "ECHO-002"]
    assert matrix.targets == ["threaded", "cpp"], "the session's order, not the order reports came in"
    assert matrix.totals()["threaded"] == {SKIP: 0, PASS: 1, EXPECTED: 0, NON_STRICT: 0, FAIL: 1}
    rows = matrix.as_json("pytest conformance")["scenarios"]
    assert rows[0]["results"]["threaded"]["verdict"] == FAIL
    assert rows[0]["results"]["threaded"]["runs"] == 1
    assert "cpp" not in rows[0]["results"], "no cell for a scenario a target never ran"
    assert "  ECHO-002 [2 cpp] FAIL: echo mismatch at offset 7" in render_text(matrix)


def test_the_terminal_matrix_fits_120_columns() -> None:
    """Eight targets (every built-in row over both transports) and long titles and summaries."""
    matrix = Matrix()
    targets = [f"{impl.name}{suffix}" for suffix in ("", "-tls", "-x", "-tls-x") for impl in IMPLEMENTATIONS]
    for entry in catalogue().values():
        for target in targets:
            matrix.record(entry, target, Case("t", FAIL, "a long summary " * 20, "detail"), True)
    lines = render_text(matrix).splitlines()
    assert max(map(len, lines)) <= TERMINAL_WIDTH, max(lines, key=len)
    assert len(matrix.targets) == 16


@pytest.mark.parametrize(
    ("sent", "echoed", "cause"),
    [
        (300_000, 65_536, "a buffer size: one recv() taken as one message?"),
        (262_144, 32_741, "at most one read's worth: one recv() taken as one message?"),
        (3_000_000, 2_500_000, "the rest lost, e.g. a partial write not retried"),
        (1000, 0, "nothing came back"),
    ],
)
def test_a_short_echo_names_its_likely_cause(sent: int, echoed: int, cause: str) -> None:
    data = os.urandom(sent)
    assert cause in likely_cause(data, data[:echoed])
