"""Run the conformance suite in a child pytest against one echo server, and read its matrix.

Shared by the suite's own proofs: the mutants it must catch (test_suite_catches.py), the
correct servers it must pass (test_correct_servers.py) and the third-party servers whose
verdicts are recorded (test_third_party.py). A child run is a whole pytest session, because the
matrix is built from the reports of a session. It is derandomized (Hypothesis profile ``ci``, or
``selftest``: ci without shrinking), so a verdict replays, and it is bounded in time: at the
deadline it gets SIGINT, so that its teardown still stops the servers it started, and SIGKILL if
that does not end it. The servers are started by the child's harness in sessions of their own
and stopped by its teardown.
"""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock

from conformance.harness.report import FAIL, PASS, SKIP

ROOT = Path(__file__).resolve().parent.parent  # the clone these tests run in

CONFORMANCE = ROOT / "conformance"
MUTANTS = ROOT / "tests" / "mutants"
CORRECT = ROOT / "tests" / "correct"
BUILD = MUTANTS / "build"  # compiled C servers (mutants and correct ones)
CHILD_OPTIONS = ("-p", "no:cacheprovider", "-p", "no:benchmark", "-q")
CHILD_TIMEOUT_S = 300.0
INTERRUPT_GRACE_S = 15.0
COMPILE_TIMEOUT_S = 120.0
OUTPUT_TAIL = 6000


class CompileError(RuntimeError):
    """cc failed; the message carries its output."""


def compile_c(source: Path) -> Path:
    """The binary of a C server, compiled once (under a lock: xdist workers share it) and again
    whenever the source is newer."""
    BUILD.mkdir(exist_ok=True)
    binary = BUILD / source.stem
    with FileLock(str(BUILD / ".build.lock"), timeout=COMPILE_TIMEOUT_S):
        if binary.exists() and binary.stat().st_mtime >= source.stat().st_mtime:
            return binary
        argv = ["cc", "-O1", "-pthread", "-o", str(binary), str(source)]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S, check=False)
        if result.returncode != 0:
            raise CompileError(
                f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout}{result.stderr}"
            )
    return binary


# A TLS server's arguments: the suite fills in its test certificate and key (--transport tls).
TLS_ARGUMENTS = "{port} {cert} {key}"


def server_command(source: Path, arguments: str = "{port}") -> str:
    """The --server-cmd for a server source (a Python script, or a C file compiled first)."""
    program = [sys.executable, str(source)] if source.suffix == ".py" else [str(compile_c(source))]
    return " ".join(shlex.quote(part) for part in program) + f" {arguments}"


@dataclass(frozen=True)
class SuiteRun:
    """One child pytest session: its exit status, the tail of its output and its matrix."""

    returncode: int
    output: str
    report: dict[str, Any]
    elapsed_s: float

    def verdicts(self) -> dict[str, str]:
        """Scenario ID -> verdict of the one target the child ran against."""
        return {
            row["id"]: next(iter(row["results"].values()))["verdict"]
            for row in self.report.get("scenarios", [])
            if row["results"]
        }

    def summary(self, scenario_id: str) -> str:
        for row in self.report.get("scenarios", []):
            if row["id"] == scenario_id and row["results"]:
                return str(next(iter(row["results"].values()))["summary"])
        return ""

    def failed(self) -> list[str]:
        return sorted(key for key, verdict in self.verdicts().items() if verdict == FAIL)

    def explain(self) -> str:
        """What a failing assertion about this run shows: verdicts, then the child's output."""
        lines = [
            f"  {key}: {verdict}{f' -- {self.summary(key)[:200]}' if verdict not in (PASS, SKIP) else ''}"
            for key, verdict in sorted(self.verdicts().items())
        ]
        return (
            f"child pytest exited {self.returncode} after {self.elapsed_s:.0f} s; verdicts:\n"
            + "\n".join(lines)
            + f"\n--- child output (tail) ---\n{self.output[-OUTPUT_TAIL:]}"
        )


def run_suite(
    command: str, workdir: Path, *extra: str, profile: str = "ci", timeout: float = CHILD_TIMEOUT_S
) -> SuiteRun:
    """Run ``pytest conformance --server-cmd COMMAND *extra`` from the repository root."""
    json_path = workdir / "conformance.json"
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "conformance",
        *CHILD_OPTIONS,
        "--server-cmd",
        command,
        "--report-dir",
        str(workdir),
        "--hypothesis-profile",
        profile,
        *extra,
    ]
    started = time.monotonic()
    child = subprocess.Popen(
        argv,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        output = _interrupt(child) + f"\n[the child was interrupted after {timeout} s]"
    report = json.loads(json_path.read_text()) if json_path.exists() else {}
    return SuiteRun(child.returncode, output, report, time.monotonic() - started)


def _interrupt(child: subprocess.Popen[str]) -> str:
    """Ctrl-C the child (pytest then tears down and stops its servers); kill it if it lingers."""
    child.send_signal(signal.SIGINT)
    try:
        output, _ = child.communicate(timeout=INTERRUPT_GRACE_S)
    except subprocess.TimeoutExpired:
        child.kill()
        output, _ = child.communicate()
    return output
