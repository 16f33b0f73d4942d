"""Scenario identity: a stable ID, a title and a requirement level for every conformance test.

    @scenario("ECHO-001", "Hypothesis payloads come back byte-exact")
    def test_...(target): '''The server MUST ...'''

MUST scenarios fail the run when they fail. A SHOULD scenario that fails is reported as
NON-STRICT and passes the run, unless ``--strict-should`` is given. A family that exists on one
transport only says so for its whole module: ``pytestmark = only_on("tls")``; its scenarios are
generated for the targets of that transport alone.

The catalogue is read from the family modules themselves (``catalogue()``), so the list, the
``--scenario`` selection and the expectation files all name exactly what the suite defines.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable, Iterable
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
FAMILY_PACKAGE = "conformance"  # the family modules: conformance/test_*.py


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    level: Level
    transport: str | None = None  # the one transport it runs on; None: every transport

    @property
    def family(self) -> str:
        return self.id.split("-")[0]


def scenario(scenario_id: str, title: str, level: Level = "MUST") -> Callable[[F], F]:
    """Mark a test as the conformance scenario ``scenario_id``."""
    if not ID_PATTERN.match(scenario_id):
        raise ValueError(f"scenario IDs look like ECHO-001, not {scenario_id!r}")
    mark: Callable[[F], F] = pytest.mark.scenario(scenario_id, title, level)
    return mark


def only_on(transport: str) -> pytest.MarkDecorator:
    """The ``pytestmark`` of a family module whose scenarios exist on one transport only."""
    return pytest.mark.transport(transport)


def _scenario(marks: Iterable[pytest.Mark]) -> Scenario | None:
    found = {mark.name: mark for mark in marks}
    if "scenario" not in found:
        return None
    scenario_id, title, level = found["scenario"].args
    transport = found["transport"].args[0] if "transport" in found else None
    return Scenario(scenario_id, title, level, transport)


def scenario_of(item: pytest.Item) -> Scenario | None:
    return _scenario(item.iter_markers())


def _marks_of(owner: object) -> list[pytest.Mark]:
    """The marks a function or a module (``pytestmark``) carries."""
    marks = getattr(owner, "pytestmark", [])
    listed = marks if isinstance(marks, list) else [marks]
    return [mark.mark if isinstance(mark, pytest.MarkDecorator) else mark for mark in listed]


def scenario_of_function(function: object, module: object) -> Scenario | None:
    """The scenario a test function is (with its module's transport), or None."""
    return _scenario([*_marks_of(function), *_marks_of(module)]) if callable(function) else None


def catalogue() -> dict[str, Scenario]:
    """Every scenario of every family module, by ID (sorted)."""
    package = importlib.import_module(FAMILY_PACKAGE)
    found: dict[str, Scenario] = {}
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("test_"):
            module = importlib.import_module(f"{FAMILY_PACKAGE}.{info.name}")
            for value in vars(module).values():
                if (entry := scenario_of_function(value, module)) is not None:
                    found[entry.id] = entry
    return dict(sorted(found.items()))


def select(wanted: Iterable[str], known: dict[str, Scenario]) -> set[str]:
    """The IDs that ``--scenario`` values name: exact IDs (HALF-001) or family names (ECHO),
    in any case. Raises ValueError naming what matches nothing."""
    families = {entry.family for entry in known.values()}
    chosen: set[str] = set()
    for value in wanted:
        name = value.strip().upper()
        if name in known:
            chosen.add(name)
        elif name in families:
            chosen |= {key for key, entry in known.items() if entry.family == name}
        else:
            listed = ", ".join(sorted(families))
            raise ValueError(f"{value!r} is neither a scenario ID (e.g. HALF-001) nor a family ({listed})")
    return chosen


def render_catalogue(known: dict[str, Scenario]) -> str:
    """The catalogue as ``--list`` prints it: ID, level, title (and a transport if it has one)."""
    return "\n".join(
        f"{entry.id:<10} {entry.level:<7} {entry.title}"
        + (f" [{entry.transport} only]" if entry.transport else "")
        for entry in known.values()
    )
