"""TLS on the command line (issue 6): every server's --tls-cert/--tls-key and both clients' --tls.

A server given a certificate and its key announces ``[server] listening on HOST:PORT (tls)``
and echoes over TLS 1.2/1.3; the client prints the negotiated version and cipher and the
handshake time on lines of their own, before the usual three. Every mistake -- a missing
file, a key that belongs to another certificate, one flag without the other, a client flag
without ``--tls``, a certificate the client cannot verify -- is exit status 2 and one line on
stderr, never a traceback and never a half-started server. Certificates come from trustme,
written to a temporary directory.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from conformance.harness.build import ensure_cpp_built
from conformance.harness.servers import Address, launch
from impls.table import CPP_BUILD, IMPLEMENTATIONS, NEEDS_CPP_BUILD, TLS, Implementation

ROOT = Path(__file__).resolve().parent.parent  # the clone these tests run in

RUN_TIMEOUT_S = 20.0
TLS_ROWS = tuple(row for row in IMPLEMENTATIONS if row.has(TLS))
TLS_LINE = re.compile(r"^\[client\] TLS     : TLSv1\.[23] [A-Z0-9_-]+$")
HANDSHAKE_LINE = re.compile(r"^\[client\] handshake: \d+\.\d{3} ms$")
RTT_LINE = re.compile(r"^\[client\] RTT     : \d+\.\d{3} ms$")


@dataclass(frozen=True)
class Certificates:
    """PEM files: the test CA, a leaf it signed for the loopback names, and strangers."""

    ca: Path
    cert: Path
    key: Path
    other_key: Path  # the key of another leaf from the same CA: it does not match ``cert``
    other_ca: Path  # a CA that signed nothing the server presents


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    directory = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1", "::1")
    files = Certificates(
        *(directory / name for name in ("ca.pem", "cert.pem", "key.pem", "other.key", "x.pem"))
    )
    ca.cert_pem.write_to_path(str(files.ca))
    leaf.cert_chain_pems[0].write_to_path(str(files.cert))
    leaf.private_key_pem.write_to_path(str(files.key))
    ca.issue_cert("localhost").private_key_pem.write_to_path(str(files.other_key))
    trustme.CA().cert_pem.write_to_path(str(files.other_ca))
    return files


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False)


def tls_argv(row: Implementation, cert: Path | None, key: Path | None) -> list[str]:
    if row.has(NEEDS_CPP_BUILD):
        ensure_cpp_built()
    flags = [*(["--tls-cert", str(cert)] if cert else []), *(["--tls-key", str(key)] if key else [])]
    return [*row.argv(), *flags]


def python_client(address: Address, *options: str) -> list[str]:
    host, port = address.host, str(address.port)
    return [sys.executable, "-m", "impls.client", "--host", host, "--port", port, *options]


def cpp_client(address: Address, *options: str) -> list[str]:
    ensure_cpp_built()
    return [str(CPP_BUILD / "client"), "--host", address.host, "--port", str(address.port), *options]


CLIENTS = {"python": python_client, "cpp": cpp_client}
Client = Callable[..., list[str]]


def assert_one_line_error(result: subprocess.CompletedProcess[str], what: str) -> str:
    """Exit status 2, exactly one line on stderr (returned), no traceback."""
    lines = result.stderr.splitlines()
    assert result.returncode == 2, f"{what}: exit status {result.returncode}, expected 2\n{result.stderr}"
    assert len(lines) == 1, f"{what}: expected one line on stderr, got {len(lines)}:\n{result.stderr}"
    assert "Traceback" not in result.stderr, f"{what}: a traceback:\n{result.stderr}"
    return lines[0]


@dataclass(frozen=True)
class TlsServer:
    address: Address
    announced: str


@pytest.fixture(scope="module", params=TLS_ROWS, ids=lambda row: row.name)
def tls_server(request: pytest.FixtureRequest, certificates: Certificates) -> Iterator[TlsServer]:
    """Each row started over TLS on a free port, once for the module."""
    process, address = launch(tls_argv(request.param, certificates.cert, certificates.key))
    yield TlsServer(address, process.stdout_lines[0].decode())
    process.stop()


def test_server_announces_tls(tls_server: TlsServer) -> None:
    assert tls_server.announced == f"[server] listening on {tls_server.address} (tls)"


@pytest.fixture(params=CLIENTS)
def client(request: pytest.FixtureRequest) -> Client:
    return CLIENTS[request.param]


def test_client_echoes_over_tls(tls_server: TlsServer, certificates: Certificates, client: Client) -> None:
    message = "Hello Annapurna!"
    argv = client(tls_server.address, "--tls", "--cafile", str(certificates.ca), "--message", message)
    result = run(argv)
    assert result.returncode == 0, f"exit status {result.returncode}\n  stderr: {result.stderr}"
    lines = result.stdout.splitlines()
    assert len(lines) == 5, f"expected TLS, handshake, sent, received, RTT lines, got:\n{result.stdout}"
    assert TLS_LINE.match(lines[0]), f"not '[client] TLS     : <version> <cipher>': {lines[0]!r}"
    assert HANDSHAKE_LINE.match(lines[1]), f"not '[client] handshake: X.XXX ms': {lines[1]!r}"
    assert lines[2:4] == [
        f"[client] sent    : {message.encode()!r}",
        f"[client] received: {message.encode()!r}",
    ]
    assert RTT_LINE.match(lines[4]), f"not '[client] RTT     : X.XXX ms': {lines[4]!r}"


def test_client_benchmark_json_reports_tls(tls_server: TlsServer, certificates: Certificates) -> None:
    options = ["--tls", "--cafile", str(certificates.ca), "--count", "20", "--size", "40000", "--json"]
    result = run(python_client(tls_server.address, *options))
    assert result.returncode == 0, f"exit status {result.returncode}\n  stderr: {result.stderr}"
    parsed = json.loads(result.stdout)
    assert parsed["tls_version"] in {"TLSv1.2", "TLSv1.3"}, parsed
    assert parsed["cipher"], parsed
    assert parsed["handshake_ms"] > 0, parsed
    assert (parsed["count"], parsed["size"]) == (20, 40000), parsed


def test_client_refuses_a_certificate_it_cannot_verify(
    tls_server: TlsServer, certificates: Certificates, client: Client
) -> None:
    argv = client(tls_server.address, "--tls", "--cafile", str(certificates.other_ca))
    line = assert_one_line_error(run(argv), "a CA that did not sign the server's certificate")
    assert line.startswith(f"[client] error: TLS handshake with {tls_server.address} failed: "), line
    assert "verif" in line, f"the error does not say that verification failed: {line!r}"


@pytest.mark.parametrize("flag", ["--cafile", "--insecure"])
def test_client_tls_option_needs_tls(flag: str, certificates: Certificates, client: Client) -> None:
    options = [flag, str(certificates.ca)] if flag == "--cafile" else [flag]
    # Refused before connecting: nothing needs to listen there.
    line = assert_one_line_error(run(client(Address("127.0.0.1", 9), *options)), f"{flag} alone")
    assert f"{flag} needs --tls" in line, line


MISTAKES = ("missing-cert", "mismatched-key", "cert-only", "key-only")


def mistake_argv(
    row: Implementation, mistake: str, files: Certificates, missing: Path
) -> tuple[list[str], str]:
    """The command line for ``mistake`` and the one error line it must give."""
    if mistake == "missing-cert":
        return tls_argv(
            row, missing, files.key
        ), f"[server] error: --tls-cert {missing}: No such file or directory"
    if mistake == "mismatched-key":
        expected = (
            f"[server] error: --tls-key {files.other_key}: key does not match the certificate {files.cert}"
        )
        return tls_argv(row, files.cert, files.other_key), expected
    if mistake == "cert-only":
        return tls_argv(
            row, files.cert, None
        ), "[server] error: --tls-cert needs --tls-key (both files, or neither for plain TCP)"
    return tls_argv(
        row, None, files.key
    ), "[server] error: --tls-key needs --tls-cert (both files, or neither for plain TCP)"


@pytest.mark.parametrize("row", TLS_ROWS, ids=lambda row: row.name)
@pytest.mark.parametrize("mistake", MISTAKES)
def test_server_tls_mistake_is_one_line(
    row: Implementation, mistake: str, certificates: Certificates, tmp_path: Path
) -> None:
    argv, expected = mistake_argv(row, mistake, certificates, tmp_path / "absent.pem")
    result = run(argv)
    line = assert_one_line_error(result, f"{mistake}: {' '.join(argv)}")
    assert line == expected
    assert "listening" not in result.stdout, f"{mistake}: the server announced anyway: {result.stdout!r}"
