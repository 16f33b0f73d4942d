"""``pytest benchmarks --benchmark-compare`` on a fresh clone: nothing saved yet is not an error.

pytest-benchmark warns "Can't compare" when no saved run exists, and the suite's strict warning
filter made that an INTERNALERROR traceback. benchmarks/conftest.py checks first: with no saved
run to compare with, the run goes ahead uncompared and says how to save a baseline. The runs
here only collect (``--co``): the check happens at configure time, before any server starts.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUN_TIMEOUT_S = 60.0


def collect_with(storage: Path, *options: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "pytest", "benchmarks", "-p", "no:xdist", "--quick", "--co", "-q"]
    argv += [f"--benchmark-storage={storage}", *options]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)


@pytest.mark.parametrize("compare", ["--benchmark-compare", "--benchmark-compare=0042"])
def test_compare_without_a_saved_run_says_how_to_save_one(tmp_path: Path, compare: str) -> None:
    """With no saved run, --benchmark-compare exits 0, names the missing baseline and the options
    that save one, and prints no traceback."""
    result = collect_with(tmp_path / "storage", compare)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "nothing to compare yet" in output, output
    assert "--benchmark-autosave" in output, output
    assert "--benchmark-save" in output, output
    assert "Traceback" not in output, output
    assert "INTERNALERROR" not in output, output


def test_no_notice_without_compare(tmp_path: Path) -> None:
    """Without --benchmark-compare, nothing is said about baselines."""
    result = collect_with(tmp_path / "storage")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "nothing to compare" not in result.stdout + result.stderr
