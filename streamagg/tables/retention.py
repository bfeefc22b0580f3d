"""Bounded state: delete report buckets past retention and call ids past the dedup horizon.

Both are leading key ranges of the layout (tables/keys.py): buckets and expiry keys sort in
time, so what has expired is found with one seek per range and costs nothing while nothing
expires; a call id leaves within the horizon and the slack of its acceptance, whatever the
rate. The deletes go through the partition's transaction, so each is a changelog tombstone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from streamagg.tables.buckets import QUARTERS_PER_HOUR
from streamagg.tables.keys import (
    NEWEST_MS,
    RETENTION_DAYS,
    RETENTION_SHRINK,
    SWEPT_BEFORE_HOUR,
    decode_expiry_group,
    decode_int,
    decode_vector,
    dedup_key,
    encode_int,
    encode_vector,
    expiry_group_range,
    expiry_range,
    parse_expiry_key,
    report_expiry_range,
)
from streamagg.tables.sums import ReportFold

# Call ids are kept this much longer than the horizon, for input partitions that lag behind
# the newest message of the partition: the dedup state is at most (horizon + slack) of traffic.
EXPIRY_SLACK_SECONDS = 4 * 3600
DELETES_PER_TRANSACTION = 5_000
# Report buckets expire by the worker's clock, but never by more than this past the partition's
# newest message time (the producers' or the broker's clock): a worker clock that jumps ahead (a
# bad time source, a VM restored with a wrong clock) must not delete months of history, which
# no replay of the changelog could bring back.
CLOCK_AHEAD_SLACK_SECONDS = 24 * 3600
# A shorter STREAMAGG_RETENTION_DAYS than a partition keeps deletes its older history for good:
# it applies once it has been asked for this long (by sweep time), so that a typo on one worker
# (40 for 400), fixed within the day, deletes nothing. A longer one applies at once.
SHRINK_DELAY_SECONDS = 24 * 3600

log = logging.getLogger(__name__)


class SweptState(Protocol):
    def get(self, key: bytes) -> bytes | None: ...

    def set(self, key: bytes, value: bytes) -> None: ...

    def delete(self, key: bytes) -> None: ...

    def scan(self, low: bytes, high: bytes) -> Iterator[tuple[bytes, bytes]]: ...


def oldest_kept_hour(now: float, retention_days: int) -> int:
    """The epoch hour from which buckets are kept: the sweep deletes each grain's buckets
    before the one holding this hour (a coarser bucket may so keep hours its finer ones lost)."""
    return int(now // 3600) - retention_days * 24


def sweep_time(now: float, newest_ms: int) -> float:
    """The time report buckets expire by: the wall clock, held within a day of the partition's
    newest message time (none yet: the wall clock)."""
    if not newest_ms:
        return now
    return min(now, newest_ms / 1000 + CLOCK_AHEAD_SLACK_SECONDS)


def intact_from_quarter(now: float, newest_ms: int, retention_days: int, swept: int = 0) -> int:
    """The first epoch quarter of buckets no sweep has taken finer buckets from, with a day to
    spare (for a sweep while the query reads): the latest of the hour before which the
    partition's sweeps deleted (``swept``, recorded by them since it is kept) and what this
    worker's retention makes of its clock and of the partition's newest message time.

    No sweep ran past the newest message time and a day (``sweep_time``), whatever the clock of
    the worker that ran it: that bound holds when this worker's own clock is behind the one that
    swept; ``swept`` holds whatever the clocks and retention of the workers that swept."""
    held = max(swept, oldest_kept_hour(now, retention_days))
    if newest_ms:
        held = max(
            held, oldest_kept_hour(newest_ms / 1000 + CLOCK_AHEAD_SLACK_SECONDS, retention_days)
        )
    return (held + 24) * QUARTERS_PER_HOUR


def partition_intact_from(
    get: Callable[[bytes], bytes | None], now: float, retention_days: int
) -> int:
    """``intact_from_quarter`` of a partition, read through its reader's ``get``: its newest
    message time and the hour its sweeps reached, as recorded in its state."""
    return intact_from_quarter(
        now,
        decode_int(get(NEWEST_MS), 0),
        retention_days,
        decode_int(get(SWEPT_BEFORE_HOUR), 0),
    )


def kept_days(txn: SweptState, asked: int, at: float) -> int:
    """The retention a sweep at ``at`` applies, given the setting ``asked``: the partition's
    own (recorded), raised at once to a longer setting, lowered to a shorter one only once that
    has been asked for SHRINK_DELAY_SECONDS without a break (a partition moved to a worker with
    another setting starts the wait again)."""
    kept = decode_int(txn.get(RETENTION_DAYS), 0)
    request = txn.get(RETENTION_SHRINK)
    if not kept or asked >= kept:
        if kept != asked:
            txn.set(RETENTION_DAYS, encode_int(asked))
        if request is not None:
            txn.delete(RETENTION_SHRINK)
        return asked
    if request is None or decode_vector(request)[0] != asked:
        txn.set(RETENTION_SHRINK, encode_vector([asked, int(at)]))
        log.warning(
            "retention: STREAMAGG_RETENTION_DAYS=%d is shorter than the %d days this partition "
            "keeps; if it stays so for %d hours, report buckets older than %d days are deleted "
            "for good. Set it back to %d to keep them.",
            asked,
            kept,
            SHRINK_DELAY_SECONDS // 3600,
            asked,
            kept,
        )
        return kept
    if at - decode_vector(request)[1] < SHRINK_DELAY_SECONDS:
        return kept
    txn.set(RETENTION_DAYS, encode_int(asked))
    txn.delete(RETENTION_SHRINK)
    log.warning("retention: lowered from %d to %d days, as asked since a day", kept, asked)
    return asked


@dataclass(frozen=True)
class RetentionSweeper:
    reports: Mapping[str, ReportFold]
    retention_days: int
    dedup_horizon_seconds: int
    budget: int = DELETES_PER_TRANSACTION

    def sweep(self, txn: SweptState, now: float, budget: int | None = None) -> int:
        """Delete up to ``budget`` (default: self.budget) expired keys; returns how many."""
        left = self.budget if budget is None else budget
        newest_ms = decode_int(txn.get(NEWEST_MS), 0)
        deleted = self._sweep_buckets(txn, sweep_time(now, newest_ms), left)
        if not newest_ms or deleted >= left:
            return deleted
        first_kept_ms = newest_ms - (self.dedup_horizon_seconds + EXPIRY_SLACK_SECONDS) * 1000
        return self._sweep_ids(txn, first_kept_ms, deleted, left)

    def _sweep_buckets(self, txn: SweptState, at: float, left: int) -> int:
        """Delete up to ``left`` report buckets past the retention kept at sweep time ``at``."""
        oldest_hour = oldest_kept_hour(at, kept_days(txn, self.retention_days, at))
        if oldest_hour > decode_int(txn.get(SWEPT_BEFORE_HOUR), 0):
            txn.set(SWEPT_BEFORE_HOUR, encode_int(oldest_hour))  # (with the deletes it covers)
        deleted = 0
        for report in self.reports.values():
            for grain in report.grains:
                low, high = report_expiry_range(report.name, grain.code, grain.bucket(oldest_hour))
                for key, _value in txn.scan(low, high):
                    if deleted >= left:
                        return deleted
                    txn.delete(key)
                    deleted += 1
        return deleted

    def _sweep_ids(self, txn: SweptState, first_kept_ms: int, deleted: int, left: int) -> int:
        """Delete call ids accepted before ``first_kept_ms`` until ``deleted`` reaches ``left``;
        returns ``deleted`` then."""
        low, high = expiry_group_range(first_kept_ms)
        for key, value in txn.scan(low, high):
            entries = decode_expiry_group(value)
            # A group is expired whole; one larger than the budget still goes when it is first.
            if deleted and deleted + 1 + len(entries) > left:
                return deleted
            txn.delete(key)
            deleted += 1 + sum(_expire_id(txn, *entry) for entry in entries)
        # Ids indexed one key each, by versions before expiry groups (gone within the horizon).
        low, high = expiry_range(first_kept_ms)
        for key, _value in txn.scan(low, high):
            if deleted + 2 > left:
                return deleted
            txn.delete(key)
            deleted += 1 + _expire_id(txn, *parse_expiry_key(key))
        return deleted


def _expire_id(txn: SweptState, accepted_ms: int, customer: str, callid: str) -> int:
    """Delete the id's entry if it is still this acceptance's; returns the keys deleted."""
    entry = dedup_key(customer, callid)
    raw = txn.get(entry)
    if raw is not None and decode_vector(raw)[0] == accepted_ms:
        txn.delete(entry)  # (accepted again since: the newer acceptance stays)
        return 1
    return 0
