"""Folding CDR records into a partition's state (tables/fold.py): duplicates on Kafka event time,
one key per report group, and a state that does not depend on how records were batched."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamagg.batches import Record
from streamagg.cdr import Cdr
from streamagg.reports import REPORTS
from streamagg.reports.base import QueryContext
from streamagg.reports.query import run_query
from streamagg.tables.fold import BatchFold, fold_records
from streamagg.tables.keys import (
    EXPIRY_GROUP_IDS,
    NEWEST_MS,
    decode_expiry_group,
    expiry_group_key,
)
from tests.support.memstore import MemState

HORIZON_S = 48 * 3600
HOUR_MS = 3_600_000
T0 = 1_795_608_000  # 2026-11-25T12:00:00Z (a call start)
TS0 = T0 * 1000 + 60_000  # its message, a minute later
_serial = itertools.count()


ALL_TIME = 4 * 10**6  # epoch quarters: every call of these tests


def cdr(callid: str | None = None, start: int = T0, customer: str = "42", **fields: Any) -> Cdr:
    values: dict[str, Any] = {
        "callid": callid or f"call-{next(_serial)}",
        "customer_id": customer,
        "start": start,
        "provider_id": "7",
        "customer_charge": 1_000_000,
        "provider_charge": 500_000,
        "tech_prefix": "123#",
        "duration": 30_000_000,
        "answered": True,
        "has_dtmf": False,
        "nanp_number": "2125551234",
        "cli": "6465550100",
        "did_owner": "7",
    }
    values.update(fields)
    return Cdr(**values)


def records(*calls: Cdr, stamp_ms: int = TS0) -> list[Record]:
    return [Record(i, stamp_ms, c) for i, c in enumerate(calls)]


def fold(state: MemState, recs: list[Record]) -> tuple[int, int]:
    outcome = fold_records(state, recs, REPORTS, HORIZON_S)
    return len(outcome.accepted), outcome.duplicates


def totals(state: MemState, customer: str = "42") -> int:
    rows = run_query(REPORTS["tech-prefix"], 0, ALL_TIME, state.scan, QueryContext(customer))
    return sum(row["total"] for row in rows)


def test_a_call_id_seen_twice_within_the_horizon_counts_once() -> None:
    state = MemState()
    first = cdr("a")
    assert fold(state, records(first)) == (1, 0)
    assert fold(state, records(first, stamp_ms=TS0 + 47 * HOUR_MS)) == (0, 1)
    assert totals(state) == 1


def test_duplicates_inside_one_batch_count_once() -> None:
    state = MemState()
    assert fold(state, records(cdr("a"), cdr("a"), cdr("b"))) == (2, 1)
    assert totals(state) == 2


def test_the_same_call_id_of_another_customer_is_another_call() -> None:
    state = MemState()
    assert fold(state, records(cdr("a", customer="42"), cdr("a", customer="43"))) == (2, 0)


def test_a_call_id_is_forgotten_after_the_horizon_of_message_time() -> None:
    state = MemState()
    fold(state, records(cdr("a")))
    later = TS0 + HORIZON_S * 1000 + 1
    assert fold(state, records(cdr("a"), stamp_ms=later)) == (1, 0)


def test_a_reused_call_id_for_a_call_months_later_is_a_new_call() -> None:
    state = MemState()
    fold(state, records(cdr("a")))
    reused = cdr("a", start=T0 + 90 * 86_400)
    assert fold(state, records(reused, stamp_ms=TS0 + HOUR_MS)) == (1, 0)


def test_a_late_message_finds_an_id_accepted_from_a_newer_one() -> None:
    """A source partition behind the others: the copy arrives with an older message time."""
    state = MemState()
    fold(state, records(cdr("a"), stamp_ms=TS0 + 30 * HOUR_MS))
    assert fold(state, records(cdr("a"), stamp_ms=TS0)) == (0, 1)


def test_an_accepted_id_is_one_entry_and_a_fold_one_expiry_group() -> None:
    state = MemState()
    fold(state, [Record(0, TS0, cdr("a")), Record(1, TS0 + 5, cdr("b")), Record(2, TS0, cdr("a"))])
    entries = [(TS0, "42", "a"), (TS0 + 5, "42", "b")]
    ids = {k: v for k, v in state.data.items() if k[:1] in b"DXY"}
    assert set(ids) == {b"D\x1f42\x1fa", b"D\x1f42\x1fb", expiry_group_key(entries)}
    assert ids[b"D\x1f42\x1fb"] == b"%d,%d" % (TS0 + 5, T0)
    assert expiry_group_key(entries).startswith(b"Y\x1f%013d\x1f42\x1fa" % (TS0 + 5))
    assert decode_expiry_group(ids[expiry_group_key(entries)]) == entries
    assert int(state.data[NEWEST_MS]) == TS0 + 5


def test_expiry_groups_hold_at_most_their_size_and_every_accepted_id_once() -> None:
    state = MemState()
    calls = [cdr(f"c{n}") for n in range(2 * EXPIRY_GROUP_IDS + 7)]
    fold(state, records(*calls))
    groups = [decode_expiry_group(v) for k, v in state.data.items() if k.startswith(b"Y")]
    assert sorted(len(g) for g in groups) == [7, EXPIRY_GROUP_IDS, EXPIRY_GROUP_IDS]
    assert sorted(callid for g in groups for _, _, callid in g) == sorted(c.callid for c in calls)


def test_a_check_is_one_read_whatever_the_message_times() -> None:
    looked_up: list[bytes] = []

    class Counting(MemState):
        def get(self, key: bytes) -> bytes | None:
            looked_up.append(key)
            return super().get(key)

    state = Counting()
    fold(state, records(cdr("a"), stamp_ms=TS0 + 10**12))  # a stray far-future timestamp
    looked_up.clear()
    fold(state, records(cdr("b")))
    assert [k for k in looked_up if k.startswith(b"D\x1f")] == [b"D\x1f42\x1fb"]


def test_each_group_is_its_own_small_key() -> None:
    """Values do not grow with the number of groups: 30,000 rate-center prefixes in one month
    are 30,000 keys of three integers each, not one value."""
    state = MemState()
    calls = [cdr(nanp_number=f"2{n:06d}555") for n in range(30_000)]
    fold(state, records(*calls, stamp_ms=TS0 + 3 * HOUR_MS))  # (their hour is closed)
    keys = [k for k in state.data if k.startswith(b"R\x1frate-center\x1fm")]
    assert len(keys) == len({c.nanp_number[:7] for c in calls})
    assert max(len(state.data[k]) for k in keys) < 64


@pytest.mark.parametrize(
    ("hours_later", "buckets"),
    [
        (0, ["h"]),  # an open hour (tables/rollup.py): its day and month get it when it closes
        (1, ["h"]),
        (2, ["h", "d", "m"]),  # a closed hour: its day and month at once
    ],
)
def test_a_batch_writes_only_the_groups_it_touches(hours_later: int, buckets: list[str]) -> None:
    state = MemState()
    stamp = TS0 + hours_later * HOUR_MS
    fold(state, records(*[cdr(tech_prefix=f"{p}#") for p in range(500)], stamp_ms=stamp))
    touched: list[bytes] = []

    class Recording(MemState):
        def set(self, key: bytes, value: bytes) -> None:
            touched.append(key)
            super().set(key, value)

    recording = Recording(state.data)
    fold(recording, records(cdr(tech_prefix="7#"), stamp_ms=stamp))
    tech = [k for k in touched if k.startswith(b"R\x1ftech-prefix")]
    assert sorted(k.split(b"\x1f")[2][:1].decode() for k in tech) == sorted(buckets)


def test_sums_pass_64_bits_exactly() -> None:
    state = MemState()
    big = 10**18  # micro-units; ten of them pass 2**63
    fold(state, records(*[cdr(customer_charge=big + i) for i in range(10)]))
    rows = run_query(REPORTS["dtmf"], 0, ALL_TIME, state.scan, QueryContext("42"))
    assert [row["customer_charge"] for row in rows] == [f"{10 * 10**12 + 0}.000045"]


calls_strategy = st.lists(
    st.builds(
        cdr,
        callid=st.sampled_from(["a", "b", "c", "d", "e", "f"]),
        start=st.integers(T0 - 40 * 86_400, T0 + 86_400),
        customer=st.sampled_from(["42", "43"]),
        tech_prefix=st.sampled_from(["", "1#", "2#"]),
        provider_id=st.sampled_from(["", "7"]),
        customer_charge=st.integers(0, 10**12),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(calls_strategy, st.lists(st.integers(1, 10), max_size=10), st.integers(0, 3 * 86_400_000))
def test_the_state_does_not_depend_on_how_records_were_batched(
    calls: list[Cdr], cuts: list[int], spread_ms: int
) -> None:
    """Folding the same records in one batch or in any split gives the same state: what a
    replay after a crash relies on, whatever the poll sizes were. (The expiry index is grouped
    per fold, so only its entries are the same, not how they are grouped.)"""
    recs = [Record(i, TS0 + i * spread_ms // 40, c) for i, c in enumerate(calls)]
    whole, split = MemState(), MemState()
    fold(whole, recs)
    at = 0
    for size in [*cuts, len(recs)]:
        fold(split, recs[at : at + size])
        at += size
        if at >= len(recs):
            break
    assert _without_expiry_groups(split) == _without_expiry_groups(whole)
    assert sorted(_expiry_entries(split)) == sorted(_expiry_entries(whole))


@settings(max_examples=150, deadline=None)
@given(calls_strategy, st.lists(st.integers(0, 10), max_size=10), st.integers(0, 3 * 86_400_000))
def test_one_fold_fed_in_slices_writes_what_one_fold_of_all_writes(
    calls: list[Cdr], cuts: list[int], spread_ms: int
) -> None:
    """The report agent feeds a transaction's fold in slices (serving the event loop between
    them): the writes, the expiry groups included, are those of one fold of every record."""
    recs = [Record(i, TS0 + i * spread_ms // 40, c) for i, c in enumerate(calls)]
    whole, sliced = MemState(), MemState()
    expected = fold_records(whole, recs, REPORTS, HORIZON_S)
    batch = BatchFold(sliced, REPORTS, HORIZON_S)
    at = 0
    for size in [*cuts, len(recs)]:
        batch.add(recs[at : at + size])
        at += size
    assert all(key.startswith(b"D") for key in sliced.data), "before finish(): dedup entries only"
    assert list(batch.finish()) == list(REPORTS)
    assert sliced.data == whole.data
    assert (len(batch.outcome.accepted), batch.outcome.duplicates, batch.outcome.keys_written) == (
        len(expected.accepted),
        expected.duplicates,
        expected.keys_written,
    )


def _without_expiry_groups(state: MemState) -> dict[bytes, bytes]:
    return {k: v for k, v in state.data.items() if not k.startswith(b"Y")}


def _expiry_entries(state: MemState) -> list[tuple[int, str, str]]:
    return [e for k, v in state.data.items() if k.startswith(b"Y") for e in decode_expiry_group(v)]


def test_each_customer_keeps_the_start_of_its_latest_call() -> None:
    """The API's customer list (SPEC §6): one key per customer, never moved back by an older
    call arriving late, untouched by duplicates."""
    state = MemState()
    fold(state, records(cdr("a", start=T0), cdr("b", start=T0 + 50), cdr("c", customer="7")))
    fold(state, records(cdr("d", start=T0 - 3600)))  # a late, older call
    fold(state, records(cdr("b", start=T0 + 50)))  # a duplicate
    latest = {k: int(v) for k, v in state.data.items() if k.startswith(b"C\x1f")}
    assert latest == {b"C\x1f42": T0 + 50, b"C\x1f7": T0}
