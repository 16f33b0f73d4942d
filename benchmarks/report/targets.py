"""The benchmark targets and their verdicts, each judged on the run of the placement it is about."""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.catalogue import (
    BULK,
    LATENCY_PLACEMENTS,
    LOAD,
    NATIVE,
    NODE,
    SOCKPERF,
    SWEEP,
    THROUGHPUT_PLACEMENTS,
)
from benchmarks.report.runs import Run, Runs
from benchmarks.report.tables import KNEE_LIMITS_US, fmt, knee, ratio, times

KNEE_OVER_NODE = 1.3
NOT_ANY = "judged on this run: no --placement any run given"


@dataclass(frozen=True)
class Check:
    goal: str
    placement: str  # the run the figure comes from
    measured: str
    met: bool | None  # None: not measured, or not on the placement the target is about
    note: str = ""


def _at_least(goal: str, run: Run, value: float | None, threshold: float) -> Check:
    note = "" if run.placement == "any" else NOT_ANY
    return Check(goal, run.placement, times(value), None if value is None else value >= threshold, note)


def checks(runs: Runs) -> list[Check]:
    fast = runs.best(THROUGHPUT_PLACEMENTS)
    load_100 = LOAD.workloads[0].name

    def rate_ratio(server: str) -> float | None:
        return ratio(fast.get(load_100, server, "rate_per_s"), fast.get(load_100, NODE, "rate_per_s"))

    bulk = ratio(fast.get(BULK.name, "cpp", "mb_per_s"), fast.get(BULK.name, NODE, "mb_per_s"))
    return [
        *(knee_check(fast, limit) for limit in KNEE_LIMITS_US),
        floor_check(runs.best(LATENCY_PLACEMENTS)),
        _at_least("cpp 100-connection rate >= 1.4x node (closed loop)", fast, rate_ratio("cpp"), 1.4),
        _at_least("cpp bulk throughput >= 1.9x node", fast, bulk, 1.9),
        lowest_cpu_check(fast),
        _at_least(
            "asyncio-uvloop 100-connection rate >= 1.3x node (closed loop)",
            fast,
            rate_ratio("asyncio-uvloop"),
            1.3,
        ),
        _at_least("asyncio 100-connection rate >= 1.0x node (closed loop)", fast, rate_ratio("asyncio"), 1.0),
    ]


def knee_check(run: Run, limit_us: float) -> Check:
    """cpp's knee (open loop) >= every other row's, and >= 1.3x node's."""
    goal = f"cpp knee (p99 <= {fmt(limit_us / 1e3, 0)} ms) >= every other row's and >= {KNEE_OVER_NODE}x node"
    knees = {server: knee(run.steps(server, SWEEP.name), limit_us).rate for server in run.servers(SWEEP.name)}
    cpp, node = knees.get("cpp"), knees.get(NODE)
    others = {server: rate for server, rate in knees.items() if server != "cpp"}
    note = "" if run.placement == "any" else NOT_ANY
    if "cpp" not in knees or NODE not in knees or not others:
        return Check(goal, run.placement, "-", None, note or "no sweep of cpp and node in this run")
    if cpp is None or node is None:
        missing = " and ".join(server for server, rate in (("cpp", cpp), (NODE, node)) if rate is None)
        return Check(goal, run.placement, "-", None, f"no step of {missing} had its p99 within the limit")
    best_other = max(others, key=lambda server: others[server] or 0.0)
    measured = (
        f"cpp {fmt(cpp, 0)}/s, {times(ratio(cpp, node))} node; best other {best_other} "
        f"{fmt(others[best_other], 0)}/s"
    )
    met = all(cpp >= (rate or 0.0) for rate in others.values()) and cpp >= KNEE_OVER_NODE * node
    steps = [step for server in knees for step in run.steps(server, SWEEP.name)]
    if behind := sum(1 for step in steps if not step.get("kept_up", True)):
        note = "; ".join(
            filter(None, [note, f"the client fell behind its schedule in {behind} of {len(steps)} steps"])
        )
    return Check(goal, run.placement, measured, met, note)


def floor_check(run: Run) -> Check:
    native, floor_workload = (workload.name for workload in NATIVE.workloads)
    floor = ratio(run.get(native, "cpp", "p50_us"), run.get(floor_workload, SOCKPERF, "p50_us"))
    same_cpu = run.placement == "same-cpu"
    return Check(
        "cpp same-CPU 64 B RTT <= 1.10x sockperf (p50, C++ client vs sockperf pp, closed loop)",
        run.placement,
        times(floor),
        None if floor is None or not same_cpu else floor <= 1.10,
        "" if same_cpu else "not judged: no --placement same-cpu run given",
    )


def lowest_cpu_check(run: Run) -> Check:
    verdicts, lowest = [], []
    for workload in LOAD.workloads:
        costs = {
            server: cost
            for server in run.servers(workload.name)
            if (cost := run.get(workload.name, server, "server_cpu_us_per_rt")) is not None
        }
        if "cpp" in costs and len(costs) > 1:
            best, runner_up = sorted(costs, key=costs.__getitem__)[:2]
            verdicts.append(best == "cpp")
            lowest.append(
                f"{workload.parameters['connections']:,} conns: {best} {costs[best]:.2f} µs, "
                f"then {runner_up} {costs[runner_up]:.2f}"
            )
    met = all(verdicts) if verdicts else None
    note = "" if run.placement == "any" else NOT_ANY
    return Check("cpp lowest server CPU per round trip", run.placement, "; ".join(lowest) or "-", met, note)


def checks_table(runs: Runs) -> str:
    label = {True: "met", False: "**not met**", None: "not judged"}
    lines = ["| target | placement | measured | verdict | note |", "|---|---|---|---|---|"]
    lines += [
        f"| {check.goal} | {check.placement} | {check.measured} | {label[check.met]} | {check.note} |"
        for check in checks(runs)
    ]
    return "\n".join(lines)
