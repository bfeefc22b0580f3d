"""Day and month sums hold the closed hours only (tables/rollup.py).

Invariants checked here and in test_reports.py's query property (whose message times close the
span's hours batch by batch):
- every call is in its day and month once: directly when its hour was closed at its fold,
  otherwise when the hour closes; the hour of the newest message and the one before stay open;
- the first open hour (W) never moves back, whatever the message times;
- a state written before W existed (every transaction rolled its hours up) gets a W past every
  hour it holds: nothing in it is added to a day or month again;
- a query answers the same whatever W is: it adds the open hours a day or month bucket spans.
"""

from __future__ import annotations

from typing import Any

import pytest

from streamagg.batches import Record
from streamagg.cdr import Cdr
from streamagg.reports import REPORTS
from streamagg.reports.base import QueryContext
from streamagg.reports.query import run_query
from streamagg.tables import rollup
from streamagg.tables.fold import BatchFold, fold_records
from streamagg.tables.keys import ROLLED_UP_TO, decode_int, decode_vector
from streamagg.tables.rollup import HOUR_MS, OPEN_HOURS
from streamagg.tables.sums import fold_report
from tests.support.memstore import MemState
from tests.unit.test_fold import T0, cdr

HORIZON_S = 48 * 3600
DAY_OF_T0 = T0 // 86400
TECH = REPORTS["tech-prefix"]


def fold_at(state: MemState, calls: list[Cdr], stamp_ms: int) -> None:
    fold_records(state, [Record(i, stamp_ms, c) for i, c in enumerate(calls)], REPORTS, HORIZON_S)


def rolled(state: MemState) -> int:
    return decode_int(state.get(ROLLED_UP_TO), -1)


def day_attempts(state: MemState, day: int = DAY_OF_T0, group: str = "1#") -> int:
    raw = state.get(f"R\x1ftech-prefix\x1fd{day:08d}\x1f42\x1f{group}".encode())
    return 0 if raw is None else decode_vector(raw)[0]


def answered_per_prefix(state: MemState, start_q: int, end_q: int) -> dict[str, Any]:
    rows = run_query(TECH, start_q, end_q, state.scan, QueryContext("42"))
    return {row["tech_prefix"]: row["total"] for row in rows}


def test_an_open_hour_goes_to_its_day_when_the_newest_message_closes_it() -> None:
    state = MemState()
    hour = T0 // 3600
    fold_at(state, [cdr(tech_prefix="1#") for _ in range(3)], T0 * 1000 + 60_000)
    assert rolled(state) == hour - OPEN_HOURS + 1  # the calls' hour is open
    assert day_attempts(state) == 0
    fold_at(state, [cdr(tech_prefix="1#")], (hour + 1) * HOUR_MS)  # still open
    assert day_attempts(state) == 0
    later = cdr(tech_prefix="2#", start=T0 + OPEN_HOURS * 3600)
    fold_at(state, [later], (hour + OPEN_HOURS) * HOUR_MS)
    assert rolled(state) == hour + 1
    assert day_attempts(state) == 4  # the closed hour, once
    fold_at(state, [cdr(tech_prefix="1#")], (hour + OPEN_HOURS) * HOUR_MS)  # a late call
    assert day_attempts(state) == 5  # to a closed hour's day at once
    assert day_attempts(state, group="2#") == 0  # (its hour is open)


def test_the_first_open_hour_never_moves_back() -> None:
    state = MemState()
    hour = T0 // 3600
    fold_at(state, [cdr()], (hour + 10) * HOUR_MS)
    fold_at(state, [cdr()], (hour - 100) * HOUR_MS)  # an old message time (a replay)
    assert rolled(state) == hour + 10 - OPEN_HOURS + 1


def test_a_state_rolled_up_by_every_transaction_is_not_added_again() -> None:
    """State written before W: its days and months hold every hour. Its first fold with W puts
    W past the last hour it holds, even when the message times say earlier."""
    state = MemState()
    old = [cdr(tech_prefix="1#", start=T0 + h * 3600) for h in range(5)]
    for report in REPORTS.values():
        fold_report(state, report, old)  # (every hour to its day and month, no W)
    assert state.get(ROLLED_UP_TO) is None and day_attempts(state) == 5
    fold_at(state, [cdr(tech_prefix="1#", start=T0 - 3 * 86400)], T0 * 1000)
    assert rolled(state) == T0 // 3600 + 5
    assert day_attempts(state) == 5
    assert day_attempts(state, DAY_OF_T0 - 3) == 1
    fold_at(state, [cdr(tech_prefix="1#", start=T0 + 4 * 3600)], (T0 + 20 * 3600) * 1000)
    assert day_attempts(state) == 6  # the hours it held, once; the new call once
    whole_days = (DAY_OF_T0 - 3) * 96, (DAY_OF_T0 + 1) * 96  # (days: quarters)
    assert answered_per_prefix(state, *whole_days) == {"1#": 7}


def test_a_day_of_open_hours_answers_as_a_day_of_closed_ones() -> None:
    calls = [cdr(tech_prefix=f"{h % 3}#", start=T0 - 12 * 3600 + h * 1800) for h in range(40)]
    day = DAY_OF_T0 * 96, (DAY_OF_T0 + 1) * 96
    month = (DAY_OF_T0 - 30) * 96, (DAY_OF_T0 + 31) * 96
    answers = []
    for newest_hour in (T0 // 3600 - 13, T0 // 3600, T0 // 3600 + 30):
        state = MemState()
        for first in range(0, len(calls), 7):
            fold_at(state, calls[first : first + 7], newest_hour * HOUR_MS)
        answers.append((answered_per_prefix(state, *day), answered_per_prefix(state, *month)))
    assert answers[0] == answers[1] == answers[2]
    assert sum(answers[0][1].values()) == len(calls)


@pytest.mark.parametrize("step", [1, 7, 5_000])
def test_hours_close_in_parts_that_add_up_to_the_whole(
    monkeypatch: pytest.MonkeyPatch, step: int
) -> None:
    """A busy hour closes in parts, with the event loop served between them: the state is the
    same whatever the part size, and each part is a step of the fold."""
    monkeypatch.setattr(rollup, "CLOSE_STEP_KEYS", step)
    hour = T0 // 3600
    calls = [cdr(tech_prefix=f"{p % 13}#", start=T0 + p * 97 % 7200) for p in range(60)]
    state = MemState()
    fold_at(state, calls, (hour + 1) * HOUR_MS)  # (hours T0 and T0+1 open)
    fold = BatchFold(state, REPORTS, HORIZON_S)
    fold.add([Record(0, (hour + 3) * HOUR_MS, cdr(tech_prefix="x#", start=T0 - 86400))])
    steps = list(fold.finish())
    closing = [s for s in steps if s.endswith("hours closed")]
    groups = {(c.tech_prefix, c.start // 3600) for c in calls}
    assert len(closing) >= (len(groups) + step - 1) // step  # tech-prefix's parts alone
    reference = MemState()
    fold_at(reference, calls, (hour + 3) * HOUR_MS)  # (all closed at once)
    fold_at(reference, [cdr(tech_prefix="x#", start=T0 - 86400)], (hour + 3) * HOUR_MS)
    tech = {k: v for k, v in state.data.items() if b"tech-prefix" in k}
    assert tech == {k: v for k, v in reference.data.items() if b"tech-prefix" in k}


def test_messages_without_a_time_keep_every_hour_closed() -> None:
    """Kafka's "no timestamp" (-1) must not leave every hour open for good (queries would read
    days and months hour by hour): such a partition rolls every hour up at once, as before."""
    state = MemState()
    fold_at(state, [cdr(tech_prefix="1#")], -1)
    assert day_attempts(state) == 1
    fold_at(state, [cdr(tech_prefix="1#")], T0 * 1000)  # (W never moves back)
    assert day_attempts(state) == 2
    assert answered_per_prefix(state, DAY_OF_T0 * 96, (DAY_OF_T0 + 1) * 96) == {"1#": 2}


class CountingState(MemState):
    """Counts the scans that look up one hour bucket of a report."""

    def __init__(self) -> None:
        super().__init__()
        self.hour_scans = 0

    def scan(self, low: bytes, high: bytes) -> Any:
        if low.startswith(b"R\x1ftech-prefix\x1fh"):
            self.hour_scans += 1
        return super().scan(low, high)


def test_a_month_reads_its_open_hours_up_to_the_customers_latest_call_only() -> None:
    """Early in a month "this month" spans hundreds of empty future hours: the query stops at
    the customer's latest call (its hour included, to its last second)."""
    hour = T0 // 3600
    state = CountingState()
    last_second = hour * 3600 + 3599
    calls = [cdr(tech_prefix="1#", start=T0 - 3600), cdr(tech_prefix="2#", start=last_second)]
    fold_at(state, calls, T0 * 1000 + 60_000)
    fold_at(state, [cdr(customer="43", tech_prefix="9#", start=T0 + 40 * 3600)], T0 * 1000)
    open_from = rolled(state)
    assert open_from <= hour - 1  # (both calls' hours are open)
    month = (DAY_OF_T0 - 24) * 96, (DAY_OF_T0 + 6) * 96  # 2026-11-01 … 2026-12-01
    assert answered_per_prefix(state, *month) == {"1#": 1, "2#": 1}
    assert state.hour_scans == hour - open_from + 1  # (not the month's ~130 hours to its end)
    state.hour_scans = 0
    rows = run_query(TECH, *month, state.scan, QueryContext("44"))  # (no call: nothing to read)
    assert rows == [] and state.hour_scans == 0
