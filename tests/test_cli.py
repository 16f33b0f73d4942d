"""The command lines people type: the original project's interface and every implementation's CLI contract.

The README's commands must keep working word for word (``python3 -m impls.threaded --host 0.0.0.0
--port P``, ``python3 -m impls.client ... --message 'Hello Annapurna!'``, ``./cpp/build/server P``,
``./cpp/build/client 127.0.0.1 P "Hello from C++!"``), with the exact lines they print. Every server
row of impls/table.py and both clients answer a mistake (a bad flag, port or host, a refused
connection) with exit status 2 and one line on stderr: never a traceback, never a usage block.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conformance.harness.build import BuildError, ensure_cpp_built
from conformance.harness.servers import Address, free_port, launch
from impls.table import CPP_BUILD, IMPLEMENTATIONS, NEEDS_CPP_BUILD, Implementation

ROOT = Path(__file__).resolve().parent.parent  # the clone these tests run in

RUN_TIMEOUT_S = 20.0
COMPILE_TIMEOUT_S = 300.0
NOT_OURS = "192.0.2.1"  # TEST-NET-1 (RFC 5737): a valid address no interface has; no DNS, no traffic
RTT_LINE = re.compile(r"^\[client\] RTT     : \d+\.\d{3} ms$")
BENCHMARK_COUNT, BENCHMARK_SIZE = 50, 1024


def build_cpp() -> None:
    try:
        ensure_cpp_built()
    except BuildError as exc:
        pytest.fail(str(exc), pytrace=False)


def prepare(row: Implementation) -> None:
    if row.has(NEEDS_CPP_BUILD):
        build_cpp()


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)


def python_client(address: Address, *options: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "impls.client",
        "--host",
        address.host,
        "--port",
        str(address.port),
        *options,
    ]


def cpp_client(address: Address, *options: str) -> list[str]:
    return [str(CPP_BUILD / "client"), address.host, str(address.port), *options]


@pytest.fixture(scope="module", params=IMPLEMENTATIONS, ids=lambda row: row.name)
def server(request: pytest.FixtureRequest) -> Iterator[Address]:
    """Each row's server, started from its table command line on a free port."""
    row: Implementation = request.param
    prepare(row)
    process, address = launch(row.argv())
    yield address
    process.stop()


@pytest.fixture(scope="module")
def cpp_built() -> None:
    build_cpp()


def assert_announces(argv: list[str], expected: str) -> None:
    process, _ = launch(argv)
    try:
        assert process.stdout_lines[0].decode() == expected
    finally:
        process.stop()


@pytest.mark.parametrize("module", ["impls.threaded", "impls.asyncio_server"])
def test_python_server_original_command_line(module: str) -> None:
    port = free_port("0.0.0.0")  # noqa: S104 - the README's own command line binds every interface
    argv = [sys.executable, "-m", module, "--host", "0.0.0.0", "--port", str(port)]  # noqa: S104
    assert_announces(argv, f"[server] listening on 0.0.0.0:{port}")


@pytest.mark.usefixtures("cpp_built")
def test_cpp_server_positional_port() -> None:
    port = free_port()
    assert_announces([str(CPP_BUILD / "server"), str(port)], f"[server] listening on 127.0.0.1:{port}")


def assert_three_lines(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 0, f"exit status {result.returncode}\n  stderr: {result.stderr}"
    lines = result.stdout.splitlines()
    assert len(lines) == 3, f"expected exactly three lines, got:\n{result.stdout}"
    assert lines[0] == f"[client] sent    : {message.encode()!r}"
    assert lines[1] == f"[client] received: {message.encode()!r}"
    assert RTT_LINE.match(lines[2]), f"not '[client] RTT     : X.XXX ms': {lines[2]!r}"


def test_python_client_one_message(server: Address) -> None:
    message = "Hello Annapurna!"
    assert_three_lines(run(python_client(server, "--message", message)), message)


@pytest.mark.usefixtures("cpp_built")
def test_cpp_client_one_message(server: Address) -> None:
    message = "Hello from C++!"
    assert_three_lines(run(cpp_client(server, message)), message)


def assert_benchmark_json(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"exit status {result.returncode}\n  stderr: {result.stderr}"
    parsed = json.loads(result.stdout)
    assert (parsed["count"], parsed["size"]) == (BENCHMARK_COUNT, BENCHMARK_SIZE)
    cuts = parsed["rtt_ms"]  # the same key in the Python and the C++ client
    in_order = 0 <= cuts["min"] <= cuts["p50"] <= cuts["p95"] <= cuts["p99"] <= cuts["max"]
    assert in_order, f"percentiles out of order: {cuts}"


def test_python_client_benchmark_json(server: Address) -> None:
    options = ["--count", str(BENCHMARK_COUNT), "--size", str(BENCHMARK_SIZE), "--json"]
    assert_benchmark_json(run(python_client(server, *options)))


@pytest.mark.usefixtures("cpp_built")
def test_cpp_client_benchmark_json(server: Address) -> None:
    options = ["--count", str(BENCHMARK_COUNT), "--size", str(BENCHMARK_SIZE), "--json"]
    assert_benchmark_json(run(cpp_client(server, *options)))


def assert_one_line_error(result: subprocess.CompletedProcess[str], what: str) -> None:
    lines = result.stderr.splitlines()
    assert result.returncode == 2, (
        f"{what}: exit status {result.returncode}, expected 2\n  stderr:\n{result.stderr}"
    )
    assert len(lines) == 1, f"{what}: expected one line on stderr, got {len(lines)}:\n{result.stderr}"
    assert "Traceback" not in result.stderr, f"{what}: a traceback:\n{result.stderr}"


MISTAKES: dict[str, Callable[[Implementation], list[str]]] = {
    "bad-flag": lambda row: [*row.argv(), "--no-such-flag"],
    "bad-port": lambda row: row.argv(port=70000),
    "bad-host": lambda row: row.argv(host=NOT_OURS),
}


@pytest.mark.parametrize("row", IMPLEMENTATIONS, ids=lambda row: row.name)
@pytest.mark.parametrize("mistake", MISTAKES)
def test_server_mistake_is_one_line(row: Implementation, mistake: str) -> None:
    prepare(row)
    argv = MISTAKES[mistake](row)
    result = run(argv)
    assert_one_line_error(result, f"{mistake}: {' '.join(argv)}")
    assert "listening" not in result.stdout, f"{mistake}: the server announced anyway: {result.stdout!r}"


def test_python_client_connection_refused() -> None:
    argv = python_client(Address("127.0.0.1", free_port()), "--message", "hello")
    assert_one_line_error(run(argv), "connection refused")


@pytest.mark.usefixtures("cpp_built")
def test_cpp_client_connection_refused() -> None:
    argv = cpp_client(Address("127.0.0.1", free_port()), "hello")
    assert_one_line_error(run(argv), "connection refused")


@pytest.mark.parametrize("source", ["server.cpp", "client.cpp"])
def test_original_one_line_build_has_no_warnings(source: str, tmp_path: Path) -> None:
    compiler = shutil.which("c++")
    if compiler is None:
        pytest.skip("no C++ compiler: 'c++' is not on PATH")
    output = tmp_path / Path(source).stem
    argv = [
        compiler,
        "-std=c++17",
        "-O2",
        "-Wall",
        "-Wextra",
        "-pedantic",
        "-o",
        str(output),
        f"cpp/{source}",
    ]
    result = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S, check=False
    )
    assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stderr}"
    assert not result.stderr.strip(), f"{' '.join(argv)} warned:\n{result.stderr}"
    assert output.exists()


SIGTERM_AT_ONCE_REPEATS = 5


@pytest.mark.parametrize("row", IMPLEMENTATIONS, ids=lambda row: row.name)
def test_sigterm_right_after_the_announce_exits_0(row: Implementation) -> None:
    """Whoever reads the announce line may stop the server at once: its SIGTERM handling must
    already be in place (the asyncio server once installed it after announcing, and died by
    the signal in most of these runs)."""
    prepare(row)
    codes = []
    for _ in range(SIGTERM_AT_ONCE_REPEATS):
        process, _ = launch(row.argv())
        codes.append(process.stop()[0])
    assert codes == [0] * SIGTERM_AT_ONCE_REPEATS, (
        f"exit statuses after SIGTERM right after the announce: {codes}"
    )
