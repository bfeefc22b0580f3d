"""Expiry of report buckets and call ids (tables/retention.py)."""

from __future__ import annotations

from streamagg.batches import Record
from streamagg.cdr import Cdr
from streamagg.reports import REPORTS
from streamagg.tables.buckets import DAY, HOUR, MONTH
from streamagg.tables.fold import fold_records
from streamagg.tables.keys import NEWEST_MS, dedup_key, encode_int, expiry_key, report_key
from streamagg.tables.retention import EXPIRY_SLACK_SECONDS, RetentionSweeper
from tests.support.memstore import MemState

NOW = 1_795_608_000.0  # 2026-11-25T12:00:00Z
NOW_H = int(NOW // 3600)
RETENTION_DAYS = 400
HORIZON_S = 48 * 3600


def sweeper(budget: int = 10_000) -> RetentionSweeper:
    return RetentionSweeper(REPORTS, RETENTION_DAYS, HORIZON_S, budget)


def test_buckets_past_retention_go_and_the_rest_stay() -> None:
    oldest = NOW_H - RETENTION_DAYS * 24
    state = MemState()
    kept, gone = [], []
    for hour in (oldest - 24 * 40, oldest - 1, oldest, oldest + 1, NOW_H):
        for grain in (HOUR, DAY, MONTH):
            bucket = grain.bucket(hour)
            key = report_key("tech-prefix", grain.code, bucket, "42", "1#")
            state.set(key, b"1,1,1")
            (kept if grain.span(bucket)[1] > oldest else gone).append(key)
    sweeper().sweep(state, NOW)
    assert set(state.data) == set(kept)
    assert gone, "the example must expire something"


def test_call_ids_older_than_horizon_and_slack_go_and_newer_stay() -> None:
    newest_ms = int(NOW * 1000)
    limit_ms = newest_ms - (HORIZON_S + EXPIRY_SLACK_SECONDS) * 1000
    state = MemState({NEWEST_MS: encode_int(newest_ms)})
    for n, accepted_ms in enumerate((limit_ms - 60_000, limit_ms - 1, limit_ms, limit_ms + 1)):
        state.set(dedup_key("42", f"c{n}"), b"%d,0" % accepted_ms)
        state.set(expiry_key(accepted_ms, "42", f"c{n}"), b"")
    sweeper().sweep(state, NOW)
    assert sorted(k for k in state.data if k.startswith(b"D")) == [
        dedup_key("42", "c2"),
        dedup_key("42", "c3"),
    ]
    assert len([k for k in state.data if k.startswith(b"X")]) == 2


def test_an_id_accepted_again_survives_the_expiry_of_its_first_acceptance() -> None:
    newest_ms = int(NOW * 1000)
    old = newest_ms - 100 * 3_600_000
    state = MemState({NEWEST_MS: encode_int(newest_ms)})
    state.set(expiry_key(old, "42", "c"), b"")
    state.set(expiry_key(newest_ms, "42", "c"), b"")
    state.set(dedup_key("42", "c"), b"%d,0" % newest_ms)
    sweeper().sweep(state, NOW)
    assert state.data[dedup_key("42", "c")] == b"%d,0" % newest_ms
    assert expiry_key(old, "42", "c") not in state.data


def test_the_dedup_state_stays_within_horizon_and_slack_of_traffic_at_any_batch_size() -> None:
    """Issue 14: 500 keys examined per batch never caught up above ~500 CDRs per batch (9.4x
    the expected size and growing). Here: 24 hours of message time at 50 CDRs a minute, in
    batches of 1,500 (half an hour each), swept with the state layer's budget per batch."""
    horizon_s = 6 * 3600
    sweeper = RetentionSweeper(REPORTS, RETENTION_DAYS, horizon_s, budget=1_000)
    state = MemState()
    rate_per_min, batch = 50, 1_500
    peak = 0
    for first in range(0, 24 * 60 * rate_per_min, batch):
        records = [
            Record(n, int(NOW * 1000) + n * 1_200, _call(f"c{n}"))
            for n in range(first, first + batch)
        ]
        before = len(state.data)
        fold_records(state, records, {}, horizon_s)
        sweeper.sweep(state, NOW, sweeper.budget + 2 * (len(state.data) - before))
        peak = max(peak, sum(1 for k in state.data if k.startswith(b"D")))
    expected = (horizon_s + EXPIRY_SLACK_SECONDS) // 60 * rate_per_min
    assert peak <= 1.05 * expected
    assert peak >= 0.95 * horizon_s // 60 * rate_per_min  # it does remember the horizon


def _call(callid: str) -> Cdr:
    return Cdr(callid, "42", int(NOW), "7", 0, 0, "", 0, False, False, "", "")


def test_a_sweep_deletes_at_most_its_budget_and_the_next_goes_on() -> None:
    state = MemState()
    for bucket in range(100):
        state.set(report_key("dtmf", "d", bucket, "42", "x"), b"1,1,1,1")
    assert sweeper(budget=30).sweep(state, NOW) == 30
    assert sweeper(budget=30).sweep(state, NOW) == 30
    assert sweeper(budget=100).sweep(state, NOW) == 40
    assert state.data == {}


def test_nothing_expired_costs_nothing() -> None:
    state = MemState({report_key("dtmf", "d", NOW_H // 24, "42", "x"): b"1,1,1,1"})
    assert sweeper().sweep(state, NOW) == 0
