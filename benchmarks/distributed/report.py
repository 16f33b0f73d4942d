"""The merged report of a distributed run.

Each agent's client records its latencies (from each request's intended send time, in µs) in
an HdrHistogram and sends it as a compressed histoblob. The run's percentiles come from the
sum of those histograms (``hdrh``'s ``decode_and_add``), never from averaging the agents'
percentiles, which has no meaning. The rates add up: each agent's achieved rate is over the
same measured window, which starts at the common instant plus the warm-up.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hdrh.histogram import HdrHistogram

# The range and precision the C++ client records with: 1 µs to 60 s, 3 significant digits.
LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS = 1, 60_000_000, 3
PERCENTILES = (("p50_us", 50.0), ("p90_us", 90.0), ("p99_us", 99.0), ("p999_us", 99.9))
COUNTERS = ("sent", "completed", "errors", "mismatches", "count")


def merge(blobs: Iterable[str | bytes]) -> HdrHistogram:
    """The sum of the agents' histograms."""
    merged = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
    for blob in blobs:
        merged.decode_and_add(blob)
    return merged


def latency(histogram: HdrHistogram) -> dict[str, int]:
    """p50, p90, p99, p99.9 and max in µs, and the sample count."""
    figures = {key: int(histogram.get_value_at_percentile(pct)) for key, pct in PERCENTILES}
    return {**figures, "max_us": int(histogram.get_max_value()), "count": int(histogram.get_total_count())}


def build(settings: dict[str, Any], agents: list[dict[str, Any]]) -> dict[str, Any]:
    """The whole report: the settings, each agent's row, the merged figures and the start."""
    histogram = merge(row["histogram"] for row in agents)
    merged: dict[str, Any] = {
        **latency(histogram),
        **{key: sum(row[key] for row in agents) for key in COUNTERS if key != "count"},
        "target_rate": sum(row["target_rate"] for row in agents),
        "achieved_rate": sum(row["achieved_rate"] for row in agents),
        "kept_up": all(row["kept_up"] for row in agents),
        "histogram": histogram.encode().decode("ascii"),
    }
    return {"settings": settings, "agents": agents, "merged": merged, "start": start_skew(agents)}


def start_skew(agents: list[dict[str, Any]]) -> dict[str, float]:
    """How far apart the agents began. Each client starts at the agreed instant on its own
    worker's clock and reports when it did (``started_at``); on this machine's clock that is
    ``start_ms`` (its worker's measured clock offset taken off). The skew is the spread of
    those starts, and at most that spread widened by each clock offset's uncertainty."""
    starts = [row["start_ms"] for row in agents]
    high = max(row["start_ms"] + row["clock_uncertainty_ms"] for row in agents)
    low = min(row["start_ms"] - row["clock_uncertainty_ms"] for row in agents)
    return {
        "measured_skew_ms": max(starts) - min(starts),
        "skew_bound_ms": high - low,
        "latest_start_ms": max(row["started_late_ms"] for row in agents),
        "least_margin_ms": min(row["start_margin_ms"] for row in agents),
    }


def render(report: dict[str, Any]) -> str:
    """The report as text: the run, one row per agent, the merged figures, the start."""
    settings, merged, start = report["settings"], report["merged"], report["start"]
    lines = [
        f"{len(report['agents'])} agents on {settings['cluster']} -> {settings['target']}: "
        f"{settings['size']} B messages, {settings['arrival']} arrivals, {settings['connections']} "
        f"connections per agent, {settings['duration_s']:g} s measured after {settings['warmup_s']:g} s "
        "warm-up; latency from each request's intended send time (open loop)",
        "",
        f"{'agent':>5}  {'worker':<24} {'host':<16} {'target/s':>9} {'achieved/s':>10} {'kept up':>7} "
        f"{'count':>9} {'errors':>6} {'mismatch':>8} {'p99 µs':>8} {'clock ms':>14} {'margin ms':>9}",
    ]
    for row in report["agents"]:
        clock = f"{row['clock_offset_ms']:+.2f}±{row['clock_uncertainty_ms']:.2f}"
        lines.append(
            f"{row['agent']:>5}  {row['worker']:<24} {row['host']:<16} {row['target_rate']:>9} "
            f"{row['achieved_rate']:>10.1f} {'yes' if row['kept_up'] else 'NO':>7} {row['count']:>9} "
            f"{row['errors']:>6} {row['mismatches']:>8} {row['p99_us']:>8} {clock:>14} "
            f"{row['start_margin_ms']:>9.0f}"
        )
    lines += [
        "",
        f"merged (the sum of {len(report['agents'])} HdrHistograms), µs: p50 {merged['p50_us']}  "
        f"p90 {merged['p90_us']}  p99 {merged['p99_us']}  p99.9 {merged['p999_us']}  "
        f"max {merged['max_us']}  count {merged['count']}",
        f"total achieved rate {merged['achieved_rate']:.1f}/s of {merged['target_rate']}/s offered",
        f"start skew across agents: {start['measured_skew_ms']:.2f} ms measured, at most "
        f"{start['skew_bound_ms']:.2f} ms (each client's start, less its worker's clock offset measured "
        f"over Dask); every client was waiting at least {start['least_margin_ms']:.0f} ms before the "
        f"instant and began at most {start['latest_start_ms']:.3f} ms after it on its own clock",
    ]
    if not merged["kept_up"]:
        behind = ", ".join(str(row["agent"]) for row in report["agents"] if not row["kept_up"])
        lines.append(
            f"agent(s) {behind} could not keep up with their rate: these figures show the agents' "
            "limit, not the server's (add agents, or machines)"
        )
    return "\n".join(lines)
