"""``python -m benchmarks.distributed``: open-loop load from many agents, one merged report.

    python -m benchmarks.distributed --impl cpp --agents 2 --rate 20000 --duration 5
    python -m benchmarks.distributed --scheduler tcp://10.0.0.1:8786 --target 10.0.0.9:5052 \\
        --agents 4 --rate 200000 --connections 50 --duration 10 --json run.json

The steps: the target (a built-in implementation started here, or an address); the cluster (a
scheduler, or a LocalCluster); one worker per agent; the checks on each worker (its C++ client,
a connection to the target); the workers' clock offsets; the common start, ``--lead`` seconds
ahead; the agents' results, merged into one report.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.distributed import EXIT_UNAVAILABLE, agent, cluster, report
from conformance.cli import OneLineParser
from conformance.harness.build import BuildError
from conformance.harness.servers import Address, ServerStartError
from conformance.harness.targets import TargetSpec
from impls.table import BY_NAME

PROGRAM = "python -m benchmarks.distributed"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_CODES = {
    EXIT_OK: "every agent ran at the common start and every echo was right",
    EXIT_FAILED: "an agent failed during the run, started late, or saw wrong echoes or errors",
    EXIT_USAGE: "a bad option or value",
    EXIT_UNAVAILABLE: "something the run needs is missing: Dask, the scheduler, enough agent workers, "
    "a worker's C++ client, the target",
}
RESULT_SLACK_S = 120.0  # beyond the lead, warm-up and duration, how long to wait for the agents


class Failure(Exception):
    """The run cannot go on; one line, and the exit status."""

    def __init__(self, line: str, status: int) -> None:
        super().__init__(line)
        self.status = status


def _positive(kind: type[int] | type[float]) -> Any:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}")
        return value

    return parse


def _address(text: str) -> Address:
    try:
        return Address.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parser() -> argparse.ArgumentParser:
    codes = "\n".join(f"  {code}  {meaning}" for code, meaning in EXIT_CODES.items())
    cli = OneLineParser(
        prog=PROGRAM,
        description="Open-loop load on one echo server from C++ agents on Dask workers; one merged report.",
        epilog=f"exit status:\n{codes}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = cli.add_mutually_exclusive_group()
    where.add_argument("--scheduler", metavar="tcp://HOST:8786", help="a running Dask scheduler")
    where.add_argument(
        "--workers", type=_positive(int), metavar="N", help="a LocalCluster of N workers (default: --agents)"
    )
    target = cli.add_mutually_exclusive_group(required=True)
    target.add_argument("--target", type=_address, metavar="HOST:PORT", help="a running echo server")
    target.add_argument(
        "--impl", choices=sorted(BY_NAME), metavar="NAME", help="a built-in server, started here"
    )
    cli.add_argument(
        "--listen", default="127.0.0.1", metavar="HOST", help="where --impl listens (default 127.0.0.1)"
    )
    load = cli.add_argument_group("the load")
    load.add_argument("--agents", type=_positive(int), default=2, metavar="N", help="load agents (default 2)")
    load.add_argument(
        "--rate",
        type=_positive(int),
        required=True,
        metavar="R",
        help="requests/s in total, split over agents",
    )
    load.add_argument(
        "--connections", type=_positive(int), default=10, metavar="C", help="per agent (default 10)"
    )
    load.add_argument("--duration", type=_positive(float), default=5.0, metavar="S", help="measured seconds")
    load.add_argument("--warmup", type=float, default=0.5, metavar="S", help="unmeasured seconds first (0.5)")
    load.add_argument("--size", type=_positive(int), default=64, metavar="BYTES", help="message size (64)")
    load.add_argument(
        "--arrival",
        choices=("fixed", "poisson"),
        default="fixed",
        help="fixed (default; the agents' schedules interleave) or poisson (each agent its own seed)",
    )
    run = cli.add_argument_group("the run")
    run.add_argument(
        "--client",
        metavar="PATH",
        help=f"the C++ client's path on every worker (default: ${agent.CLIENT_ENV} there, or its build)",
    )
    run.add_argument(
        "--lead",
        type=_positive(float),
        default=2.0,
        metavar="S",
        help="the common start: S seconds ahead (2)",
    )
    run.add_argument(
        "--wait", type=_positive(float), default=30.0, metavar="S", help="for the scheduler and workers (30)"
    )
    run.add_argument("--json", type=Path, metavar="FILE", help="write the whole report, histograms too")
    return cli


def split_rate(total: int, agents: int) -> list[int]:
    """Whole requests/s per agent, adding up to the total."""
    share, extra = divmod(total, agents)
    return [share + (1 if index < extra else 0) for index in range(agents)]


@contextlib.contextmanager
def target_address(options: argparse.Namespace) -> Iterator[tuple[Address, str]]:
    """The target's address and name: the one given, or a built-in server started here."""
    if options.target is not None:
        yield options.target, str(options.target)
        return
    spec = TargetSpec(options.impl, implementation=BY_NAME[options.impl], host=options.listen)
    try:
        server, address = spec.launch()
    except BuildError as exc:
        raise Failure(f"{options.impl}: {str(exc).splitlines()[0]}", EXIT_UNAVAILABLE) from exc
    except ServerStartError as exc:
        raise Failure(f"{options.impl}: {exc.one_line()}", EXIT_UNAVAILABLE) from exc
    try:
        yield address, f"{options.impl} at {address}"
    finally:
        server.stop()


def phase_s(index: int, agents: int, rate: int) -> float:
    """How long after the common instant agent ``index`` sends first: a fraction of its own gap,
    so that the agents' fixed schedules interleave evenly instead of sending all at once."""
    return index / (agents * rate)


def plans(options: argparse.Namespace, address: Address, start_at: float) -> list[agent.AgentPlan]:
    return [
        agent.AgentPlan(
            index=index,
            host=address.host,
            port=address.port,
            rate=rate,
            connections=options.connections,
            duration_s=options.duration,
            warmup_s=options.warmup,
            size=options.size,
            arrival=options.arrival,
            start_at=start_at + phase_s(index, options.agents, rate),
            client=options.client,
        )
        for index, rate in enumerate(split_rate(options.rate, options.agents))
    ]


def one_line(problems: list[tuple[int, str, dict[str, Any]]]) -> str:
    """The first agent's problem, naming its worker, and which other workers had one."""
    index, worker, first = problems[0]
    host = f" ({first['host']})" if first.get("host") else ""
    line = f"agent {index} on worker {worker}{host}: {first['problem']}"
    if others := [problem_worker for _, problem_worker, _ in problems[1:]]:
        line += f" (also on {', '.join(others)})"
    return line


def check_workers(
    client: Any, workers: list[str], probe: list[agent.AgentPlan], timeout_s: float
) -> list[str]:
    """Each worker's C++ client (found, or built, and with open-loop mode) and its connection
    to the target; returns the clients' paths."""
    futures = [
        cluster.submit_pinned(client, w, agent.preflight, plan)
        for w, plan in zip(workers, probe, strict=True)
    ]
    checked = [cluster.outcome(future, w, timeout_s) for future, w in zip(futures, workers, strict=True)]
    if problems := [(i, w, c) for i, (w, c) in enumerate(zip(workers, checked, strict=True)) if c["problem"]]:
        raise Failure(one_line(problems), EXIT_UNAVAILABLE)
    return [c["client"] for c in checked]


def run_agents(
    client: Any, options: argparse.Namespace, address: Address, workers: list[str]
) -> list[dict[str, Any]]:
    """The agents' rows: each agent's figures, its worker's clock offset and its start margin."""
    clients = check_workers(client, workers, plans(options, address, 0.0), cluster.PREFLIGHT_TIMEOUT_S)
    offsets = [cluster.clock_offset(client, worker) for worker in workers]
    start_at = time.time() + options.lead
    shares = plans(options, address, start_at)
    futures = [
        cluster.submit_pinned(client, worker, agent.run, plan, path)
        for worker, plan, path in zip(workers, shares, clients, strict=True)
    ]
    timeout = options.lead + options.warmup + options.duration + RESULT_SLACK_S
    outcomes = [
        cluster.outcome(future, worker, timeout) for future, worker in zip(futures, workers, strict=True)
    ]
    if problems := [
        (i, w, o) for i, (w, o) in enumerate(zip(workers, outcomes, strict=True)) if o["problem"]
    ]:
        raise Failure(one_line(problems), EXIT_FAILED)
    rows = []
    for plan, worker, outcome, offset in zip(shares, workers, outcomes, offsets, strict=True):
        try:
            rows.append(agent_row(plan, worker, outcome, offset, start_at))
        except KeyError as exc:
            raise Failure(
                f"agent {plan['index']} on worker {worker}: its client printed no {exc} (another version?)",
                EXIT_FAILED,
            ) from exc
    if late := [row for row in rows if row["start_margin_ms"] <= 0]:
        raise Failure(
            f"agent {late[0]['agent']} on worker {late[0]['worker']} started its client "
            f"{-late[0]['start_margin_ms']:.0f} ms after the common start; give a longer --lead",
            EXIT_FAILED,
        )
    return rows


def agent_row(
    plan: agent.AgentPlan, worker: str, outcome: dict[str, Any], offset: cluster.ClockOffset, start_at: float
) -> dict[str, Any]:
    result = outcome["result"]
    return {
        "agent": plan["index"],
        "worker": worker,
        "host": outcome["host"],
        "exit": outcome["exit"],
        "clock_offset_ms": offset.offset_s * 1e3,
        "clock_uncertainty_ms": offset.uncertainty_s * 1e3,
        "phase_ms": (plan["start_at"] - start_at) * 1e3,
        "start_margin_ms": (plan["start_at"] - outcome["launched_at"]) * 1e3,
        # When it began, after its start (the common instant plus its phase): on its own clock,
        # and on this machine's.
        "started_late_ms": (result["started_at"] - plan["start_at"]) * 1e3,
        "start_ms": (result["started_at"] - offset.offset_s - plan["start_at"]) * 1e3,
        **{key: result[key] for key in (*report.COUNTERS, "achieved_rate", "kept_up", "max_lag_us")},
        **{key: result[key] for key, _ in report.PERCENTILES},
        "max_us": result["max_us"],
        "target_rate": result["target_rate"],
        "histogram": result["histogram"],
    }


def run(options: argparse.Namespace) -> int:
    with target_address(options) as (address, target_name):
        workers_wanted = options.workers or options.agents
        try:
            with cluster.connect(options.scheduler, workers_wanted, options.wait) as (client, where):
                workers = cluster.agent_workers(client, options.agents, options.wait)
                rows = run_agents(client, options, address, workers)
        except cluster.ClusterProblem as exc:
            raise Failure(str(exc), EXIT_UNAVAILABLE) from exc
    settings = {
        "cluster": where,
        "target": target_name,
        **{key: getattr(options, key) for key in ("size", "arrival", "connections", "lead")},
        "duration_s": options.duration,
        "warmup_s": options.warmup,
    }
    whole = report.build(settings, rows)
    print(report.render(whole))
    if options.json is not None:
        options.json.write_text(json.dumps(whole, indent=2) + "\n")
    return verdict(whole)


def verdict(whole: dict[str, Any]) -> int:
    """Wrong echoes, errors or a client's failure status fail the run, in one line."""
    for row in whole["agents"]:
        if row["mismatches"] or row["errors"] or row["exit"] != 0:
            sys.stderr.write(
                f"{PROGRAM}: agent {row['agent']} on worker {row['worker']}: {row['mismatches']} wrong "
                f"echoes, {row['errors']} errors, client exit status {row['exit']}\n"
            )
            return EXIT_FAILED
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    options = parser().parse_args(argv)
    if options.warmup < 0:
        parser().error(f"--warmup must be 0 or more, got {options.warmup:g}")
    if options.rate < options.agents:
        parser().error(
            f"--rate {options.rate} is less than one request/s per agent (--agents {options.agents})"
        )
    if options.workers is not None and options.workers < options.agents:
        parser().error(f"--workers {options.workers} is fewer than --agents {options.agents}")
    try:
        return run(options)
    except Failure as failure:
        sys.stderr.write(f"{PROGRAM}: {failure}\n")
        return failure.status
