"""Expiry of report buckets and call ids (tables/retention.py)."""

from __future__ import annotations

from streamagg.reports import REPORTS
from streamagg.tables.buckets import DAY, HOUR, MONTH
from streamagg.tables.keys import DAY_MS, NEWEST_MS, dedup_key, encode_int, report_key
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


def test_call_ids_older_than_horizon_and_slack_go() -> None:
    newest_ms = int(NOW * 1000)
    state = MemState({NEWEST_MS: encode_int(newest_ms)})
    limit_day = (newest_ms - (HORIZON_S + EXPIRY_SLACK_SECONDS) * 1000) // DAY_MS
    for day in range(limit_day - 3, limit_day + 3):
        state.set(dedup_key(day, "42", f"c{day}"), b"0,0")
    sweeper().sweep(state, NOW)
    days = sorted(int(k.split(b"\x1f")[1]) for k in state.data if k.startswith(b"D"))
    assert days == list(range(limit_day, limit_day + 3))


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
