"""Expiry of report buckets and call ids (tables/retention.py)."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamagg.batches import Record
from streamagg.cdr import Cdr
from streamagg.reports import REPORTS
from streamagg.tables.buckets import DAY, HOUR, MONTH
from streamagg.tables.fold import fold_records
from streamagg.tables.keys import (
    NEWEST_MS,
    SWEPT_BEFORE_HOUR,
    decode_expiry_group,
    decode_int,
    dedup_key,
    encode_expiry_group,
    encode_int,
    expiry_group_key,
    expiry_key,
    report_key,
)
from streamagg.tables.keys import RETENTION_DAYS as KEPT_DAYS
from streamagg.tables.keys import RETENTION_SHRINK as SHRINK_ASKED
from streamagg.tables.retention import (
    CLOCK_AHEAD_SLACK_SECONDS,
    EXPIRY_SLACK_SECONDS,
    SHRINK_DELAY_SECONDS,
    RetentionSweeper,
    oldest_kept_hour,
    sweep_time,
)
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
    assert {key for key in state.data if key.startswith(b"R")} == set(kept)
    assert gone, "the example must expire something"


def test_a_worker_clock_that_jumps_ahead_deletes_no_history_within_retention() -> None:
    """Buckets expire by the wall clock held within a day of the newest message time: a clock
    two years ahead deletes what a clock a day ahead would (and messages that are two years
    newer let the sweep go that far)."""
    oldest = NOW_H - RETENTION_DAYS * 24
    keys = {}
    for hour in (oldest - 24 * 40, oldest - 1, oldest, oldest + 24, oldest + 48, NOW_H - 24 * 30):
        for grain in (HOUR, DAY, MONTH):
            keys[report_key("tech-prefix", grain.code, grain.bucket(hour), "42", "1#")] = hour

    def kept_after(sweep_at: float, newest: float) -> set[bytes]:
        state = MemState({NEWEST_MS: encode_int(int(newest * 1000))})
        for key in keys:
            state.set(key, b"1,1,1")
        sweeper().sweep(state, sweep_at)
        return {key for key in state.data if key.startswith(b"R")}

    two_years = 2 * 365 * 86400
    assert kept_after(NOW + two_years, NOW) == kept_after(NOW + CLOCK_AHEAD_SLACK_SECONDS, NOW)
    assert kept_after(NOW + two_years, NOW) > kept_after(NOW + two_years, NOW + two_years)
    assert kept_after(NOW + two_years, NOW + two_years) == set()
    # Within the slack, the wall clock rules, as without any message time.
    assert kept_after(NOW, NOW) < set(keys)
    assert sweep_time(NOW, int((NOW - 3600) * 1000)) == NOW
    assert sweep_time(NOW + two_years, 0) == NOW + two_years


def test_call_ids_older_than_horizon_and_slack_go_and_newer_stay() -> None:
    newest_ms = int(NOW * 1000)
    limit_ms = newest_ms - (HORIZON_S + EXPIRY_SLACK_SECONDS) * 1000
    state = MemState({NEWEST_MS: encode_int(newest_ms)})
    for n, accepted_ms in enumerate((limit_ms - 60_000, limit_ms - 1, limit_ms, limit_ms + 1)):
        state.set(dedup_key("42", f"c{n}"), b"%d,0" % accepted_ms)
        entries = [(accepted_ms, "42", f"c{n}")]
        state.set(expiry_group_key(entries), encode_expiry_group(entries))
    sweeper().sweep(state, NOW)
    assert sorted(k for k in state.data if k.startswith(b"D")) == [
        dedup_key("42", "c2"),
        dedup_key("42", "c3"),
    ]
    assert len([k for k in state.data if k.startswith(b"Y")]) == 2


def test_a_group_expires_when_its_newest_id_does() -> None:
    newest_ms = int(NOW * 1000)
    limit_ms = newest_ms - (HORIZON_S + EXPIRY_SLACK_SECONDS) * 1000
    state = MemState({NEWEST_MS: encode_int(newest_ms)})
    entries = [(limit_ms - 9, "42", "old"), (limit_ms, "42", "kept")]
    for accepted_ms, customer, callid in entries:
        state.set(dedup_key(customer, callid), b"%d,0" % accepted_ms)
    state.set(expiry_group_key(entries), encode_expiry_group(entries))
    assert sweeper().sweep(state, NOW) == 0
    assert dedup_key("42", "old") in state.data


def test_ids_indexed_one_key_each_by_earlier_versions_still_expire() -> None:
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


def test_a_group_larger_than_the_budget_still_goes_when_it_is_the_first() -> None:
    state = MemState({NEWEST_MS: encode_int(int(NOW * 1000))})
    old_ms = int(NOW * 1000) - (HORIZON_S + EXPIRY_SLACK_SECONDS + 60) * 1000
    for group in range(2):
        entries = [(old_ms + group, "42", f"g{group}-{n}") for n in range(20)]
        for accepted_ms, customer, callid in entries:
            state.set(dedup_key(customer, callid), b"%d,0" % accepted_ms)
        state.set(expiry_group_key(entries), encode_expiry_group(entries))
    assert sweeper(budget=5).sweep(state, NOW) == 21
    assert sweeper(budget=5).sweep(state, NOW) == 21
    assert [key for key in state.data if not key.startswith(b"M")] == []


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 1500), st.sampled_from("abcdefgh")), min_size=1, max_size=120
    ),
    st.lists(st.integers(1, 40), max_size=8),
    st.integers(1, 50),
)
def test_after_sweeping_the_ids_within_the_horizon_remain_and_only_their_groups_more(
    arrivals: list[tuple[int, str]], cuts: list[int], budget: int
) -> None:
    """Ids arrive (minute of message time, call id) in batches of any size, each batch's
    acceptances grouped as the fold groups them. After sweeping until nothing is left to
    delete: every id whose latest acceptance is within horizon + slack of the newest message
    remains (dedup never forgets early); an id past it remains only while its group holds a
    newer id (the state stays bounded by a group's time span); no group remains whose newest
    id is past it."""
    horizon_s = 3600
    keep_ms = (horizon_s + EXPIRY_SLACK_SECONDS) * 1000
    sweep = RetentionSweeper({}, RETENTION_DAYS, horizon_s, budget)
    arrivals.sort()
    state = MemState()
    at = 0
    for size in [*cuts, len(arrivals)]:
        batch = [
            Record(n, minute * 60_000, _call(callid))
            for n, (minute, callid) in enumerate(arrivals[at : at + size])
        ]
        at += size
        if batch:
            fold_records(state, batch, {}, horizon_s)
        if at >= len(arrivals):
            break
    while sweep.sweep(state, NOW):
        pass
    first_kept_ms = arrivals[-1][0] * 60_000 - keep_ms
    latest: dict[str, int] = {}
    for minute, callid in arrivals:  # the acceptances the fold makes, by its own rule
        if callid not in latest or latest[callid] < minute * 60_000 - horizon_s * 1000:
            latest[callid] = minute * 60_000
    remaining = {k for k in state.data if k.startswith(b"D")}
    within = {dedup_key("42", c) for c, ms in latest.items() if ms >= first_kept_ms}
    assert within <= remaining
    groups = {k: decode_expiry_group(v) for k, v in state.data.items() if k.startswith(b"Y")}
    grouped = {dedup_key(customer, callid) for g in groups.values() for _, customer, callid in g}
    assert remaining - within <= grouped
    assert all(max(ms for ms, _, _ in g) >= first_kept_ms for g in groups.values())


def test_a_sweep_deletes_at_most_its_budget_and_the_next_goes_on() -> None:
    state = MemState()
    for bucket in range(100):
        state.set(report_key("dtmf", "d", bucket, "42", "x"), b"1,1,1,1")
    assert sweeper(budget=30).sweep(state, NOW) == 30
    assert sweeper(budget=30).sweep(state, NOW) == 30
    assert sweeper(budget=100).sweep(state, NOW) == 40
    assert [key for key in state.data if key.startswith(b"R")] == []


def test_nothing_expired_costs_nothing() -> None:
    state = MemState({report_key("dtmf", "d", NOW_H // 24, "42", "x"): b"1,1,1,1"})
    assert sweeper().sweep(state, NOW) == 0


def _swept_buckets(state: MemState, asked_days: int, at: float) -> set[int]:
    """Sweep with STREAMAGG_RETENTION_DAYS=asked_days at ``at`` (messages up to then); returns
    the days (ago from NOW) whose day bucket is gone."""
    state.set(NEWEST_MS, encode_int(int(at * 1000)))
    RetentionSweeper(REPORTS, asked_days, HORIZON_S).sweep(state, at)
    return {ago for ago in DAYS_AGO if report_key(*_day_bucket(ago)) not in state.data}


DAYS_AGO = (10, 60, 200, 390)


def _day_bucket(ago: int) -> tuple[str, str, int, str, str]:
    return ("tech-prefix", DAY.code, DAY.bucket(NOW_H - ago * 24), "42", "1#")


def _history() -> MemState:
    state = MemState()
    for ago in DAYS_AGO:
        state.set(report_key(*_day_bucket(ago)), b"1,1,1")
    return state


def test_a_shorter_retention_deletes_nothing_until_it_has_been_asked_for_a_day() -> None:
    """STREAMAGG_RETENTION_DAYS=40 instead of 400 (a typo, one worker): a day to notice the
    warning and set it back before anything is deleted; asked for a whole day, it applies."""
    day = 86400
    state = _history()
    assert _swept_buckets(state, 400, NOW) == set()
    assert decode_int(state.get(KEPT_DAYS), 0) == 400
    assert _swept_buckets(state, 40, NOW + 3600) == set()
    assert _swept_buckets(state, 40, NOW + 3600 + SHRINK_DELAY_SECONDS - 60) == set()
    # Set back within the day: the request is forgotten, and asking again starts a new day.
    assert _swept_buckets(state, 400, NOW + day) == set()
    assert state.get(SHRINK_ASKED) is None
    assert _swept_buckets(state, 40, NOW + 2 * day) == set()
    assert _swept_buckets(state, 30, NOW + 2 * day + 3600) == set()  # (another value: anew)
    assert _swept_buckets(state, 30, NOW + 3 * day) == set()
    assert _swept_buckets(state, 30, NOW + 3 * day + 3600) == {60, 200, 390}
    assert decode_int(state.get(KEPT_DAYS), 0) == 30


def test_a_longer_retention_applies_at_once_and_the_swept_edge_never_moves_back() -> None:
    state = _history()
    assert _swept_buckets(state, 100, NOW) == {200, 390}
    edge = decode_int(state.get(SWEPT_BEFORE_HOUR), 0)
    assert edge == oldest_kept_hour(NOW, 100)
    assert _swept_buckets(state, 1000, NOW + 3600) == {200, 390}
    assert decode_int(state.get(KEPT_DAYS), 0) == 1000
    assert decode_int(state.get(SWEPT_BEFORE_HOUR), 0) == edge  # (what went is still gone)


def test_a_shrink_asked_logs_what_it_would_delete_and_how_to_keep_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state = _history()
    _swept_buckets(state, 400, NOW)
    with caplog.at_level(logging.WARNING, logger="streamagg.tables.retention"):
        _swept_buckets(state, 40, NOW + 60)
        _swept_buckets(state, 40, NOW + 120)  # (said once, not at every transaction)
    assert [r.getMessage() for r in caplog.records] == [
        "retention: STREAMAGG_RETENTION_DAYS=40 is shorter than the 400 days this partition "
        "keeps; if it stays so for 24 hours, report buckets older than 40 days are deleted for "
        "good. Set it back to 400 to keep them."
    ]
