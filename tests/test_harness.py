"""The harness ends every broken start or stop in a clear error within its deadline, never a hang."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conformance.harness.servers import (
    STOP_TIMEOUT_S,
    Address,
    ServerProcess,
    ServerStartError,
    free_port,
    launch,
)
from conformance.harness.targets import Target, TargetSpec
from impls.table import ANNOUNCES, BY_NAME, IMPLEMENTATIONS, Implementation

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
        server.wait_ready(None, timeout=SHORT_DEADLINE_S)
    assert time.monotonic() - started < SHORT_DEADLINE_S + SLACK_S
    assert server.process.poll() is not None, "the silent server must have been killed"


def test_server_that_crashes_at_start_shows_its_exit_code_and_stderr() -> None:
    started = time.monotonic()
    with pytest.raises(ServerStartError, match=r"exited \(3\) before announcing") as failure:
        launch(python(CRASHES), timeout=10.0)
    assert "cannot open config: /etc/nowhere" in str(failure.value)
    assert time.monotonic() - started < SLACK_S


def test_server_that_ignores_sigterm_is_killed_and_reported() -> None:
    server, address = launch(python(IGNORES_SIGTERM))
    assert address.port > 0
    code, elapsed = server.stop()
    assert code == -9, "a server that ignores SIGTERM must be killed"
    assert STOP_TIMEOUT_S <= elapsed < STOP_TIMEOUT_S + SLACK_S


def test_teardown_reports_a_built_in_server_that_does_not_exit_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    stubborn = Implementation("stubborn", tuple(python(IGNORES_SIGTERM)), frozenset(), "ignores SIGTERM")
    monkeypatch.setitem(BY_NAME, "stubborn", stubborn)
    problem = Target.open(TargetSpec("stubborn", implementation=stubborn)).close()
    assert problem is not None
    assert "exited with -9 after SIGTERM (expected 0)" in problem


def command_spec(command: str, timeout: float = 10.0, **fields: Any) -> TargetSpec:
    return TargetSpec("external", command=command, startup_timeout=timeout, **fields)


def test_command_that_never_listens_fails_at_the_deadline() -> None:
    started = time.monotonic()
    spec = command_spec(f"{sys.executable} -c 'import time; time.sleep(60)' {{port}}", SHORT_DEADLINE_S)
    with pytest.raises(ServerStartError, match=r"did not accept on 127\.0\.0\.1:"):
        spec.launch()
    assert time.monotonic() - started < SHORT_DEADLINE_S + SLACK_S


def test_command_that_exits_at_once_shows_its_stderr() -> None:
    with pytest.raises(ServerStartError, match=r"exited \(3\) before accepting") as failure:
        command_spec(f'{sys.executable} -c "{CRASHES}" {{port}}').launch()
    assert "cannot open config" in str(failure.value)
    assert failure.value.one_line() == (
        "server exited (3) before accepting (stderr: cannot open config: /etc/nowhere)"
    )


LISTENS_ON_ARGV = (
    "import socket, sys, time\n"
    "s = socket.create_server(('127.0.0.1', int(sys.argv[1])))\n"
    "if sys.argv[2:]: print(f'[server] listening on 127.0.0.1:{sys.argv[1]}', flush=True)\n"
    "time.sleep(60)\n"
)


@pytest.mark.parametrize("announces", [False, True], ids=["accept-only", "announces"])
def test_a_requested_port_is_honoured_for_every_kind_of_target(announces: bool, tmp_path: Path) -> None:
    """TargetSpec.launch(port=P) starts the server on P whether it announces or only accepts."""
    script = tmp_path / "listens.py"
    script.write_text(LISTENS_ON_ARGV)
    command = f"{sys.executable} {script} {{port}}{' announce' if announces else ''}"
    spec = command_spec(command, capabilities=frozenset({ANNOUNCES}) if announces else frozenset())
    port = free_port()
    server, address = spec.launch(port=port)
    try:
        assert address.port == port
    finally:
        server.stop()


def test_a_server_that_dies_is_replaced_and_its_death_reported() -> None:
    """The restart policy: recover() says how the server died and starts a fresh one."""
    running = Target.open(TargetSpec("threaded", implementation=BY_NAME["threaded"]))
    try:
        assert running.recover() is None, "a live server is left alone"
        old = running.require_process()
        old.process.kill()
        old.process.wait(timeout=SLACK_S)
        death = running.recover()
        assert death is not None
        assert "was killed by SIGKILL" in death
        assert running.require_process() is not old
        assert running.require_process().process.poll() is None
    finally:
        running.close()


def test_address_parsing() -> None:
    assert Address.parse("127.0.0.1:7") == Address("127.0.0.1", 7)
    assert Address.parse("[::1]:7") == Address("::1", 7)
    assert str(Address("::1", 7)) == "[::1]:7"
    with pytest.raises(ValueError, match="HOST:PORT"):
        Address.parse("localhost")
    with pytest.raises(ValueError, match=r"port 99999 is out of range \(1-65535\)"):
        Address.parse("127.0.0.1:99999")
    with pytest.raises(ValueError, match="out of range"):
        Address.parse("127.0.0.1:0")


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
