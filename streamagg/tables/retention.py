"""Bounded state: delete report buckets past retention and call ids past the dedup horizon.

Both are leading key ranges of the layout (tables/keys.py): buckets and days sort in time, so
what has expired is found with one seek per range and costs nothing while nothing expires.
The deletes go through the partition's transaction, so each is a changelog tombstone.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

from streamagg.tables.fold import ReportFold
from streamagg.tables.keys import (
    DAY_MS,
    NEWEST_MS,
    decode_int,
    dedup_expiry_range,
    report_expiry_range,
)

# Call ids are kept this much longer than the horizon, for source partitions that lag behind
# the newest message of the partition.
EXPIRY_SLACK_SECONDS = 6 * 3600
DELETES_PER_TRANSACTION = 5_000


class SweptState(Protocol):
    def get(self, key: bytes) -> bytes | None: ...

    def delete(self, key: bytes) -> None: ...

    def scan(self, low: bytes, high: bytes) -> Iterator[tuple[bytes, bytes]]: ...


@dataclass(frozen=True)
class RetentionSweeper:
    reports: Mapping[str, ReportFold]
    retention_days: int
    dedup_horizon_seconds: int
    budget: int = DELETES_PER_TRANSACTION

    def sweep(self, txn: SweptState, now: float) -> int:
        """Delete up to ``budget`` expired keys; returns how many it deleted."""
        ranges: list[tuple[bytes, bytes]] = []
        oldest_hour = int(now // 3600) - self.retention_days * 24
        for report in self.reports.values():
            for grain in report.grains:
                ranges.append(
                    report_expiry_range(report.name, grain.code, grain.bucket(oldest_hour))
                )
        newest_ms = decode_int(txn.get(NEWEST_MS), 0)
        if newest_ms:
            kept_ms = (self.dedup_horizon_seconds + EXPIRY_SLACK_SECONDS) * 1000
            ranges.append(dedup_expiry_range((newest_ms - kept_ms) // DAY_MS))
        deleted = 0
        for low, high in ranges:
            for key, _value in txn.scan(low, high):
                if deleted >= self.budget:
                    return deleted
                txn.delete(key)
                deleted += 1
        return deleted
