"""What the suite runs against: a row of the implementation table, a command, or an address.

A ``Target`` knows how to reach the server, whether the suite owns its process (so /proc
checks and lifecycle checks apply), and how to start a fresh instance of it for scenarios
that need their own (restart on the same port, SIGTERM with connections open, ...).
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
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
    start_command,
    until_announced,
)
from conformance.harness.tls import ClientTLS, TestCertificates
from impls.table import ANNOUNCES, NEEDS_CPP_BUILD, STANDARD, TLS, Implementation

EXTERNAL = "external"
TCP = "tcp"
TRANSPORTS = (TCP, TLS)
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
    transport: str = TCP
    # TLS: the suite's test certificate, given to servers the suite starts ({cert}, {key}), and
    # how the client trusts the server (that certificate's CA, --tls-cafile, or --tls-insecure).
    certificates: TestCertificates | None = None
    client_tls: ClientTLS | None = None

    def has(self, capability: str) -> bool:
        """External servers have only the capabilities declared for them (none by default)."""
        if self.implementation is not None:
            return self.implementation.has(capability)
        return capability in self.capabilities

    @property
    def tls(self) -> bool:
        return self.transport == TLS

    def reach(self, address: Address) -> Address:
        """The address as the client must use it: over TLS, with this target's client settings."""
        return Address(address.host, address.port, self.client_tls if self.tls else None)

    def spawn(self, host: str | None = None, port: int = 0) -> ServerProcess:
        """Start a server process without waiting for it (a row, or --server-cmd filled in)."""
        host = host or self.host
        if self.implementation is not None:
            if self.implementation.has(NEEDS_CPP_BUILD):
                ensure_cpp_built(Path(self.implementation.command[0]).parent)  # the variant it runs
            files = self.certificates.files() if self.tls and self.certificates else None
            return ServerProcess(self.implementation.argv(host, port, files), env=self.implementation.env())
        if self.command is None:
            raise RuntimeError(f"{self.name}: the suite cannot start a server given only an address")
        return spawn_command(self.command, host, port, self._placeholders())

    def launch(self, host: str | None = None, port: int = 0) -> tuple[ServerProcess, Address]:
        """Start a fresh server process and wait until it is ready."""
        host = host or self.host
        if self.implementation is not None or self.has(ANNOUNCES):
            # A row, or a command declared to announce: its announce line means ready.
            server, address = until_announced(self.spawn(host, port), self.startup_timeout)
        elif self.command is not None:
            server, address = start_command(self.command, host, self.startup_timeout, self._placeholders())
        else:
            raise RuntimeError(f"{self.name}: the suite cannot start a server given only an address")
        return server, self.reach(address)

    def _placeholders(self) -> dict[str, str]:
        return self.certificates.placeholders() if self.certificates else {}

    @property
    def can_launch(self) -> bool:
        return self.address is None

    def unavailable(self) -> str | None:
        """Why this target cannot run here (a row without TLS asked for TLS), or None."""
        if not self.tls or self.implementation is None:
            return None
        if not self.implementation.has(TLS):
            return f"{self.implementation.name} does not speak TLS"
        if self.implementation.has(NEEDS_CPP_BUILD):
            return cpp_without_tls(Path(self.implementation.command[0]))
        return None


def cpp_without_tls(binary: Path) -> str | None:
    """The reason a C++ server binary cannot do TLS (built without OpenSSL), or None."""
    ensure_cpp_built(binary.parent)
    version = subprocess.run(
        [str(binary), "--version"], capture_output=True, text=True, timeout=10, check=False
    ).stdout.strip()
    if "tls=none" in version:
        return f"TLS is unsupported: {binary} was built without OpenSSL ({version!r}); install libssl-dev"
    return None


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

    def death(self, grace: float = 0.0) -> str | None:
        """If the server the suite started has exited (waiting up to ``grace`` seconds for it
        to), say how; None while it runs."""
        if self.server is None:
            return None
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.server.process.wait(timeout=grace)
        if (code := self.server.process.poll()) is None:
            return None
        self.server.stop()  # collects its stderr and closes our ends of its pipes
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with {code}"
        stderr = sanitizer_report(self.server.stderr_text(limit=WHOLE_STDERR)) or self.server.stderr_text()
        return f"{self.name}: the server process {how} during this test\n  stderr:\n{stderr}"

    def restart(self) -> None:
        """Start a fresh instance so later scenarios get a verdict of their own."""
        self.server, self.address = self.spec.launch()

    def require_tls(self) -> None:
        """Skip the calling test unless the target speaks TLS."""
        if not self.spec.tls:
            pytest.skip("a TLS scenario: runs only on the TLS transport (the [...-tls] targets)")

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


@contextlib.contextmanager
def fresh_server(
    target: Target, *capabilities: str, host: str | None = None, port: int = 0
) -> Iterator[tuple[ServerProcess, Address]]:
    """A private instance of the target's server, stopped (or killed) afterwards.

    Skips, with the reason, unless the suite can start the server and it has ``capabilities``.
    """
    target.require_launch()
    for capability in capabilities:
        target.require(capability)
    server, address = target.spec.launch(host=host, port=port)
    try:
        yield server, address
    finally:
        server.stop()


def parse_capabilities(values: list[str]) -> frozenset[str]:
    """``--server-capabilities`` values (repeatable, comma lists) as a set; unknown names are errors."""
    declared = frozenset(name.strip() for value in values for name in value.split(",") if name.strip())
    if unknown := declared - STANDARD:
        raise ValueError(f"unknown capabilities {sorted(unknown)}; known: {', '.join(sorted(STANDARD))}")
    return declared


def open_target(spec: TargetSpec) -> Target:
    if spec.address is not None:
        return Target(spec, spec.reach(spec.address), None)
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
    test that reaches it, with the server's own words. A target that cannot run here (TLS
    without OpenSSL) skips, with the reason."""
    if reason := spec.unavailable():
        pytest.skip(reason)
    try:
        running = open_target(spec)
    except (BuildError, ServerStartError) as exc:
        pytest.fail(f"{spec.name}: {exc}", pytrace=False)
    yield running
    if problem := close_target(running):
        pytest.fail(problem, pytrace=False)
