"""The C++ pair built without OpenSSL still builds, and says TLS is unsupported.

A machine without libssl-dev (or ``cmake -DECHO_TLS=OFF``) must still get a working echo server
and client: ``server --version`` reports ``tls=none``, asking either for TLS is one line of
error and exit status 2, and the harness turns that into a skip of the ``cpp-tls`` rows with
the reason, never a failure and never a silent pass.
"""

from __future__ import annotations

import subprocess

import pytest

from conformance.harness.build import CPP_NO_TLS_BUILD, BuildError, ensure_cpp_built
from conformance.harness.duplex import exchange
from conformance.harness.servers import launch
from conformance.harness.targets import cpp_without_tls

RUN_TIMEOUT_S = 20.0


@pytest.fixture(scope="module")
def build() -> str:
    try:
        return str(ensure_cpp_built(CPP_NO_TLS_BUILD))
    except BuildError as exc:
        pytest.fail(str(exc), pytrace=False)


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)


def test_version_says_tls_none_and_the_harness_skips_with_the_reason(build: str) -> None:
    version = run(f"{build}/server", "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip().endswith("tls=none"), version.stdout
    reason = cpp_without_tls(CPP_NO_TLS_BUILD / "server")
    assert reason is not None
    assert "built without OpenSSL" in reason, reason


@pytest.mark.parametrize("binary", ["server", "client"])
def test_asking_for_tls_is_one_line_and_exit_2(build: str, binary: str) -> None:
    flag = "--tls-cert" if binary == "server" else "--tls"
    argv = [
        f"{build}/{binary}",
        flag,
        *(["/nonexistent.pem", "--tls-key", "/nonexistent.key"] if binary == "server" else []),
    ]
    result = run(*argv)
    lines = result.stderr.splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    assert "this build has no TLS (built without OpenSSL)" in lines[0], lines[0]


def test_it_still_echoes_over_tcp(build: str) -> None:
    server, address = launch([f"{build}/server", "--port", "0"])
    try:
        outcome = exchange(address, b"still an echo server", timeout=10.0)
    finally:
        server.stop()
    assert outcome.received == b"still an echo server"
    assert outcome.eof
