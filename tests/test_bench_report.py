"""benchmarks.report over a small saved run (tests/fixtures/bench_run.json): tables, knees, targets,
charts, and the rule that a missing result is a gap, never a 0.

The fixture has cpp, node and asyncio; asyncio has no bulk-stream result, and its sweep never
gets p99 under 1 ms, so both show as gaps.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from benchmarks.catalogue import BULK, LATENCY, LATENCY_COLUMNS, SWEEP
from benchmarks.report.page import render
from benchmarks.report.runs import Run, Runs, load_run
from benchmarks.report.tables import bulk_table, knee, latency_table, limiter
from benchmarks.report.targets import checks

FIXTURE = Path(__file__).parent / "fixtures" / "bench_run.json"


@pytest.fixture(scope="module")
def run() -> Run:
    return load_run(FIXTURE)


def rows_of(markdown: str) -> dict[str, list[str]]:
    """A table's rows by their first cell."""
    rows = [line.strip("|").split("|") for line in markdown.splitlines()[2:]]
    return {cells[0].strip(): [cell.strip() for cell in cells[1:]] for cells in rows}


def test_latency_table_has_every_percentile_and_the_count(run: Run) -> None:
    """Every latency table shows p50, p90, p99, p99.9, max and the sample count."""
    table = latency_table(run)
    header = table.splitlines()[0]
    for column in LATENCY_COLUMNS:
        assert f" {column} " in header, header
    assert rows_of(table)["cpp"][1:7] == ["30.0", "40.0", "60.0", "90.0", "200.0", "200"]
    assert "closed loop" in LATENCY.title


def test_a_missing_result_is_a_gap(run: Run) -> None:
    """asyncio has no bulk result: its row is absent, never a 0 MB/s row."""
    rows = rows_of(bulk_table(run))
    assert "asyncio" not in rows
    assert rows["cpp"] == ["3,000", "2,800-3,100", "2.00x"]
    assert run.get(BULK.name, "asyncio", "mb_per_s") is None


def test_knees_and_what_limits_them(run: Run) -> None:
    """The knee is the highest achieved rate with p99 within the limit; the next step says why."""
    cpp = run.steps("cpp", SWEEP.name)
    at_1ms, at_10ms = knee(cpp, 1_000), knee(cpp, 10_000)
    assert at_1ms.rate == 50_000
    assert at_1ms.limit.startswith("server (one CPU saturated")
    assert at_10ms.rate == 99_000
    assert at_10ms.limit.startswith("client")
    assert knee(run.steps("asyncio", SWEEP.name), 1_000).rate is None


def test_waiting_for_a_cpu_is_the_machine() -> None:
    """A step past the knee whose server is far from a full CPU but whose threads waited on a run
    queue for 1 % of it is limited by the machine, not by queueing in the server."""
    step = {"server_cpu_share": 0.26, "client_cpu_share": 0.6, "kept_up": True}
    assert limiter(step).startswith("server (queueing below a full CPU")
    waited = {**step, "server_wait_share": 0.004, "client_wait_share": 0.025}
    assert limiter(waited) == (
        "machine (waiting for a CPU: server 4 ms/s, client 25 ms/s; server 0.26 CPU, client 0.60 CPU)"
    )


def test_knee_targets_are_judged(run: Run) -> None:
    """cpp's knees beat every row and 1.3x node in the fixture: both targets are met."""
    found = {check.goal: check for check in checks(Runs.of([run]))}
    knee_checks = [check for goal, check in found.items() if goal.startswith("cpp knee")]
    assert len(knee_checks) == 2
    assert all(check.met for check in knee_checks), knee_checks
    asyncio = next(check for goal, check in found.items() if goal.startswith("asyncio 100"))
    assert asyncio.met is None  # no load-100 result for asyncio: not judged, not failed


def test_page_and_charts(run: Run, tmp_path: Path) -> None:
    """The page leads with the sweep chart, and a missing bar is drawn as no bar (nan), not 0."""
    pytest.importorskip("matplotlib", reason="the charts need the 'plots' extra (matplotlib)")
    from benchmarks.report.charts import _value, draw_charts  # noqa: PLC0415

    charts = draw_charts(Runs.of([run]), tmp_path / "charts")
    assert [path.stem for path in charts] == ["sweep", "latency", "throughput", "load"]
    assert all(path.stat().st_size > 0 for path in charts)
    page = render(Runs.of([run]), charts, tmp_path / "benchmarks.md")
    images = [line for line in page.splitlines() if line.startswith("![")]
    assert images[0] == "![sweep](charts/sweep.png)"
    assert "## Knees (open loop)" in page
    assert math.isnan(_value(run, BULK.name, "asyncio", "mb_per_s"))
