"""Build the C++ binaries once, under a file lock, when they are missing or stale.

pytest-xdist workers all reach for ``cpp/build/server`` at the same moment; the lock makes
one of them build while the others wait, and the staleness check makes the rest no-ops.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from filelock import FileLock

from impls.table import CPP_BUILD, ROOT

CPP_SOURCE_DIR = ROOT / "cpp"
BINARIES = ("server", "client")
BUILD_TIMEOUT_S = 600


class BuildError(RuntimeError):
    """The C++ build failed; the message carries the compiler's output."""


def _sources() -> list[Path]:
    return [*CPP_SOURCE_DIR.glob("*.cpp"), CPP_SOURCE_DIR / "CMakeLists.txt"]


def _is_stale() -> bool:
    newest_source = max(path.stat().st_mtime for path in _sources())
    for name in BINARIES:
        binary = CPP_BUILD / name
        if not binary.exists() or binary.stat().st_mtime < newest_source:
            return True
    return False


def _run(argv: list[str]) -> None:
    try:
        result = subprocess.run(
            argv,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError as exc:
        raise BuildError(f"cannot run {argv[0]!r}: {exc.strerror} (is CMake installed?)") from exc
    if result.returncode != 0:
        raise BuildError(
            f"C++ build failed: {' '.join(argv)} exited {result.returncode}\n{result.stdout}{result.stderr}"
        )


def ensure_cpp_built() -> Path:
    """Return the build directory, building first if a binary is missing or stale."""
    CPP_BUILD.mkdir(parents=True, exist_ok=True)
    with FileLock(str(CPP_BUILD / ".build.lock"), timeout=BUILD_TIMEOUT_S):
        if _is_stale():
            _run(["cmake", "-S", "cpp", "-B", str(CPP_BUILD), "-DCMAKE_BUILD_TYPE=Release"])
            _run(["cmake", "--build", str(CPP_BUILD), "-j2"])
    return CPP_BUILD
