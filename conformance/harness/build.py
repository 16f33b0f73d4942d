"""Build the C++ binaries once, under a file lock, when they are missing or stale.

pytest-xdist workers all reach for ``cpp/build/server`` at the same moment (in an installed
package: the per-user cache directory, see impls/table.py); the lock makes
one of them build while the others wait, and the staleness check makes the rest no-ops.
Each variant (release, ASan+UBSan, TSan, release without OpenSSL) has a build directory, a
lock and a check of its own.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from filelock import FileLock

from impls.table import CPP_ASAN_BUILD, CPP_BUILD, CPP_BUILDS, CPP_SOURCES, CPP_TSAN_BUILD

CPP_NO_TLS_BUILD = CPP_BUILDS / "build-notls"  # without OpenSSL: what a machine without libssl-dev gets
BINARIES = ("server", "client")
BUILD_TIMEOUT_S = 600

# The CMake options of each variant, by build directory. Sanitized builds keep -O2 and add
# debug info (RelWithDebInfo), so their reports name files and lines.
VARIANTS: dict[Path, tuple[str, ...]] = {
    CPP_BUILD: ("-DCMAKE_BUILD_TYPE=Release",),
    CPP_ASAN_BUILD: ("-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DECHO_SANITIZE=address,undefined"),
    CPP_TSAN_BUILD: ("-DCMAKE_BUILD_TYPE=RelWithDebInfo", "-DECHO_SANITIZE=thread"),
    CPP_NO_TLS_BUILD: ("-DCMAKE_BUILD_TYPE=Release", "-DECHO_TLS=OFF"),
}


class BuildError(RuntimeError):
    """The C++ build failed; the message carries the compiler's output."""


def _sources() -> list[Path]:
    return [*CPP_SOURCES.glob("*.cpp"), *CPP_SOURCES.glob("*.h"), CPP_SOURCES / "CMakeLists.txt"]


def _is_stale(build_dir: Path) -> bool:
    newest_source = max(path.stat().st_mtime for path in _sources())
    for name in BINARIES:
        binary = build_dir / name
        if not binary.exists() or binary.stat().st_mtime < newest_source:
            return True
    return False


def _run(argv: list[str]) -> None:
    try:
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError as exc:
        raise BuildError(
            f"cannot run {argv[0]!r}: {exc.strerror}; the C++ rows need CMake and a C++17 compiler "
            "(Debian: apt-get install cmake g++ libssl-dev)"
        ) from exc
    if result.returncode != 0:
        raise BuildError(
            f"C++ build failed: {' '.join(argv)} exited {result.returncode}\n{result.stdout}{result.stderr}"
        )


def ensure_cpp_built(build_dir: Path = CPP_BUILD) -> Path:
    """Return the build directory of a variant (a key of VARIANTS: the directory a row's
    binary lives in), building first if a binary is missing or stale."""
    if build_dir not in VARIANTS:
        known = ", ".join(map(str, VARIANTS))
        raise BuildError(f"no C++ build variant builds into {build_dir}; known: {known}")
    build_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(build_dir / ".build.lock"), timeout=BUILD_TIMEOUT_S):
        if _is_stale(build_dir):
            _run(["cmake", "-S", str(CPP_SOURCES), "-B", str(build_dir), *VARIANTS[build_dir]])
            _run(["cmake", "--build", str(build_dir), "-j2"])
    return build_dir
