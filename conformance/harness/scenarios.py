"""Scenario identity: a stable ID, a title and a requirement level for every conformance test.

    @scenario("ECHO-001", "Hypothesis payloads come back byte-exact")
    def test_...(target): '''The server MUST ...'''

MUST scenarios fail the run when they fail. SHOULD scenarios are reported as NON-STRICT
(an expected failure that is not strict) unless ``--strict`` is given.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

import pytest
from hypothesis import Phase

Level = Literal["MUST", "SHOULD"]
# For examples drawn as (size, seed): shrinking a stalled exchange would wait out its timeout at
# every step, and the printed example already replays the failure.
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)
F = TypeVar("F", bound=Callable[..., object])
ID_PATTERN = re.compile(r"^[A-Z]+-\d{3}$")


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    level: Level

    @property
    def family(self) -> str:
        return self.id.split("-")[0]


def scenario(scenario_id: str, title: str, level: Level = "MUST") -> Callable[[F], F]:
    """Mark a test as the conformance scenario ``scenario_id``."""
    if not ID_PATTERN.match(scenario_id):
        raise ValueError(f"scenario IDs look like ECHO-001, not {scenario_id!r}")
    mark: Callable[[F], F] = pytest.mark.scenario(scenario_id, title, level)
    return mark


def scenario_of(item: pytest.Item) -> Scenario | None:
    marker = item.get_closest_marker("scenario")
    if marker is None:
        return None
    scenario_id, title, level = marker.args
    return Scenario(scenario_id, title, level)
