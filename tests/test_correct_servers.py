"""The suite passes correct servers it was not written against: no false MUST failures.

The built-in implementations are what the scenarios were developed with; these three are not.
Each is correct in its own style -- a hand-written ``selectors`` loop with a bounded output
buffer per connection, asyncio streams with ``await drain()``, a blocking C server that forks a
child per connection -- and declares what it can do (announce line, exit 0 on SIGTERM/SIGINT,
IPv6), so every scenario runs: the whole suite, every family, must give no FAIL. A SHOULD
scenario may be NON-STRICT (the TIMING ones measure latency, which a loaded machine can spoil);
on these servers they pass as well.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from suite_runs import CORRECT, run_suite, server_command

from conformance.harness.report import SKIP

pytestmark = pytest.mark.selftest

SERVERS = sorted([*CORRECT.glob("*.py"), *CORRECT.glob("*.c")])
CAPABILITIES = "announces,graceful-exit,ipv6"
# Scenarios that skip for any --server-cmd server, whatever it declares.
ALWAYS_SKIPPED = {"LIFE-007"}  # the exit-2 one-line error contract is the built-in servers' own
TLS_ONLY = "TLS-"  # the TLS family runs on the TLS transport only; these servers speak plain TCP


@pytest.mark.parametrize("source", SERVERS, ids=lambda path: path.name)
def test_correct_server_passes_everything(source: Path, tmp_path: Path) -> None:
    command = server_command(source, "{port} {host}")
    run = run_suite(command, tmp_path, "--server-capabilities", CAPABILITIES)
    verdicts = run.verdicts()
    assert verdicts, f"the child run produced no matrix\n{run.explain()}"
    assert not run.failed(), (
        f"{source.name} is correct, yet these scenarios FAIL: {run.failed()}\n{run.explain()}"
    )
    skipped = {
        key for key, verdict in verdicts.items() if verdict == SKIP and not key.startswith(TLS_ONLY)
    } - ALWAYS_SKIPPED
    assert not skipped, f"{source.name} declares {CAPABILITIES}, yet these scenarios skipped: {skipped}"
    assert run.returncode == 0, f"no FAIL in the matrix, yet the child run failed\n{run.explain()}"
