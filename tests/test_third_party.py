"""Third-party echo servers get exactly the verdicts tests/third_party.py records for them.

Each server runs the whole suite (one child pytest, derandomized). Every scenario's verdict
must be one the table allows: PASS or SKIP when the table does not list the scenario, the
listed verdict(s) when it does. So a new false failure fails this test, and so does a defect
that stops showing (an expected FAIL that passes): the table stays true. Every listed
verdict names an evidence script in tests/evidence/ that reproduces the defect outside the
suite; the second test runs them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from suite_runs import run_suite
from third_party import EVIDENCE, LIBRARY_DEFECTS, REPORT_ONLY, SERVERS, ThirdPartyServer

from conformance.harness.report import NON_STRICT, PASS

pytestmark = pytest.mark.selftest

EVIDENCE_TIMEOUT_S = 180.0  # the race scripts' attempt budgets (at most 100 s) plus their controls
CHILD_TIMEOUT_S = 600.0  # ncat deadlocks in several scenarios, each of which then waits out its timeout


def skip_unless_runnable(server: ThirdPartyServer) -> None:
    missing = [program for program in server.programs if shutil.which(program) is None]
    if missing:
        pytest.skip(f"{server.name}: {', '.join(missing)} not installed (CI installs them all)")
    if server.precondition is not None:
        command, why = server.precondition
        probe = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
        if probe.returncode != 0:
            pytest.skip(f"{server.name}: {' '.join(command)} failed ({probe.stderr.strip()}); {why}")


@pytest.mark.parametrize("server", SERVERS, ids=lambda server: server.name)
def test_verdicts_match_the_table(server: ThirdPartyServer, tmp_path: Path) -> None:
    skip_unless_runnable(server)
    run = run_suite(server.command, tmp_path, *server.options, profile="selftest", timeout=CHILD_TIMEOUT_S)
    verdicts = run.verdicts()
    assert verdicts, f"{server.name}: the child run produced no matrix\n{run.explain()}"
    wrong = {
        scenario_id: f"{verdict}, expected {' or '.join(sorted(server.allowed(scenario_id)))}"
        for scenario_id, verdict in sorted(verdicts.items())
        if verdict not in server.allowed(scenario_id)
    }
    assert not wrong, (
        f"{server.name}: the matrix disagrees with tests/third_party.py: {wrong}\n{run.explain()}"
    )
    not_run = sorted(set(server.expected) - set(verdicts))
    assert not not_run, f"{server.name}: tests/third_party.py lists scenarios that did not run: {not_run}"


EVIDENCE_SCRIPTS = sorted(
    {entry.evidence for server in SERVERS for entry in server.expected.values()} | set(LIBRARY_DEFECTS)
)


def test_every_evidence_script_is_cited() -> None:
    """An evidence script reproduces a verdict the table records, or a library defect it lists;
    anything else in tests/evidence/ is a helper, named with a leading underscore."""
    scripts = {path.name for path in EVIDENCE.glob("*.py") if not path.name.startswith("_")}
    assert scripts == set(EVIDENCE_SCRIPTS), (
        f"not cited by tests/third_party.py: {sorted(scripts - set(EVIDENCE_SCRIPTS))}; "
        f"cited but missing: {sorted(set(EVIDENCE_SCRIPTS) - scripts)}"
    )


NAGLE_SERVERS = [server for server in SERVERS if NON_STRICT in server.allowed("TIMING-002")]


@pytest.mark.parametrize("server", NAGLE_SERVERS, ids=lambda server: server.name)
def test_nagle_servers_may_pass_or_stall_on_a_split_message(server: ThirdPartyServer) -> None:
    """A server that Nagle holds back on a 16 KiB echo (TIMING-002 NON-STRICT) has no TCP_NODELAY, so
    whether a 10 + 54-byte message stalls (TIMING-003) depends on how its reads fall: a race. The
    table must allow both verdicts, or a run where the race did not show up fails a good commit."""
    assert server.allowed("TIMING-003") == {PASS, NON_STRICT}, (
        f"{server.name}: TIMING-002 is NON-STRICT (Nagle) but TIMING-003 allows only "
        f"{sorted(server.allowed('TIMING-003'))}"
    )


def test_report_only_scripts_are_evidence() -> None:
    """Only a cited evidence script can be taken out of the gate."""
    assert set(REPORT_ONLY) <= set(EVIDENCE_SCRIPTS), sorted(set(REPORT_ONLY) - set(EVIDENCE_SCRIPTS))


@pytest.mark.parametrize(
    "script",
    [
        pytest.param(script, marks=pytest.mark.report_only) if script in REPORT_ONLY else script
        for script in EVIDENCE_SCRIPTS
    ],
)
def test_evidence_reproduces(script: str) -> None:
    users = [server for server in SERVERS if any(e.evidence == script for e in server.expected.values())]
    for server in users:
        skip_unless_runnable(server)
    path = EVIDENCE / script
    assert path.exists(), f"tests/third_party.py cites {script}, which does not exist"
    result = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=EVIDENCE_TIMEOUT_S, check=False
    )
    assert result.returncode == 0, (
        f"{script} did not reproduce the defect (exit {result.returncode}):\n{result.stdout}{result.stderr}"
    )
