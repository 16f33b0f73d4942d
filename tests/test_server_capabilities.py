"""--server-capabilities: what a --server-cmd server declares it can do, so scenarios that need
it (the LIFE family) run on it instead of skipping.

External servers are assumed to have no optional capability; the option declares them
(comma-separated or repeated). A server declared to announce is started like a built-in row:
with port 0 filled in, its announce line is what says it is ready, and where.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from suite_runs import CORRECT, run_suite, server_command

from conformance.harness.report import PASS, SKIP
from conformance.harness.targets import EXTERNAL, TargetSpec, parse_capabilities
from impls.table import ANNOUNCES, GRACEFUL_EXIT, IPV6

ROOT = Path(__file__).resolve().parent.parent  # the clone these tests run in

SELECTORS_ECHO = CORRECT / "selectors_echo.py"


def test_parses_comma_lists_and_repeats() -> None:
    assert parse_capabilities(["announces,ipv6", " graceful-exit "]) == {ANNOUNCES, IPV6, GRACEFUL_EXIT}
    assert parse_capabilities([]) == frozenset()


def test_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match=r"unknown capabilities \['announce'\]"):
        parse_capabilities(["announce"])


def test_external_spec_has_only_what_it_declares() -> None:
    bare = TargetSpec(EXTERNAL, command="x {port}")
    declared = TargetSpec(EXTERNAL, command="x {port}", capabilities=frozenset({ANNOUNCES}))
    assert not bare.has(ANNOUNCES)
    assert declared.has(ANNOUNCES)
    assert not declared.has(GRACEFUL_EXIT)


def test_announcing_command_is_started_on_port_zero_and_found_by_its_announcement() -> None:
    command = f"{sys.executable} {SELECTORS_ECHO} {{port}} {{host}}"
    spec = TargetSpec(EXTERNAL, command=command, capabilities=frozenset({ANNOUNCES}))
    server, address = spec.launch()
    try:
        assert address.port != 0
        with socket.create_connection((address.host, address.port), timeout=5.0) as sock:
            sock.sendall(b"ping")
            assert sock.recv(4) == b"ping"
    finally:
        code, _ = server.stop()
    assert code == 0, f"selectors_echo.py exits 0 on SIGTERM; got {code}"


@pytest.mark.parametrize(
    ("declared", "verdict"), [((), SKIP), (("--server-capabilities", "announces,graceful-exit"), PASS)]
)
def test_declared_capabilities_let_life_scenarios_run(
    declared: tuple[str, ...], verdict: str, tmp_path: Path
) -> None:
    run = run_suite(
        server_command(SELECTORS_ECHO), tmp_path, "--scenario", "LIFE-003", *declared, timeout=60.0
    )
    assert run.verdicts() == {"LIFE-003": verdict}, run.explain()


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        (["--server-cmd", "x {port}", "--server-capabilities", "fast"], "unknown capabilities"),
        (["--server-capabilities", "ipv6"], "describes a --server-cmd server"),
    ],
)
def test_misuse_is_a_usage_error(options: list[str], complaint: str) -> None:
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "conformance",
        "-p",
        "no:cacheprovider",
        "--collect-only",
        *options,
    ]
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    assert complaint in result.stderr
