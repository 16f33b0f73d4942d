"""The open-loop sweep's driver against a stand-in for the C++ client's --open-loop contract.

The stand-in (written to tmp_path) prints the JSON object the contract names, for the rate it
is given, with an echo mismatch when asked to; no server is involved (server_pid None), so
these tests check the driver: its argv, one step per offered rate, the keys it keeps, and that
a mismatch fails the sweep.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from benchmarks.workloads import OPEN_LOOP_KEYS, QUICK, Metadata, rate_sweep
from conformance.harness.servers import Address
from conformance.harness.targets import Target, TargetSpec

STAND_IN = """\
    import argparse, json
    parser = argparse.ArgumentParser()
    for option in ("--host", "--port", "--rate", "--connections", "--duration", "--size", "--warmup"):
        parser.add_argument(option, required=True)
    parser.add_argument("--open-loop", action="store_true", required=True)
    parser.add_argument("--json", action="store_true", required=True)
    args = parser.parse_args()
    rate = int(args.rate)
    print(json.dumps({{
        "mode": "open-loop", "target_rate": rate, "achieved_rate": rate * 0.99,
        "connections": int(args.connections), "duration_s": float(args.duration),
        "sent": rate, "completed": rate, "errors": 0, "mismatches": {mismatches},
        "kept_up": True, "max_lag_us": 5, "p50_us": 20, "p90_us": 30, "p99_us": rate / 100,
        "p999_us": rate / 50, "max_us": rate / 10, "count": rate, "histogram": "",
    }}))
"""


class FakeBenchmark:
    """pytest-benchmark's fixture, as far as the sweep uses it: pedantic runs the target once."""

    def __init__(self) -> None:
        self.group: str | None = None
        self.extra_info: dict[str, Any] = {}
        self.stats: Metadata | None = None

    def pedantic(
        self,
        target: Callable[..., Any],
        args: tuple[Any, ...] = (),
        rounds: int = 1,
        warmup_rounds: int = 0,
        iterations: int = 1,
    ) -> Any:
        assert (rounds, warmup_rounds, iterations) == (1, 0, 1), "the sweep runs once"
        return target(*args)


def stand_in(tmp_path: Path, mismatches: int) -> Path:
    script = tmp_path / "client"
    body = textwrap.dedent(STAND_IN).format(mismatches=mismatches)
    script.write_text(f"#!{sys.executable}\n{body}")
    script.chmod(0o755)
    return script


def target() -> Target:
    spec = TargetSpec("stand-in", command="unused")
    return Target(spec, Address("127.0.0.1", 9), None)


PROFILE = replace(QUICK, sweep_rates=(1000, 2000, 4000), sweep_step_s=0.1, sweep_warmup_s=0.0)


def test_one_step_per_rate_with_the_contract_keys(tmp_path: Path) -> None:
    """Every offered rate gets a step, in order, carrying every key the report reads."""
    benchmark = FakeBenchmark()
    steps = rate_sweep(benchmark, target(), stand_in(tmp_path, 0), PROFILE)
    assert [step["target_rate"] for step in steps] == [1000, 2000, 4000]
    assert all(set(OPEN_LOOP_KEYS) <= step.keys() for step in steps), steps
    assert benchmark.extra_info["steps"] == steps
    assert steps[2]["p99_us"] == 40.0


def test_a_mismatch_fails_the_sweep(tmp_path: Path) -> None:
    """An echo mismatch at any step is a failure, never a figure."""
    with pytest.raises(AssertionError, match="echo mismatches"):
        rate_sweep(FakeBenchmark(), target(), stand_in(tmp_path, 3), PROFILE)
