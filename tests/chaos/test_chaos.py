"""Exactness under randomized faults: every scenario ends equal to the oracle (see runner.py for
what is checked, docs/exactly-once.md for why it holds)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.chaos import scenario as S
from tests.chaos.conftest import Outcome, chaos_seeds
from tests.chaos.runner import run_scenario

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(1800)]


def _run(
    scenario: S.Scenario, label: str, tmp_path: Path, outcomes: list[Outcome], replay: str
) -> None:
    started = time.monotonic()
    result = "FAILED"
    try:
        events = run_scenario(scenario, tmp_path, lambda: replay)
        print(f"\n{label}: {scenario.describe()}\n" + "\n".join(events))
        result = "equal"
    finally:
        outcomes.append(Outcome(label, scenario.describe(), result, time.monotonic() - started))


@pytest.mark.parametrize("seed", chaos_seeds())
def test_a_random_scenario_ends_equal_to_the_oracle(
    seed: int, tmp_path: Path, record_outcome: list[Outcome]
) -> None:
    _run(S.draw(seed), str(seed), tmp_path, record_outcome, f"make chaos SEED={seed}")


def test_regression_one_burst_then_sigkill_on_a_first_start(
    tmp_path: Path, record_outcome: list[Outcome]
) -> None:
    """Issue 13, seen in 4 of 13 tries: a worker's first start on fresh topics, one burst of
    8,500 CDRs of 5 customers (sent while the worker starts), SIGKILL 1 s after the produce
    returned, restart."""
    scenario = S.Scenario(
        seed=13_001,
        workers=1,
        partitions=8,
        customers=5,
        phases=(S.Phase("burst", 8_500),),
        faults=(S.Fault(0, 1.0, S.SIGKILL, hold=0.5),),
        wait_ready_first=False,
    )
    _run(
        scenario, "regr-1", tmp_path, record_outcome, "pytest tests/chaos -k one_burst_then_sigkill"
    )


def test_regression_six_bursts_four_kills_and_a_broker_restart(
    tmp_path: Path, record_outcome: list[Outcome]
) -> None:
    """Issue 13: ~51,000 messages of 5 customers in 6 bursts; SIGKILL 0.5-4 s after each of the
    first four bursts, restart and wait for readiness before the next burst; after the third
    kill the broker is stopped and started while the worker is down."""
    faults = []
    for burst, delay in enumerate((0.5, 2.2, 1.3, 4.0)):
        kind = S.BROKER_RESTART_WORKERS_DOWN if burst == 2 else S.SIGKILL
        faults.append(S.Fault(burst, delay, kind, hold=2.0))
    scenario = S.Scenario(
        seed=13_002,
        workers=1,
        partitions=8,
        customers=5,
        phases=tuple(S.Phase("burst", 8_500, wait_for_faults=i > 0) for i in range(6)),
        faults=tuple(faults),
    )
    _run(
        scenario, "regr-2", tmp_path, record_outcome, "pytest tests/chaos -k six_bursts_four_kills"
    )


def test_a_worker_paused_past_its_session_timeout_comes_back_fenced(
    tmp_path: Path, record_outcome: list[Outcome]
) -> None:
    """Issue 13, fencing: one of two workers is SIGSTOPped for 20 s (past the 10 s session
    timeout) while CDRs flow; the other takes its partitions over and writes on; then SIGCONT.
    The paused worker resumes as a zombie with transactions of a lost generation in hand: its
    producers were fenced when its successor took the partitions, so nothing it still tries to
    write can overwrite the successor's state."""
    scenario = S.Scenario(
        seed=13_005,
        workers=2,
        partitions=8,
        customers=8,
        phases=(S.Phase("trickle", 3_000, rate=500), S.Phase("trickle", 8_000, rate=500)),
        faults=(S.Fault(0, 0.0, S.WORKER_PAUSE, worker=0, hold=20.0),),
    )
    _run(scenario, "fencing", tmp_path, record_outcome, "pytest tests/chaos -k paused_past")


def test_a_lost_ingest_child_and_a_lost_disk_mid_stream(
    tmp_path: Path, record_outcome: list[Outcome]
) -> None:
    """Two faults an operator meets without asking: a worker comes back on a new machine or
    volume with an empty data directory (every partition rebuilt from its changelog while the
    stream goes on, no 503 once it says ready), and the kernel's OOM killer picks the ingest
    child alone (the worker must start a new one, which fences the dead one's transactions and
    goes on from the committed input offsets: the last burst is sent after that kill, and no
    fault restarts the whole worker after it)."""
    scenario = S.Scenario(
        seed=13_006,
        workers=1,
        partitions=4,
        customers=6,
        phases=(
            S.Phase("burst", 12_000),
            S.Phase("trickle", 6_000, rate=1_000, wait_for_faults=True),
            S.Phase("burst", 6_000, wait_for_faults=True),
        ),
        faults=(
            S.Fault(0, 0.5, S.LOST_DISK, hold=1.0),
            S.Fault(1, 0.1, S.KILL_INGEST_CHILD),
        ),
        ingest_mode="process",
    )
    _run(scenario, "lost", tmp_path, record_outcome, "pytest tests/chaos -k lost_ingest_child")
