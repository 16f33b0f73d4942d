"""The harness ends every broken start or stop in a clear error within its deadline, never a hang."""

from __future__ import annotations

import socket
import sys
import time

import pytest

from conformance.harness.servers import (
    STOP_TIMEOUT_S,
    Address,
    ServerProcess,
    ServerStartError,
    start_announcing,
    start_command,
)
from conformance.harness.targets import TargetSpec, close_target, open_target
from impls.table import BY_NAME, IMPLEMENTATIONS, Implementation

SHORT_DEADLINE_S = 1.5
SLACK_S = 3.0  # process start-up and teardown on a loaded 2-core machine

NEVER_ANNOUNCES = "import time; time.sleep(60)"
CRASHES = "import sys; sys.stderr.write('cannot open config: /etc/nowhere\\n'); sys.exit(3)"
IGNORES_SIGTERM = (
    "import signal, socket, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "s = socket.create_server(('127.0.0.1', 0))\n"
    "print(f'[server] listening on 127.0.0.1:{s.getsockname()[1]}', flush=True)\n"
    "time.sleep(60)\n"
)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_server_that_never_announces_fails_at_the_deadline() -> None:
    started = time.monotonic()
    server = ServerProcess(python(NEVER_ANNOUNCES))
    with pytest.raises(ServerStartError, match="did not announce"):
        server.wait_for_announce(timeout=SHORT_DEADLINE_S)
    assert time.monotonic() - started < SHORT_DEADLINE_S + SLACK_S
    assert server.process.poll() is not None, "the silent server must have been killed"


def test_server_that_crashes_at_start_shows_its_exit_code_and_stderr() -> None:
    started = time.monotonic()
    with pytest.raises(ServerStartError, match=r"exited \(3\) before announcing") as failure:
        start_announcing(python(CRASHES), timeout=10.0)
    assert "cannot open config: /etc/nowhere" in str(failure.value)
    assert time.monotonic() - started < SLACK_S


def test_server_that_ignores_sigterm_is_killed_and_reported() -> None:
    server, address = start_announcing(python(IGNORES_SIGTERM))
    assert address.port > 0
    code, elapsed = server.stop()
    assert code == -9, "a server that ignores SIGTERM must be killed"
    assert STOP_TIMEOUT_S <= elapsed < STOP_TIMEOUT_S + SLACK_S


def test_teardown_reports_a_built_in_server_that_does_not_exit_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    stubborn = Implementation("stubborn", tuple(python(IGNORES_SIGTERM)), frozenset(), "ignores SIGTERM")
    monkeypatch.setitem(BY_NAME, "stubborn", stubborn)
    target = open_target(TargetSpec("stubborn", implementation=stubborn))
    problem = close_target(target)
    assert problem is not None
    assert "exited with -9 after SIGTERM (expected 0)" in problem


def test_command_that_never_listens_fails_at_the_deadline() -> None:
    started = time.monotonic()
    with pytest.raises(ServerStartError, match=r"did not accept on 127\.0\.0\.1:"):
        start_command(
            f"{sys.executable} -c 'import time; time.sleep(60)' {{port}}", "127.0.0.1", SHORT_DEADLINE_S
        )
    assert time.monotonic() - started < SHORT_DEADLINE_S + SLACK_S


def test_command_that_exits_at_once_shows_its_stderr() -> None:
    with pytest.raises(ServerStartError, match=r"exited \(3\) before accepting") as failure:
        start_command(f'{sys.executable} -c "{CRASHES}" {{port}}', "127.0.0.1", 10.0)
    assert "cannot open config" in str(failure.value)


def test_address_parsing() -> None:
    assert Address.parse("127.0.0.1:7") == Address("127.0.0.1", 7)
    assert Address.parse("[::1]:7") == Address("::1", 7)
    assert str(Address("::1", 7)) == "[::1]:7"
    with pytest.raises(ValueError, match="HOST:PORT"):
        Address.parse("localhost")


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS, ids=lambda impl: impl.name)
def test_port_in_use_is_a_clear_error(implementation: Implementation) -> None:
    spec = TargetSpec(implementation.name, implementation=implementation)
    with socket.create_server(("127.0.0.1", 0)) as busy:
        started = time.monotonic()
        with pytest.raises(ServerStartError, match=r"exited \(2\) before announcing") as failure:
            spec.launch(port=busy.getsockname()[1])
    assert time.monotonic() - started < SLACK_S
    stderr = str(failure.value).split("stderr:\n", 1)[1]
    assert "Address already in use" in stderr
    assert len(stderr.strip().splitlines()) == 1, f"expected a one-line error, got:\n{stderr}"
