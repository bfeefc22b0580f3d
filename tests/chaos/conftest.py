"""The fault-injection suite's seeds and its summary table.

CI runs the seeds of CI_SEEDS. ``make chaos SEEDS=50`` runs seeds 1..50 (``SEED_START`` moves
the first), ``make chaos SEED=1234`` replays one; the table of every seed run (faults, result,
seconds) is printed at the end of the session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

CI_SEEDS = (17, 19)


def chaos_seeds() -> list[int]:
    one = os.environ.get("STREAMAGG_CHAOS_SEED", "").strip()
    if one:
        return [int(one)]
    count = os.environ.get("STREAMAGG_CHAOS_SEEDS", "").strip()
    if count:
        first = int(os.environ.get("STREAMAGG_CHAOS_SEED_START", "1") or 1)
        return list(range(first, first + int(count)))
    return list(CI_SEEDS)


@dataclass
class Outcome:
    seed: str
    scenario: str
    result: str
    seconds: float


OUTCOMES: list[Outcome] = []


@pytest.fixture
def record_outcome() -> Iterator[list[Outcome]]:
    """Tests append their Outcome here; the session prints them all as a table."""
    yield OUTCOMES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not OUTCOMES:
        return
    write = terminalreporter.write_line
    write("")
    write("fault-injection scenarios (seed | scenario | result | seconds):")
    for o in OUTCOMES:
        write(f"{o.seed:>12} | {o.result:<6} | {o.seconds:6.0f} | {o.scenario}")
    passed = sum(o.result == "equal" for o in OUTCOMES)
    write(f"{passed} of {len(OUTCOMES)} scenarios equal to the oracle")
