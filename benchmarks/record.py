"""What every benchmark records besides pytest-benchmark's timings, for benchmarks.report.

Each result carries, in ``extra_info``: the server's name, the workload, its parameters, the
profile (full or quick) and the CPU placement, so the report can put implementations side by
side and compute their ratios to the Node.js and sockperf references.
"""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Callable
from typing import Any, Protocol

import pytest

from benchmarks.workloads import Placement, Profile, percentiles_ms
from conformance.harness.targets import Target


class Stats(Protocol):
    data: list[float]


class Metadata(Protocol):
    stats: Stats


class Benchmark(Protocol):
    """The parts of pytest-benchmark's ``benchmark`` fixture the workloads use."""

    group: str | None
    extra_info: dict[str, Any]
    stats: Metadata | None

    def pedantic(
        self,
        target: Callable[..., Any],
        args: tuple[Any, ...] = ...,
        rounds: int = ...,
        warmup_rounds: int = ...,
        iterations: int = ...,
    ) -> Any: ...


def prepare(
    benchmark: Benchmark,
    server: Target | str,
    group: str,
    placement: Placement,
    profile: Profile,
    **parameters: Any,
) -> None:
    """Name the group (implementations side by side), pin the server, describe the run."""
    benchmark.group = group
    name = server if isinstance(server, str) else server.name
    if not isinstance(server, str):
        placement.pin_server(server.server.pid if server.server is not None else None)
    benchmark.extra_info.update(
        server=name, workload=group, profile=profile.name, **placement.describe(), **parameters
    )


def round_samples(benchmark: Benchmark) -> list[float]:
    """Each round's duration in seconds (empty with --benchmark-disable)."""
    return list(benchmark.stats.stats.data) if benchmark.stats is not None else []


def record_latency(benchmark: Benchmark, size: int) -> None:
    """Percentiles of the per-round-trip times, and the echoed bytes per second they imply."""
    samples = round_samples(benchmark)
    if samples:
        benchmark.extra_info.update(percentiles_ms(samples))
        benchmark.extra_info["mb_per_s"] = size * len(samples) / sum(samples) / 1e6


def run_description(
    config: pytest.Config, profile: str, placement: str, load_at_start: tuple[float, float, float]
) -> dict[str, Any]:
    """The run as a whole, saved at the top of the JSON: command, machine, load on it."""
    return {
        "command": " ".join(["pytest", *config.invocation_params.args]),
        "profile": profile,
        "placement": placement,
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "load_average_at_start": load_at_start,
        "load_average_at_end": os.getloadavg(),
    }


def cpu_model() -> str:
    """lscpu's "Model name" (the first one), or the platform's processor string."""
    try:
        output = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return platform.processor() or "unknown"
    for line in output.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "Model name":
            return value.strip()
    return platform.processor() or "unknown"
