"""Kafka message times drive the dedup horizon and the closing of hours (SPEC §1: duplicates
are counted in the Kafka timestamps). One message stamped far ahead — a producer host with a
broken clock, or a hostile one — must not make the state forget the calls within the horizon:
the ingest stage holds a message time to at most an hour past its own clock."""

from __future__ import annotations

import orjson
from aiokafka.structs import ConsumerRecord

from streamagg.agents.ingest import MESSAGE_TIME_AHEAD_MAX_S, triage
from streamagg.cdr import TimePolicy
from streamagg.reports import REPORTS
from streamagg.tables.fold import fold_records
from streamagg.tables.retention import EXPIRY_SLACK_SECONDS, RetentionSweeper
from tests.support.memstore import MemState

NOW = 1_795_608_000.0  # 2026-11-25T12:00:00Z
NOW_MS = int(NOW * 1000)
HORIZON_S = 48 * 3600
YEAR_2100_MS = 4_102_444_800_000


def message(offset: int, stamp_ms: int, callid: str) -> ConsumerRecord[bytes, bytes]:
    value = orjson.dumps(
        {"callid": callid, "customer_id": "42", "dt": NOW - 600, "tech_prefix": "9#"}
    )
    return ConsumerRecord("cdrs", 0, offset, stamp_ms, 0, None, value, None, 0, len(value), [])


def ingest(*messages: ConsumerRecord[bytes, bytes]) -> list[int]:
    return [
        r.timestamp_ms
        for r in triage(messages, now=NOW, policy=TimePolicy(), did_owner=lambda _: "").records
    ]


def test_a_message_time_is_held_to_an_hour_past_the_clock() -> None:
    ahead = MESSAGE_TIME_AHEAD_MAX_S * 1000
    stamps = [NOW_MS - 5_000, NOW_MS + ahead - 1, NOW_MS + ahead + 1, YEAR_2100_MS]
    assert ingest(*(message(i, s, f"c{i}") for i, s in enumerate(stamps))) == [
        NOW_MS - 5_000,
        NOW_MS + ahead - 1,
        NOW_MS + ahead,
        NOW_MS + ahead,
    ]


def test_the_hold_is_within_the_slack_the_dedup_state_keeps_ids_for() -> None:
    # A newest message time too far ahead by less than the slack expires no id within the
    # horizon (tables/retention.py): ids stay for horizon + slack past it.
    assert MESSAGE_TIME_AHEAD_MAX_S < EXPIRY_SLACK_SECONDS


def test_one_message_stamped_far_ahead_leaves_a_resend_within_the_horizon_a_duplicate() -> None:
    state = MemState()
    sweeper = RetentionSweeper(REPORTS, 400, HORIZON_S)
    polls = [
        [message(0, NOW_MS - 30 * 3600 * 1000, "first")],
        [message(1, YEAR_2100_MS, "poisoned")],
        [message(2, NOW_MS, "first")],  # resent 30 h after the first: a duplicate
    ]
    duplicates = 0
    for poll in polls:
        records = triage(poll, now=NOW, policy=TimePolicy(), did_owner=lambda _: "").records
        duplicates += fold_records(state, records, REPORTS, HORIZON_S).duplicates
        sweeper.sweep(state, NOW)  # (as every state transaction does)
    assert duplicates == 1


def test_a_message_without_a_time_counts_as_sent_now() -> None:
    """The oldest message format has no time (-1): such a CDR must still be a duplicate of
    its re-sends, and they of it."""
    assert ingest(message(0, -1, "a"), message(1, 0, "b")) == [NOW_MS, NOW_MS]
    state = MemState()
    polls = [
        [message(0, -1, "first"), message(1, NOW_MS - 3_600_000, "second")],
        [message(2, NOW_MS, "first"), message(3, -1, "second")],
    ]
    duplicates = 0
    for poll in polls:
        records = triage(poll, now=NOW, policy=TimePolicy(), did_owner=lambda _: "").records
        duplicates += fold_records(state, records, REPORTS, HORIZON_S).duplicates
    assert duplicates == 2
