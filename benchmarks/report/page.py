"""benchmarks.md: the header (machine, runs, load), the headline chart, targets, every section."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from benchmarks.catalogue import LATENCY_PLACEMENTS, SECTIONS, SWEEP, TLS_SECTIONS, Section
from benchmarks.report.charts import draw_charts
from benchmarks.report.runs import Run, Runs, load_run, newest_run
from benchmarks.report.tables import MAKERS, knee_table
from benchmarks.report.targets import checks_table

QUIET_LOAD_AVERAGE = 0.5
ROOT = Path(__file__).resolve().parent.parent.parent  # the clone
PROFILES = ROOT / "benchmarks" / "profiles.md"  # hand-written: where the time goes, with evidence
PLACEMENT_MEANING = {
    "same-cpu": "server and client pinned to the same CPU",
    "cross-cpu": "server and client pinned to different CPUs",
    "any": "no pinning: the scheduler places server and client",
}
TARGETS_INTRO = (
    "Median ratios. Each target is judged on the run of the placement it is about: the 64 B "
    "round trip against sockperf on `same-cpu` (as the target says), the knees, the rates, the "
    "bulk stream and the CPU cost on `any`."
)
TLS_INTRO = (
    "Every row that speaks TLS (`NAME-tls`: the server started with the suite's trustme certificate, "
    "`--tls-cert`/`--tls-key`) and socat-tls, the third-party baseline: socat's `OPENSSL-LISTEN` "
    "(fork per connection, `nodelay`, `backlog=1024`) terminating TLS in front of `EXEC:cat`. No "
    "targets exist for TLS: ratios are to socat-tls and to the same implementation over TCP (`x tcp`)."
)


def caveat(runs: Runs) -> str:
    notes = []
    for run in runs.ordered(LATENCY_PLACEMENTS):
        load = run.description.get("load_average_at_start", [math.nan])[0]
        if run.profile != "full":
            notes.append(f"the {run.placement} run is a **{run.profile}** run (short durations, small sizes)")
        if not load < QUIET_LOAD_AVERAGE:
            notes.append(
                f"the machine was busy when the {run.placement} run started "
                f"(1-minute load average {load:.2f})"
            )
    if not notes:
        return ""
    return "> **Noisy figures:** " + "; ".join(notes) + ". Ratios are indicative only.\n"


def source_of(run: Run) -> str:
    return str(run.source.relative_to(ROOT) if run.source.is_relative_to(ROOT) else run.source)


def header(runs: Runs) -> str:
    ordered = runs.ordered(LATENCY_PLACEMENTS)
    description, machine = ordered[0].description, ordered[0].machine
    cpu = description.get("cpu_model", machine.get("cpu", {}).get("brand_raw", "?"))
    kernel = description.get("kernel", machine.get("release", "?"))
    lines = [f"- Machine: {cpu}, {description.get('cpus', '?')} CPUs, Linux {kernel}"]
    for run in ordered:
        load = {
            moment: ", ".join(
                f"{value:.2f}" for value in run.description.get(f"load_average_at_{moment}", [])
            )
            or "?"
            for moment in ("start", "end")
        }
        lines += [
            f"- **{run.placement}** run ({PLACEMENT_MEANING.get(run.placement, '?')}), "
            f"{run.profile} profile, {run.datetime}",
            f"  - Command: `{run.description.get('command', '?')}`",
            f"  - Load average (1, 5, 15 min): {load['start']} at the start, {load['end']} at the end",
        ]
    lines.append(
        f"- Regenerate: `python3 -m benchmarks.report {' '.join(source_of(run) for run in ordered)}`"
    )
    return "\n".join(lines) + "\n"


def section(runs: Runs, entry: Section, *, level: str = "##") -> str:
    """The section's table from every run, the placement it is judged on first, each labelled."""
    tables = [
        f"Placement **{run.placement}** ({PLACEMENT_MEANING.get(run.placement, '?')}):\n\n"
        f"{MAKERS[entry.key](run)}"
        for run in runs.ordered(entry.placement)
    ]
    return f"{level} {entry.title}\n\n{entry.intro}\n\n" + "\n\n".join(tables)


def knees(runs: Runs) -> str:
    """The knee of every row, from every run that swept."""
    parts = [
        f"Placement **{run.placement}**:\n\n{knee_table(run)}"
        for run in runs.ordered(SWEEP.placement)
        if run.servers(SWEEP.name)
    ]
    return "## Knees (open loop)\n\n" + ("\n\n".join(parts) or "No run in this report swept.")


def tls_part(runs: Runs) -> str:
    """The TLS section, when a run measured TLS."""
    tls_runs = Runs({placement: run for placement, run in runs.by_placement.items() if run.has_tls})
    if not tls_runs.by_placement:
        return ""
    body = "\n\n".join(section(tls_runs, entry, level="###") for entry in TLS_SECTIONS)
    return f"## TLS\n\n{TLS_INTRO}\n\n{body}\n\n"


READING = """## Reading the figures

- Every echo is checked byte for byte; a wrong echo fails the benchmark instead of being timed.
- Latency, original 16 KB and connection-rate rows are driven from Python, so they include the
  Python client's own cost; they compare servers with each other within one run. The bulk
  stream, the concurrency rows and the native round trip use the C++ client, and the floor
  uses sockperf's own C client.
- The native round trip includes the C++ client's poll() before each read, which sockperf's
  blocking client does not make: part of any gap to sockperf is the client's, not the server's
  (a server that matches the blocking threaded server's figure is at the client's floor).
- With `--placement same-cpu` the client and the server share one CPU, so every round trip pays
  for both sides on that CPU; with `any` the scheduler spreads them over both.
- Server CPU per round trip is the server's user + system time over the last `duration`
  seconds of the load client's run, sampled every 50 ms, divided by round trips in that time.
"""


def render(runs: Runs, charts: list[Path], output: Path) -> str:
    images = "\n\n".join(f"![{path.stem}]({path.relative_to(output.parent).as_posix()})" for path in charts)
    profiles = Path(os.path.relpath(PROFILES, output.parent)).as_posix()
    targets = (
        f"## Targets\n\n{TARGETS_INTRO} What limits each figure, with the profiles: "
        f"[{PROFILES.name}]({profiles}).\n\n{checks_table(runs)}"
    )
    body = "\n\n".join(section(runs, entry) for entry in SECTIONS)
    return (
        f"# Benchmarks\n\n{caveat(runs)}\n{header(runs)}\n{images}\n\n{targets}\n\n{knees(runs)}\n\n"
        f"{body}\n\n{tls_part(runs)}{READING}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Charts and benchmarks.md from saved benchmark runs.")
    parser.add_argument(
        "runs",
        nargs="*",
        type=Path,
        help="--benchmark-json / autosave files, at most one per --placement (default: the newest)",
    )
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks.md")
    parser.add_argument("--charts", type=Path, default=ROOT / "benchmarks" / "charts")
    args = parser.parse_args(argv)
    runs = Runs.of([load_run(path) for path in args.runs or [newest_run(ROOT / ".benchmarks")]])
    charts = draw_charts(runs, args.charts.resolve())
    output = args.output.resolve()
    output.write_text(render(runs, charts, output))
    print(f"wrote {output} and {len(charts)} charts in {args.charts}")
