"""What the suite runs against: a row of the implementation table, a command, or an address.

A ``TargetSpec`` says how to obtain a server; ``TargetSpec.launch`` is the one way to a ready
one, for every kind of target and on any port asked for. A ``Target`` is a running server
under test: it knows how to reach it, whether the suite owns its process (so /proc checks and
lifecycle checks apply), and the one restart policy (``recover``): a server the suite started
that has died is charged to whoever was using it, and replaced by a fresh instance for what
comes next. The conformance plugin applies it around every test to every ``Target`` a test
uses (the conformance ``target``, the benchmarks' ``server``), and STATE's machine between its
examples; scenarios that need an instance of their own (restart on the same port, SIGTERM with
connections open, ...) take one from ``fresh_server``.
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import socket
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
    fill_command,
    free_port,
    launch,
)
from conformance.harness.tls import ClientTLS, TestCertificates
from impls.table import ANNOUNCES, NEEDS_CPP_BUILD, STANDARD, TCP, TLS, Implementation

EXTERNAL = "external"
WHOLE_STDERR = 1 << 20  # where a sanitizer report is looked for: all the stderr kept
REACH_TIMEOUT_S = 5.0  # the up-front check of a --server-addr


class ServerUnavailable(RuntimeError):
    """The server could not be started or reached; the message is one line."""


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

    @property
    def can_launch(self) -> bool:
        return self.address is None

    def reach(self, address: Address) -> Address:
        """The address as the client must use it: over TLS, with this target's client settings."""
        return Address(address.host, address.port, self.client_tls if self.tls else None)

    def start(self, host: str | None = None, port: int = 0) -> ServerProcess:
        """The server's process, started and not waited for (the busy-port scenarios watch it
        fail); ``launch`` is the way to a ready server."""
        return ServerProcess(*self._command(host or self.host, port))

    def launch(self, host: str | None = None, port: int = 0) -> tuple[ServerProcess, Address]:
        """Start a fresh server and return it once it is ready, with the address to connect to.

        A row, or a command declared to announce, is ready at its announce line (port 0: the
        port it announces). Any other command is ready once it accepts on ``port`` -- a free
        one picked here when ``port`` is 0, since such a command cannot say which it took.
        """
        host = host or self.host
        announces = self.implementation is not None or self.has(ANNOUNCES)
        if not announces and port == 0:
            port = free_port(host)
        argv, shell, env = self._command(host, port)
        ready_at = None if announces else Address(host, port)
        server, address = launch(argv, ready_at=ready_at, shell=shell, env=env, timeout=self.startup_timeout)
        return server, self.reach(address)

    def _command(self, host: str, port: int) -> tuple[list[str], bool, dict[str, str] | None]:
        """(argv, whether it is a shell command, environment) of a server on ``host:port``."""
        if self.implementation is not None:
            if self.implementation.has(NEEDS_CPP_BUILD):
                ensure_cpp_built(Path(self.implementation.command[0]).parent)  # the variant it runs
            files = self.certificates.files() if self.tls and self.certificates else None
            return self.implementation.argv(host, port, files), False, self.implementation.env()
        if self.command is None:
            raise RuntimeError(f"{self.name}: the suite cannot start a server given only an address")
        placeholders = self.certificates.placeholders() if self.certificates else {}
        return [fill_command(self.command, host, port, placeholders)], True, None

    def unavailable(self) -> str | None:
        """Why this target cannot run here (a row without TLS asked for TLS), or None."""
        if not self.tls or self.implementation is None:
            return None
        if not self.implementation.has(TLS):
            return f"{self.implementation.name} does not speak TLS"
        if self.implementation.has(NEEDS_CPP_BUILD):
            return cpp_without_tls(Path(self.implementation.command[0]))
        return None

    def check_available(self) -> None:
        """The up-front check of a run: the server can be started (and stopped), or reached at
        its address. Raises ServerUnavailable with one line that says why not."""
        if self.unavailable():
            return  # its tests skip, with the reason
        if self.address is not None:
            try:
                socket.create_connection(
                    (self.address.host, self.address.port), timeout=REACH_TIMEOUT_S
                ).close()
            except OSError as exc:
                raise ServerUnavailable(f"cannot reach {self.address}: {exc.strerror or exc}") from exc
            return
        try:
            server, _ = self.launch()
        except BuildError as exc:
            raise ServerUnavailable(f"{self.name}: {str(exc).splitlines()[0]}") from exc
        except ServerStartError as exc:
            raise ServerUnavailable(f"{self.name}: {exc.one_line()}") from exc
        server.stop()

    def replay_options(self) -> list[str]:
        """The echo-conformance options that select this target again."""
        if self.implementation is not None:
            options = ["--impl", self.implementation.name]
        elif self.command is not None:
            options = ["--server-cmd", self.command]
            if self.capabilities:
                options += ["--server-capabilities", ",".join(sorted(self.capabilities))]
        else:
            options = [str(self.address)]
        return [*options, "--transport", self.transport]


def replay_command(spec: TargetSpec, scenario_id: str, extra: list[str]) -> str:
    """A shell command line that runs one scenario against one target again."""
    return shlex.join(["echo-conformance", *spec.replay_options(), "--scenario", scenario_id, *extra])


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

    @classmethod
    def open(cls, spec: TargetSpec) -> Target:
        """The server of a spec: started (and ready), or the running one at its address."""
        if spec.address is not None:
            return cls(spec, spec.reach(spec.address), None)
        server, address = spec.launch()
        return cls(spec, address, server)

    @property
    def name(self) -> str:
        return self.spec.name

    def require_process(self) -> ServerProcess:
        """The server's process; skips the calling test when the suite did not start the server."""
        if self.server is None:
            pytest.skip("needs the server's process: the suite did not start it (--server-addr)")
        return self.server

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
        return f"{self.name}: the server process {how}\n  stderr:\n{stderr}"

    def recover(self) -> str | None:
        """The restart policy: if the server the suite started has died, start a fresh instance
        and return how the old one died; None if it is alive (or not the suite's to restart)."""
        if (death := self.death()) is not None:
            self.restart()
        return death

    def restart(self) -> None:
        """Replace the server with a fresh instance (stopping the old one if it still runs)."""
        if self.server is not None:
            self.server.stop()
        self.server, self.address = self.spec.launch()

    def close(self) -> str | None:
        """Stop a server the suite started; return a problem to report, or None."""
        if self.server is None:
            return None
        code, elapsed = self.server.stop()
        report = sanitizer_report(self.server.stderr_text(limit=WHOLE_STDERR))
        if self.spec.implementation is not None and report:
            return f"{self.name}: a sanitizer reported in the server's stderr (exit status {code}):\n{report}"
        if self.spec.implementation is not None and code != 0:
            return (
                f"{self.name}: server exited with {code} after SIGTERM (expected 0) "
                f"in {elapsed:.2f} s\n  stderr:\n{self.server.stderr_text()}"
            )
        return None

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


@contextlib.contextmanager
def serving(spec: TargetSpec) -> Iterator[Target]:
    """The body of a session fixture: a server that fails to start, or stops badly, fails the
    test that reaches it, with the server's own words. A target that cannot run here (TLS
    without OpenSSL) skips, with the reason."""
    if reason := spec.unavailable():
        pytest.skip(reason)
    try:
        running = Target.open(spec)
    except (BuildError, ServerStartError) as exc:
        pytest.fail(f"{spec.name}: {exc}", pytrace=False)
    yield running
    if problem := running.close():
        pytest.fail(problem, pytrace=False)
