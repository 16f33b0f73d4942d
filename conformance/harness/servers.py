"""Start, watch and stop the echo server under test.

One launcher, ``launch()``: it starts the process and returns it once it is ready. Two ways
to know a server is ready, both against a deadline:
- a built-in server announces ``[server] listening on HOST:PORT`` on stdout after listen();
- an external command (``--server-cmd``) need not announce anything, so the harness connects
  until the port accepts, checking all the while that the process is still alive.
Every failure names what went wrong and shows the server's stderr.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO

from conformance.harness.tls import ClientTLS

ANNOUNCE = re.compile(rb"^\[server\] listening on \[?(?P<host>[^\]\s]*)\]?:(?P<port>\d+)")
STARTUP_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 1.0  # the time a built-in server is allowed to exit after SIGTERM
KILL_TIMEOUT_S = 5.0
CONNECT_PROBE_INTERVAL_S = 0.02
MAX_PORT = 65535


class ServerStartError(RuntimeError):
    """The server did not become ready; the message says why and shows its stderr."""

    def __init__(self, problem: str, command: str, stderr: str) -> None:
        super().__init__(f"{problem}\n  command: {command}\n  stderr:\n{stderr.strip() or '(empty)'}")
        self.problem = problem
        self.stderr = stderr

    def one_line(self) -> str:
        """The problem and the last line the server wrote on stderr, for a one-line report."""
        last = next((line.strip() for line in reversed(self.stderr.splitlines()) if line.strip()), "")
        return f"{self.problem} (stderr: {last})" if last else f"{self.problem} (nothing on stderr)"


@dataclass(frozen=True)
class Address:
    host: str
    port: int
    # How to speak TLS to the server there; None: plain TCP. Not part of the address's identity.
    tls: ClientTLS | None = field(default=None, compare=False, repr=False)

    @property
    def family(self) -> socket.AddressFamily:
        return socket.AF_INET6 if ":" in self.host else socket.AF_INET

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def at(self, host: str, port: int) -> Address:
        """Another address reached the same way (TLS or not), e.g. a proxy in front of this one."""
        return Address(host, port, self.tls)

    @classmethod
    def parse(cls, text: str) -> Address:
        """Parse ``HOST:PORT`` or ``[V6HOST]:PORT``; the port must be 1-65535."""
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit() or not host.strip("[]"):
            raise ValueError(f"expected HOST:PORT (or [V6HOST]:PORT), got {text!r}")
        if not 1 <= int(port) <= MAX_PORT:
            raise ValueError(f"port {port} is out of range (1-{MAX_PORT}) in {text!r}")
        return cls(host.strip("[]"), int(port))


def connectable_host(bound_host: str) -> str:
    """Where to connect to reach a server bound to ``bound_host`` (wildcards -> loopback)."""
    return {
        "0.0.0.0": "127.0.0.1",  # noqa: S104 - a name to translate, not an address to bind
        "::": "::1",
        "": "127.0.0.1",
    }.get(bound_host, bound_host)


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free a moment ago, for servers that cannot be told to use port 0."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class ServerProcess:
    """A server process the harness started, with its stderr kept in a temporary file."""

    argv: list[str]
    shell: bool = False
    env: dict[str, str] | None = None
    process: subprocess.Popen[bytes] = field(init=False)
    stdout_lines: list[bytes] = field(init=False, default_factory=list)
    _stderr: IO[bytes] = field(init=False)
    _pending_stdout: bytes = field(init=False, default=b"")
    _stdout_reader: threading.Thread | None = field(init=False, default=None)
    _final_stderr: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
        command: str | list[str] = self.argv[0] if self.shell else self.argv
        self.process = subprocess.Popen(
            command,
            shell=self.shell,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            start_new_session=True,  # its own process group: teardown reaches forked children
            env=self.env,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def command_text(self) -> str:
        return self.argv[0] if self.shell else " ".join(self.argv)

    def stderr_text(self, limit: int = 4000) -> str:
        if self._final_stderr is None:
            self._stderr.seek(0)
            text = self._stderr.read().decode(errors="replace")
        else:
            text = self._final_stderr
        return text if len(text) <= limit else "...\n" + text[-limit:]

    def _release(self) -> None:
        """Once the process is gone: keep its stderr text, close our ends of its pipes."""
        if self._final_stderr is not None:
            return
        self._final_stderr = self.stderr_text(limit=1 << 20)
        self._stderr.close()
        if self._stdout_reader is not None:
            self._stdout_reader.join(timeout=KILL_TIMEOUT_S)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def _start_error(self, problem: str) -> ServerStartError:
        return ServerStartError(problem, self.command_text, self.stderr_text())

    def wait_ready(self, at: Address | None, timeout: float) -> Address:
        """Wait until the server is ready and return where to connect: with ``at`` None, until
        it announces its address; otherwise until it accepts at ``at``. Raises ServerStartError
        (the process is gone by then) if it exits first or the deadline passes."""
        if at is None:
            announced = self._wait_for_announce(timeout)
            return Address(connectable_host(announced.host), announced.port)
        self._wait_until_accepting(at, timeout)
        return at

    def _wait_for_announce(self, timeout: float) -> Address:
        """Read stdout until the announce line, the process's exit, or the deadline."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while (remaining := deadline - time.monotonic()) > 0:
                if not selector.select(remaining):
                    continue
                chunk = os.read(self.process.stdout.fileno(), 4096)
                if not chunk:
                    code = self.process.wait(timeout=KILL_TIMEOUT_S)
                    self._release()
                    raise self._start_error(f"server exited ({code}) before announcing")
                if (address := self._consume_stdout(chunk)) is not None:
                    self._drain_stdout_in_background()
                    return address
        self.kill()
        raise self._start_error(f"server did not announce '[server] listening on ...' within {timeout} s")

    def _consume_stdout(self, chunk: bytes) -> Address | None:
        *lines, self._pending_stdout = (self._pending_stdout + chunk).split(b"\n")
        self.stdout_lines.extend(lines)
        for line in lines:
            if match := ANNOUNCE.match(line):
                return Address(match["host"].decode(), int(match["port"]))
        return None

    def _drain_stdout_in_background(self) -> None:
        # Keep reading so a chatty server never blocks on a full pipe.
        stdout = self.process.stdout
        assert stdout is not None
        self._stdout_reader = threading.Thread(target=lambda: self.stdout_lines.extend(stdout), daemon=True)
        self._stdout_reader.start()

    def _wait_until_accepting(self, address: Address, timeout: float) -> None:
        """Connect until the server accepts (for servers that do not announce)."""
        deadline = time.monotonic() + timeout
        last_error: OSError | None = None
        while time.monotonic() < deadline:
            if (code := self.process.poll()) is not None:
                self._release()
                raise self._start_error(f"server exited ({code}) before accepting")
            try:
                with socket.create_connection((address.host, address.port), timeout=1.0):
                    return
            except OSError as exc:
                last_error = exc
            # A readiness probe, not a sleep for readiness: the loop ends on the first accept.
            time.sleep(CONNECT_PROBE_INTERVAL_S)
        self.kill()
        raise self._start_error(f"server did not accept on {address} within {timeout} s ({last_error})")

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> tuple[int, float]:
        """SIGTERM, wait up to ``timeout``, kill if it must. Returns (exit code, seconds)."""
        started = time.monotonic()
        if self.process.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        elapsed = time.monotonic() - started
        self._release()
        return self.process.returncode, elapsed

    def kill(self) -> None:
        self._signal_group(signal.SIGKILL)
        self.process.wait(timeout=KILL_TIMEOUT_S)
        self._release()

    def _signal_group(self, signum: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):  # already gone
            os.killpg(self.process.pid, signum)


def launch(
    argv: list[str],
    *,
    ready_at: Address | None = None,
    shell: bool = False,
    env: dict[str, str] | None = None,
    timeout: float = STARTUP_TIMEOUT_S,
) -> tuple[ServerProcess, Address]:
    """The one launcher: start a server process and return it once it is ready, with the address
    to connect to. With ``ready_at`` None the server must announce itself; otherwise it is ready
    once it accepts there (an external command that announces nothing)."""
    server = ServerProcess(argv, shell=shell, env=env)
    return server, server.wait_ready(ready_at, timeout)


def fill_command(template: str, host: str, port: int, values: Mapping[str, str] | None = None) -> str:
    """A ``--server-cmd`` template with ``{port}``, ``{host}`` (and any other ``values``, such as
    ``{cert}``) filled in, run through ``exec`` so that the shell becomes the server and its pid
    is the server's (for /proc checks)."""
    command = template
    for name, value in {**(values or {}), "port": str(port), "host": host}.items():
        command = command.replace(f"{{{name}}}", value)
    return f"exec {command}"
