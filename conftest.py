"""The harness: which servers the suite runs against, and how they are started and stopped.

Options (see ``pytest --help``, group "echo servers"):
  --impl NAME            a row of impls/table.py (repeatable; default: every default row,
                         i.e. not the sanitizer builds cpp-asan and cpp-tsan)
  --server-cmd COMMAND   any echo server; ``{port}`` (and ``{host}``) are filled in
  --server-addr H:P      a server that is already running
  --server-capabilities  what a --server-cmd server can do (announces, graceful-exit, ipv6)
  --transport tcp|tls    the transports to test (repeatable; default: tcp and tls for the
                         built-in rows, tcp for an external server)
  --tls-cafile, --tls-insecure   how to trust an external TLS server that does not use the
                         suite's test certificate ({cert}, {key}, {certkey}, {ca} in --server-cmd)
Each server is started once per pytest session (once per xdist worker) and stopped at the
end with SIGTERM; a built-in server that does not then exit 0 is reported as an error.
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, settings

from conformance.harness.report import MatrixPlugin
from conformance.harness.scenarios import NO_SHRINK
from conformance.harness.servers import STARTUP_TIMEOUT_S, Address
from conformance.harness.targets import (
    EXTERNAL,
    TCP,
    TRANSPORTS,
    Target,
    TargetSpec,
    parse_capabilities,
    serving,
)
from conformance.harness.tls import ClientTLS, TestCertificates
from impls.table import BY_NAME, IMPLEMENTATIONS, STANDARD, TLS

NAMED_ONLY = [name for name, impl in BY_NAME.items() if not impl.default]  # e.g. --impl cpp-asan

# Network I/O has no meaningful per-example deadline; the tests bound their own time.
_NETWORK = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", _NETWORK, max_examples=20)
settings.register_profile("ci", _NETWORK, max_examples=20, derandomize=True, print_blob=True)
settings.register_profile("deep", _NETWORK, max_examples=500, print_blob=True)
# The suite's own proofs (tests/) run it against broken servers only to see a scenario fail:
# derandomized like ci, without shrinking, which against a server that stalls would wait out
# a timeout for every shrink step.
settings.register_profile("selftest", settings.get_profile("ci"), phases=NO_SHRINK)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("echo servers", "which echo servers the suite runs against")
    group.addoption(
        "--impl",
        action="append",
        default=[],
        choices=sorted(BY_NAME),
        metavar="NAME",
        help="built-in implementation to test (repeatable; default: "
        f"{', '.join(impl.name for impl in IMPLEMENTATIONS)}; also {', '.join(NAMED_ONLY)})",
    )
    group.addoption(
        "--server-cmd",
        metavar="COMMAND",
        help="command that starts an echo server; {port} is replaced by a free port",
    )
    group.addoption("--server-addr", metavar="HOST:PORT", help="address of a running echo server")
    group.addoption(
        "--server-capabilities",
        action="append",
        default=[],
        metavar="NAMES",
        help="capabilities of the --server-cmd server, comma-separated or repeated "
        f"({', '.join(sorted(STANDARD))}); default: none, so the scenarios that need one skip",
    )
    group.addoption(
        "--transport",
        action="append",
        default=[],
        choices=TRANSPORTS,
        help="transport to test (repeatable; default: tcp and tls for built-in rows, tcp for "
        "--server-cmd/--server-addr; a --server-cmd for tls may use {cert} {key} {certkey} {ca})",
    )
    group.addoption(
        "--tls-cafile",
        metavar="PEM",
        help="CA to verify an external TLS server with (default: the suite's test CA, for a "
        "--server-cmd that uses {cert})",
    )
    group.addoption(
        "--tls-insecure",
        action="store_true",
        help="do not verify an external TLS server's certificate",
    )
    group.addoption(
        "--server-host",
        default="127.0.0.1",
        metavar="HOST",
        help="loopback address the started servers bind to (default 127.0.0.1)",
    )
    group.addoption(
        "--startup-timeout",
        type=float,
        default=STARTUP_TIMEOUT_S,
        metavar="SECONDS",
        help=f"how long a server may take to become ready (default {STARTUP_TIMEOUT_S})",
    )
    report = parser.getgroup("conformance report", "the scenarios x implementations matrix")
    report.addoption(
        "--report-json",
        default="reports/conformance.json",
        metavar="PATH",
        help="where to write the matrix as JSON ('' to skip; default reports/conformance.json)",
    )
    report.addoption(
        "--report-html",
        default="reports/conformance.html",
        metavar="PATH",
        help="where to write the matrix as HTML ('' to skip; default reports/conformance.html)",
    )
    report.addoption(
        "--list-scenarios",
        action="store_true",
        help="print the scenario catalogue (ID, level, title) and run nothing",
    )


def _target_specs(config: pytest.Config, certificates: TestCertificates) -> list[TargetSpec]:
    host: str = config.getoption("server_host")
    timeout: float = config.getoption("startup_timeout")
    command: str | None = config.getoption("server_cmd")
    address: str | None = config.getoption("server_addr")
    if command and address:
        raise pytest.UsageError("give --server-cmd or --server-addr, not both")
    try:
        capabilities = parse_capabilities(config.getoption("server_capabilities"))
    except ValueError as exc:
        raise pytest.UsageError(f"--server-capabilities: {exc}") from exc
    if capabilities and not command:
        raise pytest.UsageError("--server-capabilities describes a --server-cmd server; give one")
    external = bool(command or address)
    transports: list[str] = list(dict.fromkeys(config.getoption("transport"))) or (
        [TCP] if external else list(TRANSPORTS)
    )
    trust = (
        _external_trust(config, command, certificates)
        if external and TLS in transports
        else certificates.client()
    )
    base = TargetSpec(
        EXTERNAL, host=host, startup_timeout=timeout, certificates=certificates, client_tls=trust
    )
    if command:
        if "{port}" not in command:
            raise pytest.UsageError(
                "--server-cmd must contain {port}, e.g. 'socat TCP-LISTEN:{port},fork PIPE'"
            )
        base = replace(base, command=command, capabilities=capabilities)
    elif address:
        try:
            base = replace(base, address=Address.parse(address))
        except ValueError as exc:
            raise pytest.UsageError(f"--server-addr: {exc}") from exc
    if external:
        return [
            replace(base, name=_named(EXTERNAL, transport), transport=transport) for transport in transports
        ]
    names: list[str] = config.getoption("impl") or [impl.name for impl in IMPLEMENTATIONS]
    return [
        replace(base, name=_named(name, transport), implementation=BY_NAME[name], transport=transport)
        for transport in transports
        for name in dict.fromkeys(names)
        if transport == TCP or BY_NAME[name].has(TLS)
    ]


def _named(name: str, transport: str) -> str:
    """The test id: the row's name over TCP (as it always was), NAME-tls over TLS."""
    return name if transport == TCP else f"{name}-{transport}"


def _external_trust(config: pytest.Config, command: str | None, certificates: TestCertificates) -> ClientTLS:
    """How to trust an external TLS server: --tls-cafile, --tls-insecure, or the suite's CA
    when the command is given the suite's certificate."""
    cafile: str | None = config.getoption("tls_cafile")
    if config.getoption("tls_insecure"):
        return ClientTLS.trusting(None)
    if cafile:
        return ClientTLS.trusting(cafile)
    if command and any(f"{{{name}}}" in command for name in ("cert", "certkey")):
        return certificates.client()
    raise pytest.UsageError(
        "--transport tls for an external server: use {cert} and {key} (or {certkey}) in --server-cmd, "
        "or give --tls-cafile PEM or --tls-insecure"
    )


def pytest_configure(config: pytest.Config) -> None:
    # The test certificate (trustme), in a temporary directory removed at the end of the session.
    config.stash[CERTIFICATES] = TestCertificates()
    config.stash[TARGET_SPECS] = _target_specs(config, config.stash[CERTIFICATES])
    config.pluginmanager.register(MatrixPlugin(config), "conformance-matrix")
    config.addinivalue_line(
        "markers", "scenario(id, title, level): a conformance scenario (see conformance/)"
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    if certificates := config.stash.get(CERTIFICATES, None):
        certificates.cleanup()


# The servers of this session; public so that benchmarks/conftest.py can add its Node.js baseline.
TARGET_SPECS = pytest.StashKey[list[TargetSpec]]()
CERTIFICATES = pytest.StashKey[TestCertificates]()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "target" in metafunc.fixturenames:
        specs = metafunc.config.stash[TARGET_SPECS]
        metafunc.parametrize(
            "target", specs, ids=[spec.name for spec in specs], indirect=True, scope="session"
        )


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    """The running server under test, started once per session and implementation."""
    with serving(request.param) as running:
        yield running


# Whether a test's call phase failed: a failure may be the server dying, and the death may
# still be under way (a process printing its stack trace) when the test ends.
CALL_FAILED = pytest.StashKey[bool]()
DYING_GRACE_S = 0.5


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[CALL_FAILED] = report.failed
    return report


@pytest.fixture(autouse=True)
def _server_survives(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test during which the server process dies fails, naming how it died (a signal such
    as SIGPIPE, or an exit code) with its stderr; the next test gets a fresh server, so one
    crash does not turn every later scenario into a 'connection refused'. After a failed test
    the server gets DYING_GRACE_S to finish dying, so that a death this test caused is charged
    to it, not to the next one."""
    if "target" not in request.fixturenames:
        yield
        return
    running: Target = request.getfixturevalue("target")
    if running.server is not None and running.server.process.poll() is not None:
        running.restart()
    yield
    grace = DYING_GRACE_S if request.node.stash.get(CALL_FAILED, False) else 0.0
    if death := running.death(grace):
        pytest.fail(death, pytrace=False)
