"""Where the agents run, and how they are started together.

- The cluster: a Dask scheduler given by address (workers on other machines), or a
  ``LocalCluster`` started here, its workers in processes of their own.
- One worker per agent: a worker offers the resource ``agent=1`` (``dask worker ...
  --resources agent=1``; the LocalCluster's workers are started so), each agent's task asks
  for it and is pinned to a worker of its own, so two agents never share a worker.
- The common start: every agent's client waits for the same Unix time (``--start-at``) on its
  worker's clock. How far those clocks are from this one is measured here the way NTP does
  it, over Dask: the worker's time against the midpoint of a round trip, kept from the
  quickest of a few, each good to half its round trip.
- The tasks carry the agent's code by value (``by_value``), so a worker needs Dask but not
  this checkout.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import cloudpickle  # type: ignore[import-untyped]
from distributed import Client, Future, LocalCluster

from benchmarks.distributed import agent

AGENT_RESOURCE = "agent"
CLOCK_SAMPLES = 5
WORKER_POLL_S = 0.2  # how often the worker list is read while waiting for agent workers
PREFLIGHT_TIMEOUT_S = 660.0  # a worker may build the client first (conformance.harness.build)

cloudpickle.register_pickle_by_value(agent)


class ClusterProblem(Exception):
    """The cluster cannot run the agents; the message is one line."""


@contextlib.contextmanager
def connect(scheduler: str | None, workers: int, timeout_s: float) -> Iterator[tuple[Client, str]]:
    """A Dask client, and a description of the cluster: the scheduler at ``scheduler``, or a
    LocalCluster of ``workers`` agent workers on this machine (loopback only)."""
    if scheduler is None:
        with (
            LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                silence_logs=logging.ERROR,
                resources={AGENT_RESOURCE: 1},
            ) as cluster,
            Client(cluster) as client,  # type: ignore[no-untyped-call]
        ):
            yield client, f"LocalCluster of {workers} workers on this machine"
        return
    try:
        client = Client(scheduler, timeout=timeout_s)  # type: ignore[no-untyped-call]
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterProblem(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc
    with client:
        yield client, f"Dask scheduler {scheduler}"


def agent_workers(client: Client, agents: int, timeout_s: float) -> list[str]:
    """The addresses of ``agents`` workers that offer the agent resource, waiting up to
    ``timeout_s`` for enough of them to join."""
    deadline = time.monotonic() + timeout_s
    while True:
        workers = client.scheduler_info(n_workers=-1)["workers"]
        offering = sorted(
            address
            for address, info in workers.items()
            if info.get("resources", {}).get(AGENT_RESOURCE, 0) >= 1
        )
        if len(offering) >= agents:
            return offering[:agents]
        if time.monotonic() >= deadline:
            raise ClusterProblem(
                f"--agents {agents} needs {agents} workers with the resource {AGENT_RESOURCE}=1; "
                f"after {timeout_s:g} s the scheduler has {len(offering)} of its {len(workers)} workers "
                f"(start them with: dask worker SCHEDULER --resources {AGENT_RESOURCE}=1)"
            )
        time.sleep(WORKER_POLL_S)  # bounded by the deadline above


@dataclass(frozen=True)
class ClockOffset:
    """A worker's clock minus this machine's, in seconds, good to +/- ``uncertainty_s``."""

    offset_s: float
    uncertainty_s: float


def clock_offset(client: Client, worker: str) -> ClockOffset:
    best: ClockOffset | None = None
    for _ in range(CLOCK_SAMPLES):
        sent = time.time()
        remote = client.run(time.time, workers=[worker])[worker]
        received = time.time()
        sample = ClockOffset(remote - (sent + received) / 2, (received - sent) / 2)
        if best is None or sample.uncertainty_s < best.uncertainty_s:
            best = sample
    assert best is not None
    return best


class _ByValue:
    """A function that unpickles as itself, sent by value: cloudpickle copies its code, so the
    worker needs only cloudpickle (Dask has it), not the module it comes from."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function

    def __call__(self, *args: Any) -> Any:
        return self.function(*args)

    def __reduce__(self) -> tuple[Callable[[bytes], Any], tuple[bytes]]:
        return cloudpickle.loads, (cloudpickle.dumps(self.function),)


def submit_pinned(client: Client, worker: str, function: Callable[..., Any], *args: Any) -> Future[Any]:
    """Run ``function(*args)`` on ``worker`` and nowhere else, holding its agent resource."""
    return client.submit(
        _ByValue(function),
        *args,
        workers=[worker],
        allow_other_workers=False,
        resources={AGENT_RESOURCE: 1},
        pure=False,
    )


def outcome(future: Future[Any], worker: str, timeout_s: float) -> dict[str, Any]:
    """A task's result; a task that failed (its worker died, ...) becomes a one-line problem."""
    try:
        result: dict[str, Any] = future.result(timeout=timeout_s)
    except TimeoutError:
        return {"problem": f"no result within {timeout_s:g} s", "host": None}
    except Exception as exc:  # a task's failure, whatever it is, is reported as that task's
        text = str(exc).splitlines()[0] if str(exc) else ""
        return {"problem": f"the task on {worker} failed: {type(exc).__name__}: {text}", "host": None}
    return result
