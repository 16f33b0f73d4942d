"""What the suite runs against: a row of the implementation table, a command, or an address.

A ``Target`` knows how to reach the server, whether the suite owns its process (so /proc
checks and lifecycle checks apply), and how to start a fresh instance of it for scenarios
that need their own (restart on the same port, SIGTERM with connections open, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from conformance.harness.build import ensure_cpp_built
from conformance.harness.servers import (
    STARTUP_TIMEOUT_S,
    Address,
    ServerProcess,
    start_announcing,
    start_command,
)
from impls.table import NEEDS_CPP_BUILD, Implementation

EXTERNAL = "external"


@dataclass(frozen=True)
class TargetSpec:
    """How to obtain a server: exactly one of implementation, command or address is set."""

    name: str
    implementation: Implementation | None = None
    command: str | None = None
    address: Address | None = None
    host: str = "127.0.0.1"
    startup_timeout: float = STARTUP_TIMEOUT_S

    def has(self, capability: str) -> bool:
        """External servers are assumed to have no optional capability."""
        return self.implementation is not None and self.implementation.has(capability)

    def launch(self, host: str | None = None, port: int = 0) -> tuple[ServerProcess, Address]:
        """Start a fresh server process and wait until it is ready."""
        host = host or self.host
        if self.implementation is not None:
            if self.implementation.has(NEEDS_CPP_BUILD):
                ensure_cpp_built()
            return start_announcing(self.implementation.argv(host, port), self.startup_timeout)
        if self.command is not None:
            return start_command(self.command, host, self.startup_timeout)
        raise RuntimeError(f"{self.name}: the suite cannot start a server given only an address")

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

    def require(self, capability: str) -> None:
        """Skip the calling test, with the reason, unless the target has the capability."""
        if not self.spec.has(capability):
            what = (
                "external servers are not assumed"
                if self.spec.implementation is None
                else "this row does not declare it"
            )
            pytest.skip(f"needs capability {capability!r}: {what} to have it")

    def require_launch(self) -> None:
        """Skip the calling test unless the suite can start fresh instances of this server."""
        if not self.spec.can_launch:
            pytest.skip("needs to start the server itself: only an address was given (--server-addr)")


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
    if target.spec.implementation is not None and code != 0:
        return (
            f"{target.name}: server exited with {code} after SIGTERM (expected 0) "
            f"in {elapsed:.2f} s\n  stderr:\n{target.server.stderr_text()}"
        )
    return None
