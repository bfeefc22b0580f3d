"""Kafka message times drive the dedup horizon and the closing of hours (SPEC §1: duplicates
are counted in the Kafka timestamps). One message stamped far ahead — a producer host with a
broken clock, or a hostile one — must not make the state forget the calls within the horizon:
the ingest stage holds a message time to at most an hour past its own clock."""

from __future__ import annotations

import orjson
from aiokafka.structs import ConsumerRecord

from streamagg.agents.ingest import MESSAGE_TIME_AHEAD_MAX_S, triage
from streamagg.batches import Record
from streamagg.cdr import TimePolicy
from streamagg.reports import REPORTS
from streamagg.tables.fold import fold_records
from streamagg.tables.retention import EXPIRY_SLACK_SECONDS, RetentionSweeper
from tests.support.chaos import YEAR_2100_MS
from tests.support.memstore import MemState

NOW = 1_795_608_000.0  # 2026-11-25T12:00:00Z
NOW_MS = int(NOW * 1000)
HORIZON_S = 48 * 3600


def message(offset: int, stamp_ms: int, callid: str) -> ConsumerRecord[bytes, bytes]:
    value = orjson.dumps(
        {"callid": callid, "customer_id": "42", "dt": NOW - 600, "tech_prefix": "9#"}
    )
    return ConsumerRecord("cdrs", 0, offset, stamp_ms, 0, None, value, None, 0, len(value), [])


def ingest(*messages: ConsumerRecord[bytes, bytes]) -> list[Record]:
    return triage(messages, now=NOW, policy=TimePolicy(), did_owner=lambda _: "").records


def stamps(*messages: ConsumerRecord[bytes, bytes]) -> list[int]:
    return [record.timestamp_ms for record in ingest(*messages)]


def duplicates(polls: list[list[ConsumerRecord[bytes, bytes]]], sweep: bool = False) -> int:
    """The duplicates one partition's state finds, each poll ingested and folded in turn (and
    swept after, as every state transaction does, when ``sweep``)."""
    state = MemState()
    sweeper = RetentionSweeper(REPORTS, 400, HORIZON_S)
    found = 0
    for poll in polls:
        found += fold_records(state, ingest(*poll), REPORTS, HORIZON_S).duplicates
        if sweep:
            sweeper.sweep(state, NOW)
    return found


def test_a_message_time_is_held_to_an_hour_past_the_clock() -> None:
    ahead = MESSAGE_TIME_AHEAD_MAX_S * 1000
    times = [NOW_MS - 5_000, NOW_MS + ahead - 1, NOW_MS + ahead + 1, YEAR_2100_MS]
    assert stamps(*(message(i, s, f"c{i}") for i, s in enumerate(times))) == [
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
    polls = [
        [message(0, NOW_MS - 30 * 3600 * 1000, "first")],
        [message(1, YEAR_2100_MS, "poisoned")],
        [message(2, NOW_MS, "first")],  # resent 30 h after the first: a duplicate
    ]
    assert duplicates(polls, sweep=True) == 1


def test_a_message_without_a_time_counts_as_sent_now() -> None:
    """The oldest message format has no time (-1): such a CDR must still be a duplicate of
    its re-sends, and they of it."""
    assert stamps(message(0, -1, "a"), message(1, 0, "b")) == [NOW_MS, NOW_MS]
    polls = [
        [message(0, -1, "first"), message(1, NOW_MS - 3_600_000, "second")],
        [message(2, NOW_MS, "first"), message(3, -1, "second")],
    ]
    assert duplicates(polls) == 2
