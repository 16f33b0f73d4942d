"""Saved pytest-benchmark runs: their results by (workload, server), and how each run was made."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.catalogue import NODE, SOCAT, SOCAT_TLS, SOCKPERF, TLS_SUFFIX
from impls.table import IMPLEMENTATIONS

REFERENCES = (NODE, SOCAT, SOCAT_TLS, SOCKPERF)


@dataclass(frozen=True)
class Run:
    """One saved pytest-benchmark run: its results by (workload, server), and how it was made."""

    source: Path
    datetime: str
    description: dict[str, Any]
    machine: dict[str, Any]
    results: dict[tuple[str, str], dict[str, Any]]

    def get(self, workload: str, server: str, key: str) -> float | None:
        """A number, or None when the run has none (a gap, never a 0)."""
        value = self.results.get((workload, server), {}).get(key)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    def rounds(self, workload: str, server: str, key: str) -> list[float]:
        """Every round's figure (``key_rounds``), for error bars."""
        values = self.results.get((workload, server), {}).get(f"{key}_rounds", [])
        return [float(value) for value in values]

    def steps(self, server: str, workload: str) -> list[dict[str, Any]]:
        steps: list[dict[str, Any]] = self.results.get((workload, server), {}).get("steps", [])
        return steps

    def servers(self, workload: str | None = None) -> list[str]:
        """The servers of the run (of one workload): implementations in table order, references last."""
        present = {server for (load, server) in self.results if workload in (None, load)}
        known = [impl.name + suffix for suffix in ("", TLS_SUFFIX) for impl in IMPLEMENTATIONS]
        order = [*known, *sorted(present - {*known, *REFERENCES}), *REFERENCES]
        return [server for server in order if server in present]

    @property
    def has_tls(self) -> bool:
        return any(workload.startswith("tls-") for workload, _ in self.results)

    @property
    def profile(self) -> str:
        return str(self.description.get("profile", "unknown"))

    @property
    def placement(self) -> str:
        return str(self.description.get("placement", "unknown"))


@dataclass(frozen=True)
class Runs:
    """The runs of one report, at most one per placement."""

    by_placement: dict[str, Run]

    @classmethod
    def of(cls, runs: list[Run]) -> Runs:
        by_placement: dict[str, Run] = {}
        for run in runs:
            if run.placement in by_placement:
                other = by_placement[run.placement].source
                raise SystemExit(f"{run.source} and {other} are both {run.placement} runs: give one")
            by_placement[run.placement] = run
        return cls(by_placement)

    def ordered(self, preference: tuple[str, ...]) -> list[Run]:
        """Every run, the preferred placements first."""
        rank = {placement: index for index, placement in enumerate(preference)}
        return sorted(self.by_placement.values(), key=lambda run: rank.get(run.placement, len(rank)))

    def best(self, preference: tuple[str, ...]) -> Run:
        return self.ordered(preference)[0]


def load_run(path: Path) -> Run:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SystemExit(f"{path}: not a saved benchmark run ({exc})") from None
    results = {
        (bench["extra_info"]["workload"], bench["extra_info"]["server"]): {
            **bench["extra_info"],
            "median_s": bench["stats"]["median"],
        }
        for bench in data.get("benchmarks", [])
        if "workload" in bench.get("extra_info", {})
    }
    return Run(path, data.get("datetime", "?"), data.get("echo", {}), data.get("machine_info", {}), results)


def newest_run(directory: Path) -> Path:
    runs = sorted(directory.rglob("*.json"), key=lambda path: path.stat().st_mtime)
    if not runs:
        raise SystemExit(f"no saved run under {directory}: run pytest benchmarks --benchmark-autosave first")
    return runs[-1]
