"""The original one-line builds of the C++ programs keep compiling, with no warning.

``c++ -std=c++17 -O2 -Wall -Wextra -pedantic -o server cpp/server.cpp`` (and the same for the
client) is how a reader builds a lesson without CMake or OpenSSL. The programs share headers
(``cpp/net.h``, ``cpp/hdr_histogram.h``), so these builds also prove the headers compile with
ECHO_WITH_OPENSSL unset and need nothing beyond POSIX and the standard library.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from impls.table import CPP_SOURCES

COMPILE_TIMEOUT_S = 300.0
ONE_LINE_FLAGS = ("-std=c++17", "-O2", "-Wall", "-Wextra", "-pedantic")


@pytest.mark.parametrize("program", ["server", "client"])
def test_one_line_build_compiles_without_warnings(program: str, tmp_path: Path) -> None:
    """The one-line build of each program MUST succeed and print no warning."""
    compiler = shutil.which("c++")
    assert compiler is not None, "no c++ compiler on PATH; the one-line build needs one"
    binary = tmp_path / program
    argv = [compiler, *ONE_LINE_FLAGS, "-o", str(binary), str(CPP_SOURCES / f"{program}.cpp")]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S, check=False)
    assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stderr}"
    assert result.stderr == "", f"{' '.join(argv)} warned:\n{result.stderr}"
    assert binary.is_file()
