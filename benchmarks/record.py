"""The run as a whole, saved beside pytest-benchmark's timings for benchmarks.report.

Each result carries its own description in ``extra_info`` (benchmarks.workloads.prepare); this
module describes the run: its command, profile, placement, the machine and its load.
"""

from __future__ import annotations

import os
import platform
import subprocess
from typing import Any

import pytest


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
