"""Load from many agents on Dask (benchmarks.distributed), on loopback.

The run test drives the C++ server from a LocalCluster of 2 workers, the way the command runs
on one machine. The failure tests use a cluster started as the README ("Load from many machines")
tells users to start one on other machines (``dask scheduler``, ``dask worker ... --resources agent=1``),
with the workers in a directory of their own and no PYTHONPATH: the agents' code reaches them
inside the tasks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("distributed", reason="needs Dask: pip install -e '.[distributed]' (tox -e tests has it)")
pytest.importorskip("hdrh", reason="needs hdrhistogram: pip install -e '.[bench]' (tox's tests env has it)")

from hdrh.histogram import HdrHistogram

from benchmarks.distributed import NEEDS_DASK, report
from benchmarks.distributed.agent import CLIENT_ENV
from benchmarks.distributed.cli import split_rate
from conformance.harness.build import ensure_cpp_built
from conformance.harness.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
COMMAND = [sys.executable, "-m", "benchmarks.distributed"]
RUN_TIMEOUT_S = 120.0
CLUSTER_START_TIMEOUT_S = 30.0
SCHEDULER_FILE_POLL_S = 0.05


def run_command(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    argv = [*COMMAND, *args]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False, cwd=ROOT, env=env
    )


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{stderr}"
    return lines[0]


def test_merged_histogram_is_the_sum_not_an_average() -> None:
    """The run's percentiles come from the sum of the agents' histograms: a fast agent and a
    slow one give the percentiles of all their samples together."""
    fast, slow, together = (HdrHistogram(1, 60_000_000, 3) for _ in range(3))
    for value in range(1, 1001):
        fast.record_value(value)
        slow.record_value(value * 100)
        together.record_value(value)
        together.record_value(value * 100)
    merged = report.merge([fast.encode(), slow.encode().decode("ascii")])
    assert report.latency(merged) == report.latency(together)
    assert merged.get_total_count() == 2000
    averaged_p99 = (fast.get_value_at_percentile(99) + slow.get_value_at_percentile(99)) / 2
    assert merged.get_value_at_percentile(99) != averaged_p99


def test_the_rate_is_split_in_whole_requests() -> None:
    """Each agent gets a whole share of the rate, and the shares add up to it."""
    assert split_rate(1001, 3) == [334, 334, 333]
    assert sum(split_rate(7, 7)) == 7


def test_two_agents_drive_the_cpp_server(tmp_path: Path) -> None:
    """Two agents on a LocalCluster of two workers load the C++ server at one start instant:
    every echo is checked (no errors, no wrong echoes), the merged count is the sum of the
    agents' counts, and each agent ran on a worker of its own at about its share of the rate."""
    out = tmp_path / "run.json"
    rate, duration = 2000, 2.0
    result = run_command(
        *("--workers", "2", "--agents", "2", "--impl", "cpp", "--rate", str(rate)),
        *("--connections", "4", "--duration", str(duration), "--warmup", "0.5", "--json", str(out)),
    )
    assert result.returncode == 0, result.stderr
    whole = json.loads(out.read_text())
    agents, merged = whole["agents"], whole["merged"]
    assert len({row["worker"] for row in agents}) == 2
    for row in agents:
        assert (row["errors"], row["mismatches"], row["exit"]) == (0, 0, 0), row
        assert row["completed"] == row["sent"], row  # every request's echo came back and was checked
        assert row["target_rate"] == rate // 2
        assert row["count"] >= 0.5 * row["target_rate"] * duration, row
        assert row["start_margin_ms"] > 0
    assert merged["count"] == sum(row["count"] for row in agents)
    assert merged["count"] == report.merge(row["histogram"] for row in agents).get_total_count()
    assert merged["achieved_rate"] == pytest.approx(sum(row["achieved_rate"] for row in agents))
    assert whole["start"]["skew_bound_ms"] >= whole["start"]["measured_skew_ms"] >= 0
    assert "merged (the sum of 2 HdrHistograms)" in result.stdout


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A scheduler and two agent workers started with Dask's own commands, on loopback."""
    home = tmp_path_factory.mktemp("dask")
    scheduler_file = home / "scheduler.json"
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env[CLIENT_ENV] = str(ensure_cpp_built() / "client")  # this checkout's client, as a machine's own

    def start(*argv: str) -> subprocess.Popen[bytes]:
        quiet = subprocess.DEVNULL
        return subprocess.Popen(["dask", *argv], cwd=home, env=env, stdout=quiet, stderr=quiet)

    at = ("--host", "127.0.0.1", "--no-dashboard", "--scheduler-file", str(scheduler_file))
    scheduler = start("scheduler", *at, "--port", "0")
    workers = [start("worker", *at, "--nthreads", "1", "--resources", "agent=1") for _ in range(2)]
    try:
        yield scheduler_address(scheduler, scheduler_file)
    finally:
        for process in [*workers, scheduler]:
            process.terminate()
        for process in [*workers, scheduler]:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def scheduler_address(scheduler: subprocess.Popen[bytes], scheduler_file: Path) -> str:
    """The scheduler's address, from the file it writes once it listens."""
    deadline = time.monotonic() + CLUSTER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert scheduler.poll() is None, f"dask scheduler exited {scheduler.returncode}"
        if scheduler_file.exists() and (text := scheduler_file.read_text()):
            address: str = json.loads(text)["address"]
            return address
        time.sleep(SCHEDULER_FILE_POLL_S)  # a readiness probe: ends as soon as the file is written
    raise AssertionError(f"dask scheduler wrote no {scheduler_file} within {CLUSTER_START_TIMEOUT_S} s")


def test_a_dead_target_is_one_line_naming_the_worker(dask_cluster: str) -> None:
    """A target nobody listens on fails the run before it starts: exit status 3 and one line
    that names a worker and says why."""
    dead = f"127.0.0.1:{free_port()}"
    result = run_command("--scheduler", dask_cluster, "--target", dead, "--rate", "100", "--duration", "1")
    assert result.returncode == 3, result.stderr
    line = one_line(result.stderr)
    assert "on worker tcp://127.0.0.1:" in line
    assert f"cannot reach the target {dead}" in line


def test_a_worker_without_the_client_is_one_line_naming_it(dask_cluster: str, tmp_path: Path) -> None:
    """A worker that has no C++ client at the path given fails the run with one line naming it."""
    missing = tmp_path / "no-such-client"
    result = run_command(
        *("--scheduler", dask_cluster, "--target", f"127.0.0.1:{free_port()}"),
        *("--rate", "100", "--client", str(missing)),
    )
    assert result.returncode == 3, result.stderr
    line = one_line(result.stderr)
    assert "on worker tcp://127.0.0.1:" in line
    assert f"no executable C++ client at {missing}" in line


def test_too_few_agent_workers_is_one_line(dask_cluster: str) -> None:
    """More agents than workers offering the agent resource: one line, exit status 3."""
    result = run_command(
        *("--scheduler", dask_cluster, "--target", "127.0.0.1:7", "--agents", "3", "--rate", "300"),
        *("--wait", "1"),
    )
    assert result.returncode == 3, result.stderr
    assert "--agents 3 needs 3 workers with the resource agent=1" in one_line(result.stderr)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--impl", "cpp"], "the following arguments are required: --rate"),
        (["--impl", "cpp", "--rate", "0"], "expected a positive int, got '0'"),
        (["--target", "localhost", "--rate", "10"], "expected HOST:PORT"),
        (["--impl", "cpp", "--rate", "1", "--agents", "2"], "less than one request/s per agent"),
        (["--impl", "cpp", "--target", "127.0.0.1:7", "--rate", "10"], "not allowed with argument"),
    ],
)
def test_bad_flags_are_one_line_and_status_2(args: list[str], says: str) -> None:
    """Bad options: one line on stderr, exit status 2, before any cluster starts."""
    result = run_command(*args)
    assert result.returncode == 2
    assert says in one_line(result.stderr)


def test_without_dask_the_command_says_so_in_one_line(tmp_path: Path) -> None:
    """Without Dask installed, the command says what to install in one line (exit status 3)
    and an import of the package raises ImportError saying the same."""
    (tmp_path / "distributed.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'distributed'\", name='distributed')\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    result = run_command("--help", env=env)
    assert result.returncode == 3
    assert NEEDS_DASK in one_line(result.stderr)
    imported = subprocess.run(
        [sys.executable, "-c", "import benchmarks.distributed"],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
        cwd=ROOT,
        env=env,
    )
    assert imported.returncode == 1
    assert imported.stderr.strip().splitlines()[-1] == f"ImportError: {NEEDS_DASK}"


def test_an_unreachable_scheduler_is_one_line() -> None:
    """A scheduler address nobody answers at: one line, exit status 3, within --wait."""
    scheduler = f"tcp://127.0.0.1:{free_port()}"
    result = run_command("--scheduler", scheduler, "--target", "127.0.0.1:7", "--rate", "10", "--wait", "2")
    assert result.returncode == 3
    assert f"cannot reach the Dask scheduler at {scheduler}" in one_line(result.stderr)
