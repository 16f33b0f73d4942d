"""The ``echo-conformance`` command (conformance/cli.py): its options, its output and its exit codes.

Run here as ``python -m conformance.cli`` from the clone; tests/test_package.py runs the installed
console script from a directory outside it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conformance.exitstatus import EXIT_CODES, EXIT_FAILED, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE
from conformance.harness.scenarios import catalogue

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_S = 180.0
CORRECT = ROOT / "tests" / "correct" / "selectors_echo.py"
ONE_RECV = ROOT / "tests" / "mutants" / "one_recv.py"


def server_cmd(script: Path) -> str:
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} {{port}}"


@dataclass(frozen=True)
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def command(*args: str, cwd: Path = ROOT) -> Result:
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTEST_")}
    done = subprocess.run(
        [sys.executable, "-m", "conformance.cli", *args],
        cwd=cwd,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    return Result(done.returncode, done.stdout, done.stderr)


def test_help_documents_every_exit_code() -> None:
    result = command("--help")
    assert result.code == EXIT_OK
    for code, meaning in EXIT_CODES.items():
        assert f"  {code}  {meaning}" in result.stdout


def test_list_prints_the_catalogue() -> None:
    result = command("--list")
    assert result.code == EXIT_OK
    assert [line.split()[0] for line in result.stdout.splitlines()] == list(catalogue())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--bogus",), "unrecognized arguments: --bogus"),
        (("127.0.0.1:99999",), "port 99999 is out of range (1-65535)"),
        ((), "give exactly one server: HOST:PORT, --server-cmd CMD or --impl NAME"),
        (("127.0.0.1:7", "--impl", "cpp"), "give exactly one server"),
        (("--impl", "nosuch"), "invalid choice: 'nosuch'"),
        (("--impl", "cpp", "--jobs", "many"), "--jobs 'many': give a number or auto"),
        (("--impl", "cpp", "--scenario", "NOPE"), "'NOPE' is neither a scenario ID"),
    ],
    ids=["bad-flag", "bad-port", "no-server", "two-servers", "bad-impl", "bad-jobs", "bad-scenario"],
)
def test_bad_input_is_one_line_and_the_usage_code(args: tuple[str, ...], message: str) -> None:
    result = command(*args)
    assert result.code == EXIT_USAGE, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert message in lines[0]


def test_a_dead_address_is_the_unavailable_code_in_one_line() -> None:
    result = command("127.0.0.1:9")
    assert result.code == EXIT_UNAVAILABLE, result.output
    assert result.output.strip() == (
        "ERROR: the server could not be started or reached: cannot reach 127.0.0.1:9: Connection refused"
    )


def test_a_command_that_cannot_start_is_the_unavailable_code(tmp_path: Path) -> None:
    result = command("--server-cmd", f"{sys.executable} -c 'raise SystemExit(\"no config\")' {{port}}")
    assert result.code == EXIT_UNAVAILABLE, result.output
    assert result.output.strip().startswith("ERROR: the server could not be started or reached: external:")
    assert "server exited (1) before accepting (stderr: no config)" in result.output


def test_a_correct_server_passes_and_the_report_is_written(tmp_path: Path) -> None:
    result = command(
        "--server-cmd",
        server_cmd(CORRECT),
        "--scenario",
        "ECHO",
        "--jobs",
        "2",
        "--report-dir",
        str(tmp_path),
    )
    assert result.code == EXIT_OK, result.output
    assert {path.name for path in tmp_path.iterdir()} == {"conformance.json", "conformance.html", "junit.xml"}
    report = json.loads((tmp_path / "conformance.json").read_text())
    assert {row["id"] for row in report["scenarios"]} == {
        key for key in catalogue() if key.startswith("ECHO-")
    }


def test_a_broken_server_fails_naming_the_scenario(tmp_path: Path) -> None:
    result = command(
        "--server-cmd", server_cmd(ONE_RECV), "--scenario", "FRAG-002", "--report-dir", str(tmp_path)
    )
    assert result.code == EXIT_FAILED, result.output
    assert re.search(r"^FRAG-002\s+MUST\s+FAIL\b", result.stdout, re.MULTILINE), result.stdout
    assert "one recv() taken as one message?" in result.stdout


def test_an_expectation_file_turns_a_known_failure_into_a_pass(tmp_path: Path) -> None:
    expect = tmp_path / "known.json"
    expect.write_text(json.dumps({"FRAG-002": "reads one recv() per connection"}))
    result = command(
        "--server-cmd", server_cmd(ONE_RECV), "--scenario", "FRAG-002", "--expect", str(expect),
        "--report-dir", str(tmp_path / "report"),
    )  # fmt: skip
    assert result.code == EXIT_OK, result.output
    assert re.search(r"^FRAG-002\s+MUST\s+exp\b", result.stdout, re.MULTILINE), result.stdout


def test_strict_should_fails_on_a_should() -> None:
    slow = ROOT / "tests" / "slow_echo_server.py"
    base = ("--server-cmd", server_cmd(slow), "--scenario", "TIMING-001", "--report-dir", "")
    assert command(*base).code == EXIT_OK
    assert command(*base, "--strict-should").code == EXIT_FAILED
