"""Bounded state: delete report buckets past retention and call ids past the dedup horizon.

Both are leading key ranges of the layout (tables/keys.py): buckets and expiry keys sort in
time, so what has expired is found with one seek per range and costs nothing while nothing
expires; a call id leaves within the horizon and the slack of its acceptance, whatever the
rate. The deletes go through the partition's transaction, so each is a changelog tombstone.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from streamagg.tables.buckets import QUARTERS_PER_HOUR
from streamagg.tables.fold import ReportFold
from streamagg.tables.keys import (
    NEWEST_MS,
    decode_expiry_group,
    decode_int,
    decode_vector,
    dedup_key,
    expiry_group_range,
    expiry_range,
    parse_expiry_key,
    report_expiry_range,
)

# Call ids are kept this much longer than the horizon, for input partitions that lag behind
# the newest message of the partition: the dedup state is at most (horizon + slack) of traffic.
EXPIRY_SLACK_SECONDS = 4 * 3600
DELETES_PER_TRANSACTION = 5_000
# Report buckets expire by the worker's clock, but never by more than this past the partition's
# newest message time (the producers' or the broker's clock): a worker clock that jumps ahead (a
# bad time source, a VM restored with a wrong clock) must not delete months of history, which
# no replay of the changelog could bring back.
CLOCK_AHEAD_SLACK_SECONDS = 24 * 3600


class SweptState(Protocol):
    def get(self, key: bytes) -> bytes | None: ...

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


def intact_from_quarter(now: float, newest_ms: int, retention_days: int) -> int:
    """The first epoch quarter of buckets no sweep has taken finer buckets from, given this
    worker's clock and the partition's newest message time, with a day to spare.

    No sweep ran past the newest message time and a day (``sweep_time``), whatever the clock
    of the worker that ran it: that bound holds when this worker's own clock is behind the one
    that swept (a worker restored with an old clock answering for a partition another swept).
    The wall clock is kept as a second bound, for state swept before that hold existed."""
    held = oldest_kept_hour(now, retention_days)
    if newest_ms:
        held = max(
            held, oldest_kept_hour(newest_ms / 1000 + CLOCK_AHEAD_SLACK_SECONDS, retention_days)
        )
    return (held + 24) * QUARTERS_PER_HOUR


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
        oldest_hour = oldest_kept_hour(sweep_time(now, newest_ms), self.retention_days)
        deleted = 0
        for report in self.reports.values():
            for grain in report.grains:
                low, high = report_expiry_range(report.name, grain.code, grain.bucket(oldest_hour))
                for key, _value in txn.scan(low, high):
                    if deleted >= left:
                        return deleted
                    txn.delete(key)
                    deleted += 1
        if not newest_ms:
            return deleted
        first_kept_ms = newest_ms - (self.dedup_horizon_seconds + EXPIRY_SLACK_SECONDS) * 1000
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
