"""The one table of built-in implementations.

Conformance and benchmarks both read this table; adding an implementation is adding one row.
A row's command line is a template: ``{python}``, ``{host}`` and ``{port}`` are filled in by
the harness (``{port}`` is 0 unless a scenario needs a specific port). A row with the ``TLS``
capability also runs over TLS: the harness then appends ``TLS_OPTIONS`` with the test
certificate's files as ``{cert}`` and ``{key}``.

``IMPLEMENTATIONS`` is the default selection (``pytest conformance``, the benchmarks, the CLI
tests); ``ALL_IMPLEMENTATIONS`` adds the rows that run only when named with ``--impl``: the
C++ server built with sanitizers, which are too slow for every run and are CI's job
(``tox -e sanitizers``).

Where the C++ rows come from: in a clone, the sources are ``cpp/`` and the builds go to
``cpp/build*/`` (where the README's ``./cpp/build/server`` expects them); in an installed
package, the sources ship as ``impls/cpp/`` and the harness builds them on first use into a
per-user cache directory (``$XDG_CACHE_HOME/echo-conformance/VERSION``, default ``~/.cache``).

PYTEST_DONT_REWRITE: echo-conformance imports the table before pytest starts.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
IMPORT_ROOT = PACKAGE_DIR.parent  # the directory ``impls`` is imported from: a clone, or site-packages


def _cpp_locations() -> tuple[Path, Path]:
    """(the C++ sources, the directory their build variants go into)."""
    if (IMPORT_ROOT / "cpp" / "server.cpp").is_file():  # a clone, or an editable install of one
        return IMPORT_ROOT / "cpp", IMPORT_ROOT / "cpp"
    try:
        version = metadata.version("echo-conformance")
    except metadata.PackageNotFoundError:
        version = "unknown"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return PACKAGE_DIR / "cpp", cache / "echo-conformance" / version


CPP_SOURCES, CPP_BUILDS = _cpp_locations()
CPP_BUILD = CPP_BUILDS / "build"
CPP_ASAN_BUILD = CPP_BUILDS / "build-asan"  # AddressSanitizer + UndefinedBehaviorSanitizer
CPP_TSAN_BUILD = CPP_BUILDS / "build-tsan"  # ThreadSanitizer

# Capabilities a row can declare; scenarios that need one skip rows (or external servers)
# without it, and say so.
ANNOUNCES = "announces"  # prints "[server] listening on HOST:PORT" after listen()
IPV6 = "ipv6"  # accepts --host ::1
GRACEFUL_EXIT = "graceful-exit"  # exits 0 within 1 s on SIGTERM / SIGINT
NEEDS_CPP_BUILD = "needs-cpp-build"  # its binary is built from cpp/ by the harness
TLS = "tls"  # with TLS_OPTIONS it speaks TLS 1.2/1.3 and announces "... (tls)"
TCP = "tcp"
TRANSPORTS = (TCP, TLS)  # what --transport chooses from

PLACEHOLDER = re.compile(r"\{(python|host|port|cert|key)\}")
TLS_OPTIONS = ("--tls-cert", "{cert}", "--tls-key", "{key}")

STANDARD = frozenset({ANNOUNCES, IPV6, GRACEFUL_EXIT})

# A sanitizer finding stops the server at once (halt_on_error) with this exit status, so the
# test that provoked it fails there and then (the server died) with the report as its stderr.
# Leaks surface at exit, after SIGTERM, as the same status. ASan's quarantine of freed memory
# is capped (default 256 MiB) so that it does not read as RSS growth to the memory scenarios.
SANITIZER_EXIT_CODE = 23
_HALT = f"halt_on_error=1:exitcode={SANITIZER_EXIT_CODE}"
ASAN_ENVIRONMENT = (
    ("ASAN_OPTIONS", f"{_HALT}:abort_on_error=0:detect_leaks=1:quarantine_size_mb=16"),
    ("UBSAN_OPTIONS", f"{_HALT}:print_stacktrace=1"),
)
TSAN_ENVIRONMENT = (("TSAN_OPTIONS", f"{_HALT}:second_deadlock_stack=1"),)


@dataclass(frozen=True)
class Implementation:
    """One row: a name (the test id), a command-line template and what it can do."""

    name: str
    command: tuple[str, ...]
    capabilities: frozenset[str]
    summary: str
    default: bool = True  # in the default selection; False: runs only when named with --impl
    environment: tuple[tuple[str, str], ...] = ()  # variables added to the server's environment

    def argv(self, host: str = "127.0.0.1", port: int = 0, tls: tuple[Path, Path] | None = None) -> list[str]:
        """The command line with its placeholders filled in; with ``tls`` (certificate and key
        files), the TLS options too."""
        values = {"python": sys.executable, "host": host, "port": str(port)}
        template = self.command
        if tls is not None:
            values.update(cert=str(tls[0]), key=str(tls[1]))
            template += TLS_OPTIONS
        return [PLACEHOLDER.sub(lambda match: values[match[1]], part) for part in template]

    def has(self, capability: str) -> bool:
        return capability in self.capabilities

    def env(self) -> dict[str, str]:
        """The server's whole environment: ours, the row's variables, and PYTHONPATH led by the
        directory these modules come from, so that ``python -m impls.threaded`` runs this very
        code from any working directory."""
        path = os.pathsep.join(filter(None, (str(IMPORT_ROOT), os.environ.get("PYTHONPATH"))))
        return {**os.environ, **dict(self.environment), "PYTHONPATH": path}


def _cpp_server(build_dir: Path, *extra: str) -> tuple[str, ...]:
    return (str(build_dir / "server"), "--host", "{host}", "--port", "{port}", *extra)


def _python_module(module: str, *extra: str) -> tuple[str, ...]:
    return ("{python}", "-m", module, "--host", "{host}", "--port", "{port}", *extra)


ALL_IMPLEMENTATIONS: tuple[Implementation, ...] = (
    Implementation(
        name="threaded",
        command=_python_module("impls.threaded"),
        capabilities=STANDARD | {TLS},
        summary="Python, one blocking thread per connection",
    ),
    Implementation(
        name="asyncio",
        command=_python_module("impls.asyncio_server"),
        capabilities=STANDARD | {TLS},
        summary="Python asyncio Protocol with pause/resume_reading flow control",
    ),
    Implementation(
        name="asyncio-uvloop",
        command=_python_module("impls.asyncio_server", "--loop", "uvloop"),
        capabilities=STANDARD | {TLS},
        summary="the asyncio server on uvloop (libuv)",
    ),
    Implementation(
        name="cpp",
        command=_cpp_server(CPP_BUILD),
        capabilities=STANDARD | {NEEDS_CPP_BUILD, TLS},
        summary="C++17 non-blocking epoll loop, bounded pending output per connection",
    ),
    Implementation(
        name="cpp-asan",
        command=_cpp_server(CPP_ASAN_BUILD),
        capabilities=STANDARD | {NEEDS_CPP_BUILD, TLS},
        summary="the C++ server under AddressSanitizer, LeakSanitizer and UndefinedBehaviorSanitizer",
        default=False,
        environment=ASAN_ENVIRONMENT,
    ),
    Implementation(
        name="cpp-tsan",
        command=_cpp_server(CPP_TSAN_BUILD, "--threads", "4"),
        capabilities=STANDARD | {NEEDS_CPP_BUILD, TLS},
        summary="the C++ server with 4 event-loop threads under ThreadSanitizer",
        default=False,
        environment=TSAN_ENVIRONMENT,
    ),
)
IMPLEMENTATIONS = tuple(impl for impl in ALL_IMPLEMENTATIONS if impl.default)

BY_NAME = {impl.name: impl for impl in ALL_IMPLEMENTATIONS}
