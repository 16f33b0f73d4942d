"""The pytest plugin of the echo conformance suite: which servers it runs against, the scenario
selection, the verdicts and the report.

Installed with the package, pytest loads it everywhere (entry point ``pytest11``), so it does
nothing until a session runs the suite: a session that collects the ``conformance`` package
(``pytest --pyargs conformance``, ``pytest conformance`` in a clone) or names a server with one
of its options. In a clone, the root ``conftest.py`` loads it too.

Options (see ``pytest --help``, groups "echo servers" and "conformance report"):
  --impl NAME            a row of impls/table.py (repeatable; default: every default row,
                         i.e. not the sanitizer builds cpp-asan and cpp-tsan)
  --server-cmd COMMAND   any echo server; ``{port}`` (and ``{host}``) are filled in
  --server-addr H:P      a server that is already running
  --server-capabilities  what a --server-cmd server can do (announces, graceful-exit, ipv6)
  --transport tcp|tls    the transports to test (repeatable; default: tcp and tls for the
                         built-in rows, tcp for an external server)
  --tls-cafile, --tls-insecure   how to trust an external TLS server that does not use the
                         suite's test certificate ({cert}, {key}, {certkey}, {ca} in --server-cmd)
  --scenario ID|FAMILY   run only these scenarios (repeatable; exact IDs or family names)
  --strict-should        a failed SHOULD fails the run too
  --expect FILE          scenarios this server is known to fail, each with a reason (JSON)
  --report-dir DIR       where the JSON, HTML and JUnit reports go (default: a new directory
                         under reports/ for every run; '' for none)
  --list-scenarios       print the catalogue and run nothing

Each server is started once per pytest session (once per xdist worker) and stopped at the
end with SIGTERM; a built-in server that does not then exit 0 is reported as an error. Before
any test runs, each server is started (or, given an address, reached) once: if it cannot be,
the run stops with one line (pytest's usage error, status 4; echo-conformance says 3).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import time
from collections.abc import Generator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from conformance.exitstatus import UNAVAILABLE
from conformance.harness.report import (
    EXPECTED,
    FAIL,
    NON_STRICT,
    PASS,
    SKIP,
    Case,
    Matrix,
    render_text,
    write_html,
    write_json,
)
from conformance.harness.scenarios import (
    NO_SHRINK,
    Scenario,
    catalogue,
    render_catalogue,
    scenario_of,
    scenario_of_function,
    select,
)
from conformance.harness.servers import STARTUP_TIMEOUT_S, Address
from conformance.harness.targets import (
    EXTERNAL,
    ServerUnavailable,
    Target,
    TargetSpec,
    parse_capabilities,
    replay_command,
    serving,
)
from conformance.harness.tls import ClientTLS, TestCertificates
from impls.table import BY_NAME, IMPLEMENTATIONS, IMPORT_ROOT, STANDARD, TCP, TLS, TRANSPORTS

PACKAGE_DIR = Path(__file__).resolve().parent
NAMED_ONLY = [name for name, impl in BY_NAME.items() if not impl.default]  # e.g. --impl cpp-asan
REPORTS = Path("reports")
LATEST = "latest"  # reports/latest: the newest run's directory

# Network I/O has no meaningful per-example deadline; the tests bound their own time.
_NETWORK = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", _NETWORK, max_examples=20)
settings.register_profile("ci", _NETWORK, max_examples=20, derandomize=True, print_blob=True)
settings.register_profile("deep", _NETWORK, max_examples=500, print_blob=True)
# The suite's own proofs (tests/) run it against broken servers only to see a scenario fail:
# derandomized like ci, without shrinking, which against a server that stalls would wait out
# a timeout for every shrink step.
settings.register_profile("selftest", settings.get_profile("ci"), phases=NO_SHRINK)

# What pytest_configure works out, for the hooks and fixtures that follow.
TARGET_SPECS = pytest.StashKey[list[TargetSpec]]()
CERTIFICATES = pytest.StashKey[TestCertificates]()
SELECTED = pytest.StashKey[set[str] | None]()  # --scenario: the chosen IDs (None: all)
EXPECTATIONS = pytest.StashKey[dict[str, str]]()  # --expect: scenario ID -> reason
# After a failed test the server gets this long to finish dying, so that a death the test
# caused is charged to it, not to the next one (a process printing its stack trace).
DYING_GRACE_S = 0.5


class ServerDied(pytest.fail.Exception):  # type: ignore[misc,name-defined]
    """The server the suite started died during a test: always a FAIL, whatever the level."""


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
    report = parser.getgroup("conformance report", "the scenarios x targets matrix and its verdicts")
    report.addoption(
        "--scenario",
        action="append",
        default=[],
        metavar="ID",
        help="run only this scenario (repeatable): an exact ID (HALF-001) or a family (ECHO)",
    )
    report.addoption(
        "--strict-should",
        action="store_true",
        help="a failed SHOULD scenario fails the run (default: reported as NON-STRICT, the run passes)",
    )
    report.addoption(
        "--expect",
        metavar="FILE",
        help='a JSON file {"SCENARIO-ID": "why it fails", ...}: known failures, reported EXPECTED, '
        "not failing the run",
    )
    report.addoption(
        "--report-dir",
        metavar="DIR",
        help="write conformance.json, conformance.html and junit.xml there ('' for none; "
        f"default: a new directory under {REPORTS}/ for each run, with {REPORTS}/{LATEST} pointing to it)",
    )
    report.addoption(
        "--list-scenarios",
        action="store_true",
        help="print the scenario catalogue (ID, level, title) and run nothing",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if config.getoption("list_scenarios"):
        print(render_catalogue(catalogue()))
        return 0
    return None


def _collects_the_suite(config: pytest.Config) -> bool:
    """Whether this session's arguments reach the scenario modules (this package)."""
    for argument in config.args:
        name = argument.split("::")[0]
        path = Path(name)
        if config.getoption("pyargs") and not path.exists():
            try:
                spec = importlib.util.find_spec(name)
            except (ImportError, ValueError):
                continue
            if spec is None or spec.origin is None:
                continue
            path = Path(spec.origin).parent if spec.origin.endswith("__init__.py") else Path(spec.origin)
        path = path.resolve()
        if path.is_relative_to(PACKAGE_DIR) or PACKAGE_DIR.is_relative_to(path):
            return True
    return False


def _names_a_server(config: pytest.Config) -> bool:
    return bool(config.getoption("impl") or config.getoption("server_cmd") or config.getoption("server_addr"))


def _in_the_clone(config: pytest.Config) -> bool:
    """A session of this repository itself (its root conftest.py loads this plugin)."""
    return config.rootpath.resolve() == IMPORT_ROOT and (config.rootpath / "conftest.py").is_file()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "scenario(id, title, level): a conformance scenario (see conformance/)"
    )
    config.addinivalue_line("markers", "transport(name): a scenario family that exists on one transport only")
    if not (_collects_the_suite(config) or _names_a_server(config) or _in_the_clone(config)):
        return  # another project's session: the plugin stays out of its way
    if not config.getoption("hypothesis_profile", None):
        settings.load_profile("ci" if os.environ.get("CI") else "dev")
    known = catalogue()
    config.stash[SELECTED] = _selection(config, known)
    config.stash[EXPECTATIONS] = _expectations(config, known)
    # The test certificate (trustme), in a temporary directory removed at the end of the session.
    config.stash[CERTIFICATES] = TestCertificates()
    config.stash[TARGET_SPECS] = _target_specs(config, config.stash[CERTIFICATES])
    _check_servers(config, config.stash[TARGET_SPECS])
    config.pluginmanager.register(MatrixPlugin(config, _report_dir(config)), "conformance-matrix")


def pytest_unconfigure(config: pytest.Config) -> None:
    if certificates := config.stash.get(CERTIFICATES, None):
        certificates.cleanup()


def _selection(config: pytest.Config, known: dict[str, Scenario]) -> set[str] | None:
    wanted: list[str] = config.getoption("scenario")
    if not wanted:
        return None
    try:
        return select(wanted, known)
    except ValueError as exc:
        raise pytest.UsageError(f"--scenario: {exc}") from exc


def _expectations(config: pytest.Config, known: dict[str, Scenario]) -> dict[str, str]:
    """The --expect file: a JSON object, scenario ID -> the reason it is known to fail."""
    path: str | None = config.getoption("expect")
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise pytest.UsageError(f"--expect {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise pytest.UsageError(f"--expect {path}: not JSON ({exc.msg}, line {exc.lineno})") from exc
    if not isinstance(data, dict) or not all(isinstance(v, str) and v.strip() for v in data.values()):
        raise pytest.UsageError(f'--expect {path}: expected {{"SCENARIO-ID": "the reason it fails", ...}}')
    if unknown := sorted(set(data) - set(known)):
        raise pytest.UsageError(f"--expect {path}: unknown scenario IDs {', '.join(unknown)}")
    return dict(data)


def _report_dir(config: pytest.Config) -> Path | None:
    """Where this run's reports go; a default run gets a new directory of its own."""
    chosen: str | None = config.getoption("report_dir")
    if chosen is not None:
        return Path(chosen) if chosen else None
    if hasattr(config, "workerinput"):
        return None  # xdist workers report to the controller, which writes the files
    stamp = time.strftime("%Y%m%d-%H%M%S")
    directory = REPORTS / stamp
    for suffix in range(2, 100):
        if not directory.exists():
            break
        directory = REPORTS / f"{stamp}-{suffix}"
    return directory


def _target_specs(config: pytest.Config, certificates: TestCertificates) -> list[TargetSpec]:
    host: str = config.getoption("server_host")
    timeout: float = config.getoption("startup_timeout")
    command: str | None = config.getoption("server_cmd")
    address: str | None = config.getoption("server_addr")
    if command and address:
        raise pytest.UsageError("give --server-cmd or --server-addr, not both")
    if (command or address) and config.getoption("impl"):
        raise pytest.UsageError("give --impl, or --server-cmd / --server-addr, not both")
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
    if cafile and config.getoption("tls_insecure"):
        raise pytest.UsageError("give --tls-cafile or --tls-insecure, not both")
    if config.getoption("tls_insecure"):
        return ClientTLS.trusting(None)
    if cafile:
        if not Path(cafile).is_file():
            raise pytest.UsageError(f"--tls-cafile {cafile}: no such file")
        try:
            return ClientTLS.trusting(cafile)
        except OSError as exc:  # ssl.SSLError too: not a PEM certificate
            raise pytest.UsageError(f"--tls-cafile {cafile}: not a usable CA certificate ({exc})") from exc
    if command and any(f"{{{name}}}" in command for name in ("cert", "certkey")):
        return certificates.client()
    raise pytest.UsageError(
        "--transport tls for an external server: use {cert} and {key} (or {certkey}) in --server-cmd, "
        "or give --tls-cafile PEM or --tls-insecure"
    )


def _check_servers(config: pytest.Config, specs: list[TargetSpec]) -> None:
    """The up-front check: every server can be started, or reached, before any test runs. If
    one cannot, the run stops with one line (pytest's usage error; echo-conformance's exit 3)."""
    if hasattr(config, "workerinput") or config.getoption("collectonly"):
        return  # the xdist controller checked already; a collection starts nothing
    if not (_collects_the_suite(config) or _names_a_server(config)):
        return  # e.g. the suite's own tests in a clone: no scenario runs
    for spec in specs:
        try:
            spec.check_available()
        except ServerUnavailable as exc:
            config.stash[UNAVAILABLE] = str(exc)
            raise pytest.UsageError(f"the server could not be started or reached: {exc}") from exc


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(
    collector: pytest.Collector, name: str, obj: object
) -> list[pytest.Item] | None:
    """A scenario for one transport is not generated at all when no target speaks it."""
    specs = collector.config.stash.get(TARGET_SPECS, None)
    module = getattr(collector, "obj", None)
    found = scenario_of_function(obj, module) if specs is not None else None
    if found is not None and found.transport and not _specs_for(specs or [], found):
        return []
    return None


def _specs_for(specs: list[TargetSpec], found: Scenario) -> list[TargetSpec]:
    if found.transport is None:
        return specs
    return [spec for spec in specs if spec.transport == found.transport]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    found = scenario_of_function(metafunc.function, metafunc.module)
    all_specs = metafunc.config.stash.get(TARGET_SPECS, None)
    if found is not None and all_specs is not None and "target" in metafunc.fixturenames:
        specs = _specs_for(all_specs, found)
        metafunc.parametrize(
            "target", specs, ids=[spec.name for spec in specs], indirect=True, scope="session"
        )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """--scenario: keep exactly the chosen scenarios (``-k`` matches names, not IDs)."""
    chosen = config.stash.get(SELECTED, None)
    if chosen is None:
        return
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        found = scenario_of(item)
        (kept if found is not None and found.id in chosen else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session")
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    """The running server under test, started once per session and target."""
    with serving(request.param) as running:
        yield running


def _targets(item: pytest.Item) -> list[Target]:
    funcargs: dict[str, object] = getattr(item, "funcargs", {})
    return [value for value in funcargs.values() if isinstance(value, Target)]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    """Before a test: a server of the session that died since the last test is replaced."""
    yield
    for running in _targets(item):
        running.recover()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """A test during which a server the suite started dies fails, whatever its level, naming how
    the server died (a signal such as SIGPIPE, or an exit code) with its stderr; the next test
    gets a fresh server, so one crash does not turn every later scenario into "connection refused"."""
    __tracebackhide__ = True  # a failure is the test's own: this frame is not part of its story
    failure: BaseException | None = None
    try:
        yield
    except BaseException as exc:
        failure = exc
    grace = DYING_GRACE_S if failure is not None else 0.0
    for running in _targets(item):
        if death := running.death(grace):
            during = f"{death}\n  (the test's own failure: {_first_line(failure)})" if failure else death
            raise ServerDied(f"{during}\n  [it died during this test]", pytrace=False) from failure
    if failure is not None:
        raise failure


def _first_line(failure: BaseException) -> str:
    return next((line for line in str(failure).splitlines() if line.strip()), type(failure).__name__)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """The suite's own verdict of a scenario test, in its report (user property "verdict"): a
    failed SHOULD becomes NON-STRICT, a failure the --expect file lists becomes EXPECTED; both
    pass the run. A failure also carries the command line that replays it."""
    report = yield
    found = scenario_of(item)
    if found is None or report.when != "call":
        return report
    if report.failed and not call.excinfo.errisinstance(ServerDied):  # type: ignore[union-attr]
        expected = item.config.stash.get(EXPECTATIONS, {})
        if found.id in expected:
            _soften(item, report, EXPECTED, f"expected to fail: {expected[found.id]}")
        elif found.level == "SHOULD" and not item.config.getoption("strict_should"):
            _soften(item, report, NON_STRICT, f"{found.id} is a SHOULD")
    if report.failed or dict(report.user_properties).get("verdict") in (NON_STRICT, EXPECTED):
        replay = _replay(item, found)
        _add_property(item, report, "replay", replay)
        report.sections.append(("replay", replay))
    return report


def _soften(item: pytest.Item, report: pytest.TestReport, verdict: str, why: str) -> None:
    report.outcome = "passed"
    _add_property(item, report, "verdict", verdict)
    report.sections.append((verdict.lower(), why))


def _add_property(item: pytest.Item, report: pytest.TestReport, name: str, value: str) -> None:
    """On the call's report (for the matrix) and on the item, whose later teardown report
    carries it into JUnit as a <property>."""
    report.user_properties.append((name, value))
    item.user_properties.append((name, value))


def _replay(item: pytest.Item, found: Scenario) -> str:
    spec = getattr(getattr(item, "callspec", None), "params", {}).get("target")
    seed = item.config.getoption("hypothesis_seed", None)
    extra = [f"--hypothesis-seed={seed}"] if seed is not None else []
    if isinstance(spec, TargetSpec):
        return replay_command(spec, found.id, extra)
    return shlex.join(["echo-conformance", "--scenario", found.id, *extra])


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, str] | None:
    """NON-STRICT and EXPECTED are categories of their own in the progress and the closing line."""
    verdict = dict(report.user_properties).get("verdict") if report.when == "call" else None
    if verdict == NON_STRICT:
        return "non-strict", "n", "NON-STRICT"
    if verdict == EXPECTED:
        return "expected", "e", "EXPECTED"
    return None


class MatrixPlugin:
    """Builds the matrix from the reports (in the xdist controller too) and writes it out."""

    def __init__(self, config: pytest.Config, report_dir: Path | None) -> None:
        self.config = config
        self.report_dir = report_dir
        self.matrix = Matrix(
            expected=config.stash.get(EXPECTATIONS, {}),
            order=[spec.name for spec in config.stash.get(TARGET_SPECS, [])],
        )
        if report_dir is not None and not config.option.xmlpath:
            config.option.xmlpath = str(report_dir / "junit.xml")  # pytest's own JUnit writer

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        for item in items:
            if (found := scenario_of(item)) is None:
                continue
            params = getattr(item, "callspec", None)
            target_name = getattr(params.params.get("target"), "name", "?") if params else "?"
            item.user_properties.extend(
                [
                    ("scenario", found.id),
                    ("title", found.title),
                    ("level", found.level),
                    ("target", target_name),
                ]
            )

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = {name: str(value) for name, value in report.user_properties}
        if "scenario" not in props or (verdict := _verdict(report, props)) is None:
            return
        found = Scenario(
            props["scenario"], props["title"], "SHOULD" if props["level"] == "SHOULD" else "MUST"
        )
        case_name = report.nodeid.rsplit("::", 1)[-1]
        summary = _summary(report) if verdict != PASS else ""
        detail = report.longreprtext if verdict not in (PASS, SKIP) else summary
        case = Case(case_name, verdict, summary, detail, props.get("replay", ""))
        self.matrix.record(found, props["target"], case, ran=report.when == "call")

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not self.matrix.scenarios:
            return
        terminalreporter.section("conformance matrix")
        for line in render_text(self.matrix).splitlines():
            terminalreporter.write_line(line)
        if self.report_dir is None or hasattr(self.config, "workerinput"):
            return
        command = shlex.join(["pytest", *self.config.invocation_params.args])
        write_json(self.matrix, self.report_dir / "conformance.json", command)
        write_html(self.matrix, self.report_dir / "conformance.html", command)
        _point_latest(self.report_dir)
        terminalreporter.write_line(
            f"report: {self.report_dir / 'conformance.html'} (also conformance.json, junit.xml)"
        )


def _point_latest(report_dir: Path) -> None:
    """reports/latest -> the newest default run's directory."""
    if report_dir.parent != REPORTS:
        return
    latest = REPORTS / LATEST
    if latest.is_symlink() or not latest.exists():
        latest.unlink(missing_ok=True)
        latest.symlink_to(report_dir.name)


def _summary(report: pytest.TestReport) -> str:
    """One line that says what happened: the failed assertion's message or the skip reason."""
    if isinstance(report.longrepr, tuple):
        return report.longrepr[2].removeprefix("Skipped: ")
    crash = getattr(report.longrepr, "reprcrash", None)
    message = getattr(crash, "message", "") or report.longreprtext
    return next((line.strip() for line in message.splitlines() if line.strip()), "")


def _verdict(report: pytest.TestReport, props: dict[str, str]) -> str | None:
    """One phase's verdict; None: the phase says nothing new (a setup or teardown that passed)."""
    if "verdict" in props and report.when == "call":
        return props["verdict"]
    if report.passed:
        return PASS if report.when == "call" else None
    return SKIP if report.skipped else FAIL
