"""Benchmark options and fixtures; the servers come from the root conftest's ``target`` fixture.

Options (group "echo benchmarks"):
  --quick                  the CI profile: short runs, so the benchmarks cannot rot
  --placement {any,same-cpu,cross-cpu}
                           pin the server and the client to the same CPU or to different ones

``--benchmark-compare`` with no saved run to compare with (a fresh clone) is not an error: the
run goes ahead uncompared, and the report header and the summary say how to save a baseline.

Each workload is one test function over the fixture ``server``: the root conftest's TCP targets
(every row of impls/table.py, or --server-cmd / --server-addr) plus the reference ``node``
(Node.js ``net.createServer(s => s.pipe(s))``), so every table has its baseline. The
round-trip floor is sockperf's own server and client, a workload of its own. The TLS workloads
(test_tls.py) run over the fixture ``tls_server``: the TLS targets plus socat's OPENSSL-LISTEN
as their baseline.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pytest_benchmark.logger import Logger
from pytest_benchmark.utils import get_machine_id, load_storage

from benchmarks.catalogue import NODE, SOCAT, SOCAT_TLS
from benchmarks.record import run_description
from benchmarks.workloads import (
    FULL,
    NODE_COMMAND,
    PLACEMENTS,
    QUICK,
    SOCAT_COMMAND,
    SOCAT_TLS_COMMAND,
    Placement,
    Profile,
    have,
    raise_fd_limit,
    start_sockperf_server,
)
from conformance.harness.build import BuildError, ensure_cpp_built
from conformance.harness.servers import Address, ServerProcess
from conformance.harness.targets import Target, TargetSpec, serving
from conformance.plugin import TARGET_SPECS
from impls.table import TCP, TLS

# Before any server starts: 10,000 connections need 10,000 descriptors in the server (which
# inherits this limit) and as many in the load client.
raise_fd_limit()
# The machine's load before this run adds its own: the report flags runs on a busy machine.
LOAD_AVERAGE_AT_START = os.getloadavg()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("echo benchmarks", "benchmarks of the echo servers (benchmarks/)")
    group.addoption(
        "--quick",
        action="store_true",
        help="quick profile: short runs and small sizes (CI); numbers are indicative only",
    )
    group.addoption(
        "--placement",
        choices=PLACEMENTS,
        default="any",
        help="pin server and client to the same CPU, to different CPUs, or not at all (default any)",
    )


NO_BASELINE = pytest.StashKey[str]()


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Before pytest-benchmark loads its baseline: with none saved, compare with nothing."""
    compare = config.getoption("benchmark_compare")
    if not compare:
        return
    # pytest-benchmark's own loader, as its session builds it (the package has no type hints).
    storage = load_storage(  # type: ignore[no-untyped-call]
        config.getoption("benchmark_storage"),
        logger=Logger(Logger.QUIET, config=config),  # type: ignore[no-untyped-call]
        default_machine_id=get_machine_id(),  # type: ignore[no-untyped-call]
        netrc=config.getoption("benchmark_netrc"),
    )
    if list(storage.load() if compare is True else storage.load(compare)):
        return
    config.option.benchmark_compare = False
    wanted = "no saved benchmark run" if compare is True else f"no saved benchmark run matches {compare!r}"
    config.stash[NO_BASELINE] = (
        f"--benchmark-compare: nothing to compare yet ({wanted} in {storage}); this run is not "
        "compared. Save a baseline with --benchmark-autosave (or --benchmark-save=NAME), then "
        "run again with --benchmark-compare."
    )


def pytest_report_header(config: pytest.Config) -> str | None:
    return config.stash.get(NO_BASELINE, None)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    if notice := config.stash.get(NO_BASELINE, None):
        terminalreporter.write_line(notice, yellow=True)


@pytest.hookimpl(optionalhook=True)
def pytest_benchmark_update_json(config: pytest.Config, output_json: dict[str, Any]) -> None:
    """Save the command, the machine and its load with the results (for benchmarks.report)."""
    profile = "quick" if config.getoption("quick") else "full"
    output_json["echo"] = run_description(
        config, profile, config.getoption("placement"), LOAD_AVERAGE_AT_START
    )


@pytest.fixture(scope="session")
def profile(request: pytest.FixtureRequest) -> Profile:
    return QUICK if request.config.getoption("quick") else FULL


@pytest.fixture(scope="session")
def placement(request: pytest.FixtureRequest) -> Iterator[Placement]:
    """Pins this process (the client, and the clients it starts) for the whole session."""
    try:
        chosen = Placement.choose(request.config.getoption("placement"))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from exc
    original = os.sched_getaffinity(0)
    if chosen.client_cpus is not None:
        os.sched_setaffinity(0, chosen.client_cpus)
    yield chosen
    os.sched_setaffinity(0, original)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``server``: this session's TCP targets, then the Node.js baseline every workload is compared
    with; ``sweep_server``: the same and socat's echo (the open-loop sweep's second reference);
    ``tls_server``: its TLS targets, then socat's OPENSSL-LISTEN."""
    targets: list[TargetSpec] = metafunc.config.stash[TARGET_SPECS]
    host: str = metafunc.config.getoption("server_host")
    node = TargetSpec(NODE, command=NODE_COMMAND, host=host)
    socat = TargetSpec(SOCAT, command=SOCAT_COMMAND, host=host)
    tls_baseline = _socat_tls(targets, host)
    for fixture, transport, baselines in (
        ("server", TCP, [node]),
        ("sweep_server", TCP, [node, socat]),
        ("tls_server", TLS, [tls_baseline] if tls_baseline else []),
    ):
        if fixture in metafunc.fixturenames:
            specs = [spec for spec in targets if spec.transport == transport] + baselines
            metafunc.parametrize(
                fixture, specs, ids=[spec.name for spec in specs], indirect=True, scope="session"
            )


def _socat_tls(targets: list[TargetSpec], host: str) -> TargetSpec | None:
    """socat's OPENSSL-LISTEN with the suite's test certificate; None when no TLS target runs."""
    tls_targets = [spec for spec in targets if spec.transport == TLS]
    if not tls_targets:
        return None
    return replace(tls_targets[0], name=SOCAT_TLS, implementation=None, command=SOCAT_TLS_COMMAND, host=host)


@pytest.fixture(scope="session")
def server(request: pytest.FixtureRequest) -> Iterator[Target]:
    """The running TCP server a workload measures, started once per session."""
    yield from _serve(request.param)


@pytest.fixture(scope="session")
def sweep_server(request: pytest.FixtureRequest) -> Iterator[Target]:
    """The running TCP server the open-loop sweep measures (node and socat among them)."""
    yield from _serve(request.param)


@pytest.fixture(scope="session")
def tls_server(request: pytest.FixtureRequest) -> Iterator[Target]:
    """The running TLS server a TLS workload measures, started once per session."""
    yield from _serve(request.param)


def _serve(spec: TargetSpec) -> Iterator[Target]:
    for baseline, program in ((NODE, "node"), (SOCAT, "socat"), (SOCAT_TLS, "socat")):
        if spec.name == baseline and not have(program):
            pytest.skip(f"the {baseline} baseline needs {program!r} on PATH")
    with serving(spec) as running:
        yield running


@pytest.fixture(scope="session")
def sockperf_server(request: pytest.FixtureRequest) -> Iterator[tuple[ServerProcess, Address]]:
    """sockperf's own server: with sockperf's client, the round-trip floor of this machine."""
    if not have("sockperf"):
        pytest.skip("the latency floor needs 'sockperf' on PATH (apt-get install sockperf)")
    host: str = request.config.getoption("server_host")
    server, address = start_sockperf_server(host)
    yield server, address
    server.stop()


@pytest.fixture(scope="session")
def cpp_client() -> Path:
    """The C++ client (cpp/build/client), built if it is missing or stale."""
    try:
        return ensure_cpp_built() / "client"
    except BuildError as exc:
        pytest.fail(f"the C++ load client could not be built: {exc}", pytrace=False)
