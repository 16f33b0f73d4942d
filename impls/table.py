"""The one table of built-in implementations.

Conformance and benchmarks both read this table; adding an implementation is adding one row.
A row's command line is a template: ``{python}``, ``{root}``, ``{host}`` and ``{port}`` are
filled in by the harness (``{port}`` is 0 unless a scenario needs a specific port).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CPP_BUILD = ROOT / "cpp" / "build"

# Capabilities a row can declare; scenarios that need one skip rows (or external servers)
# without it, and say so.
ANNOUNCES = "announces"  # prints "[server] listening on HOST:PORT" after listen()
IPV6 = "ipv6"  # accepts --host ::1
GRACEFUL_EXIT = "graceful-exit"  # exits 0 within 1 s on SIGTERM / SIGINT
NEEDS_CPP_BUILD = "needs-cpp-build"  # its binary is built from cpp/ by the harness

PLACEHOLDER = re.compile(r"\{(python|root|host|port)\}")

STANDARD = frozenset({ANNOUNCES, IPV6, GRACEFUL_EXIT})


@dataclass(frozen=True)
class Implementation:
    """One row: a name (the test id), a command-line template and what it can do."""

    name: str
    command: tuple[str, ...]
    capabilities: frozenset[str]
    summary: str

    def argv(self, host: str = "127.0.0.1", port: int = 0) -> list[str]:
        """The command line with its placeholders filled in."""
        values = {"python": sys.executable, "root": str(ROOT), "host": host, "port": str(port)}
        return [PLACEHOLDER.sub(lambda match: values[match[1]], part) for part in self.command]

    def has(self, capability: str) -> bool:
        return capability in self.capabilities


def _python_module(module: str, *extra: str) -> tuple[str, ...]:
    return ("{python}", "-m", module, "--host", "{host}", "--port", "{port}", *extra)


IMPLEMENTATIONS: tuple[Implementation, ...] = (
    Implementation(
        name="threaded",
        command=_python_module("impls.threaded"),
        capabilities=STANDARD,
        summary="Python, one blocking thread per connection",
    ),
    Implementation(
        name="asyncio",
        command=_python_module("impls.asyncio_server"),
        capabilities=STANDARD,
        summary="Python asyncio Protocol with pause/resume_reading flow control",
    ),
    Implementation(
        name="asyncio-uvloop",
        command=_python_module("impls.asyncio_server", "--loop", "uvloop"),
        capabilities=STANDARD,
        summary="the asyncio server on uvloop (libuv)",
    ),
    Implementation(
        name="cpp",
        command=(str(CPP_BUILD / "server"), "--host", "{host}", "--port", "{port}"),
        capabilities=STANDARD | {NEEDS_CPP_BUILD},
        summary="C++17 non-blocking epoll loop, bounded pending output per connection",
    ),
)

BY_NAME = {impl.name: impl for impl in IMPLEMENTATIONS}
