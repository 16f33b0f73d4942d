"""The suite as a stranger gets it: the wheel, installed into a fresh venv, run outside the clone.

One module-scoped venv: the wheel is built from this checkout (``pip wheel``), installed with its
dependencies, and every command runs from a temporary directory that is not the clone, with no
PYTHONPATH, so nothing can come from the checkout by accident. The servers under test are the
clone's own scripts, passed by absolute path, as a user's server would be.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

import pytest

from conformance.exitstatus import EXIT_FAILED, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE

ROOT = Path(__file__).resolve().parent.parent
INSTALL_TIMEOUT_S = 600.0
RUN_TIMEOUT_S = 300.0
CORRECT = ROOT / "tests" / "correct" / "selectors_echo.py"
ONE_RECV = ROOT / "tests" / "mutants" / "one_recv.py"


@dataclass(frozen=True)
class Installed:
    bin: Path
    elsewhere: Path  # the working directory: outside the clone
    cache: Path  # XDG_CACHE_HOME: where the C++ rows get built

    def run(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("PYTEST_", "PYTHON")) and name != "VIRTUAL_ENV"
        }
        return subprocess.run(
            [str(self.bin / program), *args],
            cwd=self.elsewhere,
            env={**env, "XDG_CACHE_HOME": str(self.cache)},
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )

    def server_cmd(self, script: Path) -> str:
        return f"{shlex.quote(str(self.bin / 'python'))} {shlex.quote(str(script))} {{port}}"


def pip(python: Path, *args: str) -> None:
    done = subprocess.run(
        [str(python), "-m", "pip", "--disable-pip-version-check", "-q", *args],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, f"pip {' '.join(args)} failed:\n{done.stdout}{done.stderr}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("package")
    pip(Path(sys.executable), "wheel", "--no-deps", "-w", str(base / "dist"), str(ROOT))
    # setuptools leaves its build tree and egg-info in the checkout; the egg-info's entry points
    # would otherwise make every later session in the clone "have the package installed".
    shutil.rmtree(ROOT / "build", ignore_errors=True)
    shutil.rmtree(ROOT / "echo_conformance.egg-info", ignore_errors=True)
    (wheel,) = (base / "dist").glob("echo_conformance-*.whl")
    venv.create(base / "venv", with_pip=True)
    pip(base / "venv" / "bin" / "python", "install", str(wheel))
    elsewhere = base / "elsewhere"
    elsewhere.mkdir()
    return Installed(base / "venv" / "bin", elsewhere, base / "cache")


def test_the_wheel_ships_the_suite_the_servers_and_the_cpp_sources(installed: Installed) -> None:
    code = (
        "import conformance.plugin, impls.threaded, impls.table as t; "
        "print(t.CPP_SOURCES); print(sorted(p.name for p in t.CPP_SOURCES.iterdir()))"
    )
    done = installed.run("python", "-c", code)
    assert done.returncode == 0, done.stderr
    sources, names = done.stdout.splitlines()
    assert "site-packages/impls/cpp" in sources
    assert {"server.cpp", "client.cpp", "CMakeLists.txt"} <= set(eval(names))  # noqa: S307 - our own print


def test_a_correct_server_passes_with_its_report(installed: Installed) -> None:
    done = installed.run(
        "echo-conformance", "--server-cmd", installed.server_cmd(CORRECT), "--scenario", "ECHO"
    )
    assert done.returncode == EXIT_OK, done.stdout + done.stderr
    match = re.search(r"^report: (\S+)/conformance\.html", done.stdout, re.MULTILINE)
    assert match, done.stdout
    report_dir = installed.elsewhere / match[1]
    assert {path.name for path in report_dir.iterdir()} == {
        "conformance.json",
        "conformance.html",
        "junit.xml",
    }


def test_a_mutant_fails_naming_the_scenario(installed: Installed) -> None:
    done = installed.run(
        "echo-conformance", "--server-cmd", installed.server_cmd(ONE_RECV), "--scenario", "FRAG"
    )
    assert done.returncode == EXIT_FAILED, done.stdout + done.stderr
    assert re.search(r"^FRAG-002\s+MUST\s+FAIL\b", done.stdout, re.MULTILINE), done.stdout


def test_a_dead_address_is_unavailable_in_a_few_lines(installed: Installed) -> None:
    done = installed.run("echo-conformance", "127.0.0.1:9")
    assert done.returncode == EXIT_UNAVAILABLE, done.stdout + done.stderr
    assert len((done.stdout + done.stderr).strip().splitlines()) <= 3, done.stdout + done.stderr
    assert "cannot reach 127.0.0.1:9" in done.stderr


def test_a_bad_flag_is_the_usage_code(installed: Installed) -> None:
    done = installed.run("echo-conformance", "--no-such-flag")
    assert done.returncode == EXIT_USAGE
    assert done.stderr.strip().splitlines() == [
        "echo-conformance: error: unrecognized arguments: --no-such-flag (see echo-conformance --help)"
    ]


def test_pytest_pyargs_runs_the_installed_suite(installed: Installed) -> None:
    done = installed.run(
        "pytest", "--pyargs", "conformance", "-p", "no:cacheprovider", "--server-cmd",
        installed.server_cmd(CORRECT), "--scenario", "ECHO-002", "--scenario", "HALF-001", "-q",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^HALF-001\s+MUST\s+pass\b", done.stdout, re.MULTILINE), done.stdout


def test_the_cpp_rows_build_into_the_user_cache_on_first_use(installed: Installed) -> None:
    done = installed.run("echo-conformance", "--impl", "cpp", "--scenario", "ECHO-002", "--transport", "tcp")
    assert done.returncode == EXIT_OK, done.stdout + done.stderr
    builds = list((installed.cache / "echo-conformance").glob("*/build/server"))
    assert len(builds) == 1, f"expected one build under {installed.cache}: {builds}"
