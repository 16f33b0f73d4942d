"""What runs on a Dask worker: the checks before the run, and one load agent.

A worker may be any machine with Python and Dask. This module travels to it inside each task
(pickled by value, see ``cluster.by_value``), so the worker need not have this checkout, and
every worker runs the coordinator's own version of it. That is why it uses the standard
library only, and why its inputs and outputs are plain dicts: a class defined here would
arrive on the worker as a copy, not as the class the coordinator knows.

The agent itself is the C++ load client in open-loop mode (``cpp/build/client --open-loop``):
it connects, waits for the agreed wall-clock instant (``--start-at``, on the worker's own
clock), then sends at its share of the rate, times each echo from its intended send time,
checks every byte and prints one JSON object with its HdrHistogram blob. Python only starts
it and carries its JSON back; nothing here is on the timed path.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from typing import Any, TypedDict

CLIENT_ENV = "ECHO_CONFORMANCE_CLIENT"  # a worker machine's own path to the C++ client
PROBE_TIMEOUT_S = 5.0  # the reachability probe's connect, and `client --help`
CLIENT_SLACK_S = 60.0  # beyond start + warm-up + duration, how long the client may take


class AgentPlan(TypedDict):
    """One agent's share of the run, as the coordinator sends it."""

    index: int
    host: str
    port: int
    rate: int  # requests per second, this agent's share of the total
    connections: int
    duration_s: float
    warmup_s: float
    size: int
    arrival: str  # "fixed" or "poisson"
    start_at: float  # the common start, Unix time in seconds
    client: str | None  # the client's path on every worker (--client), or None: find it


def preflight(plan: AgentPlan) -> dict[str, Any]:
    """Check, on the worker, what the run will need there: a C++ client with open-loop mode,
    and a TCP connection to the target. Returns {"host", "client"} and "problem": one line
    saying what is missing, or None."""
    checked: dict[str, Any] = {"host": socket.gethostname(), "client": None, "problem": None}
    try:
        checked["client"] = find_client(plan["client"])
        check_reachable(plan["host"], plan["port"])
    except AgentProblem as problem:
        checked["problem"] = str(problem)
    return checked


def run(plan: AgentPlan, client: str) -> dict[str, Any]:
    """Run the client until its measured window ends. Returns {"host", "launched_at" (Unix
    time on this worker's clock, just before the client starts), "exit", "result" (its JSON
    object, or None)} and "problem" (one line, or None)."""
    argv = client_argv(plan, client)
    launched_at = time.time()
    outcome: dict[str, Any] = {
        "host": socket.gethostname(),
        "launched_at": launched_at,
        "exit": None,
        "result": None,
        "problem": None,
    }
    budget = max(plan["start_at"] - launched_at, 0.0) + plan["warmup_s"] + plan["duration_s"] + CLIENT_SLACK_S
    try:
        finished = subprocess.run(argv, capture_output=True, text=True, timeout=budget, check=False)
    except subprocess.TimeoutExpired:
        outcome["problem"] = f"the client did not finish within {budget:.0f} s: {' '.join(argv)}"
        return outcome
    except OSError as exc:
        outcome["problem"] = f"cannot run the client {client}: {exc.strerror or exc}"
        return outcome
    outcome["exit"] = finished.returncode
    outcome["result"] = last_json_object(finished.stdout)
    if outcome["result"] is None:
        said = last_line(finished.stderr) or "nothing on stderr"
        outcome["problem"] = f"the client exited {finished.returncode} without a result: {said}"
    return outcome


def client_argv(plan: AgentPlan, client: str) -> list[str]:
    return [
        client,
        *("--host", plan["host"], "--port", str(plan["port"]), "--open-loop"),
        *("--rate", str(plan["rate"]), "--connections", str(plan["connections"])),
        *("--duration", repr(plan["duration_s"]), "--warmup", repr(plan["warmup_s"])),
        *("--size", str(plan["size"]), "--arrival", plan["arrival"], "--seed", str(plan["index"])),
        *("--start-at", f"{plan['start_at']:.6f}", "--json"),
    ]


class AgentProblem(Exception):
    """Something this worker lacks; the message is one line."""


def find_client(explicit: str | None) -> str:
    """The C++ client on this worker: the path given (--client), this machine's
    $ECHO_CONFORMANCE_CLIENT, or the build of an installed echo-conformance (built here on
    first use). It must have the open-loop mode."""
    path = explicit or os.environ.get(CLIENT_ENV) or built_client()
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        raise AgentProblem(f"no executable C++ client at {path}")
    try:
        usage = subprocess.run(
            [path, "--help"], capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AgentProblem(f"the C++ client at {path} does not run: {exc}") from exc
    if "--open-loop" not in usage:
        raise AgentProblem(f"the C++ client at {path} has no --open-loop mode (an older build?)")
    return path


def built_client() -> str:
    """The client of this machine's echo-conformance, built (or rebuilt) if it must be."""
    try:
        from conformance.harness.build import BuildError, ensure_cpp_built  # noqa: PLC0415
    except ImportError:
        raise AgentProblem(
            f"no C++ client: echo-conformance is not installed here; give --client PATH or set {CLIENT_ENV}"
        ) from None
    try:
        return str(ensure_cpp_built() / "client")
    except BuildError as exc:
        raise AgentProblem(str(exc).splitlines()[0]) from exc


def check_reachable(host: str, port: int) -> None:
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
    except OSError as exc:
        raise AgentProblem(f"cannot reach the target {host}:{port}: {exc.strerror or exc}") from exc


def last_json_object(text: str) -> dict[str, Any] | None:
    lines = [line for line in text.splitlines() if line.startswith("{")]
    if not lines:
        return None
    try:
        parsed: dict[str, Any] = json.loads(lines[-1])
    except json.JSONDecodeError:
        return None
    return parsed


def last_line(text: str) -> str:
    return next((line.strip() for line in reversed(text.splitlines()) if line.strip()), "")
