"""What the suite runs against: a row of the implementation table, a command, or an address.

A ``Target`` knows how to reach the server, whether the suite owns its process (so /proc
checks and lifecycle checks apply), and how to start a fresh instance of it for scenarios
that need their own (restart on the same port, SIGTERM with connections open, ...).
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conformance.harness.build import BuildError, ensure_cpp_built
from conformance.harness.sanitizers import sanitizer_report
from conformance.harness.servers import (
    STARTUP_TIMEOUT_S,
    Address,
    ServerProcess,
    ServerStartError,
    spawn_command,
    start_announcing,
    start_command,
    until_announced,
)
from impls.table import ANNOUNCES, NEEDS_CPP_BUILD, STANDARD, Implementation

EXTERNAL = "external"
WHOLE_STDERR = 1 << 20  # where a sanitizer report is looked for: all the stderr kept


@dataclass(frozen=True)
class TargetSpec:
    """How to obtain a server: exactly one of implementation, command or address is set."""

    name: str
    implementation: Implementation | None = None
    command: str | None = None
    address: Address | None = None
    host: str = "127.0.0.1"
    startup_timeout: float = STARTUP_TIMEOUT_S
    # What an external command declares it can do (--server-capabilities); rows declare their own.
    capabilities: frozenset[str] = frozenset()

    def has(self, capability: str) -> bool:
        """External servers have only the capabilities declared for them (none by default)."""
        if self.implementation is not None:
            return self.implementation.has(capability)
        return capability in self.capabilities

    def launch(self, host: str | None = None, port: int = 0) -> tuple[ServerProcess, Address]:
        """Start a fresh server process and wait until it is ready."""
        host = host or self.host
        if self.implementation is not None:
            if self.implementation.has(NEEDS_CPP_BUILD):
                ensure_cpp_built(Path(self.implementation.command[0]).parent)  # the variant it runs
            argv = self.implementation.argv(host, port)
            return start_announcing(argv, self.startup_timeout, env=self.implementation.env())
        if self.command is not None and self.has(ANNOUNCES):
            return self._start_announcing_command(host, port)
        if self.command is not None:
            return start_command(self.command, host, self.startup_timeout)
        raise RuntimeError(f"{self.name}: the suite cannot start a server given only an address")

    def _start_announcing_command(self, host: str, port: int) -> tuple[ServerProcess, Address]:
        """A command declared to announce is trusted like a row: its announce line means ready."""
        assert self.command is not None
        return until_announced(spawn_command(self.command, host, port), self.startup_timeout)

    @property
    def can_launch(self) -> bool:
        return self.address is None


@dataclass
class Target:
    """A running server under test."""

    spec: TargetSpec
    address: Address
    server: ServerProcess | None  # None when the suite did not start it (--server-addr)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int:
        """The server's pid; skips the calling test when the suite did not start the server."""
        if self.server is None:
            pytest.skip("needs the server's process: the suite did not start it (--server-addr)")
        return self.server.pid

    def death(self) -> str | None:
        """If the server the suite started has exited, say how; None while it runs."""
        if self.server is None or (code := self.server.process.poll()) is None:
            return None
        self.server.stop()  # collects its stderr and closes our ends of its pipes
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with {code}"
        stderr = sanitizer_report(self.server.stderr_text(limit=WHOLE_STDERR)) or self.server.stderr_text()
        return f"{self.name}: the server process {how} during this test\n  stderr:\n{stderr}"

    def restart(self) -> None:
        """Start a fresh instance so later scenarios get a verdict of their own."""
        self.server, self.address = self.spec.launch()

    def require(self, capability: str) -> None:
        """Skip the calling test, with the reason, unless the target has the capability."""
        if not self.spec.has(capability):
            what = (
                "external servers are not assumed to have it (declare it with --server-capabilities)"
                if self.spec.implementation is None
                else "this row does not declare it"
            )
            pytest.skip(f"needs capability {capability!r}: {what}")

    def require_launch(self) -> None:
        """Skip the calling test unless the suite can start fresh instances of this server."""
        if not self.spec.can_launch:
            pytest.skip("needs to start the server itself: only an address was given (--server-addr)")


def parse_capabilities(values: list[str]) -> frozenset[str]:
    """``--server-capabilities`` values (repeatable, comma lists) as a set; unknown names are errors."""
    declared = frozenset(name.strip() for value in values for name in value.split(",") if name.strip())
    if unknown := declared - STANDARD:
        raise ValueError(f"unknown capabilities {sorted(unknown)}; known: {', '.join(sorted(STANDARD))}")
    return declared


def open_target(spec: TargetSpec) -> Target:
    if spec.address is not None:
        return Target(spec, spec.address, None)
    server, address = spec.launch()
    return Target(spec, address, server)


def close_target(target: Target) -> str | None:
    """Stop a server the suite started; return a problem to report, or None."""
    if target.server is None:
        return None
    code, elapsed = target.server.stop()
    report = sanitizer_report(target.server.stderr_text(limit=WHOLE_STDERR))
    if target.spec.implementation is not None and report:
        return f"{target.name}: a sanitizer reported in the server's stderr (exit status {code}):\n{report}"
    if target.spec.implementation is not None and code != 0:
        return (
            f"{target.name}: server exited with {code} after SIGTERM (expected 0) "
            f"in {elapsed:.2f} s\n  stderr:\n{target.server.stderr_text()}"
        )
    return None


@contextlib.contextmanager
def serving(spec: TargetSpec) -> Iterator[Target]:
    """The body of a session fixture: a server that fails to start, or stops badly, fails the
    test that reaches it, with the server's own words."""
    try:
        running = open_target(spec)
    except (BuildError, ServerStartError) as exc:
        pytest.fail(f"{spec.name}: {exc}", pytrace=False)
    yield running
    if problem := close_target(running):
        pytest.fail(problem, pytrace=False)
