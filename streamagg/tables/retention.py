"""Bounded state: delete report buckets past retention and dedup ids past the horizon.

Faust's windowed-table expiry compares with wall-clock time and forgets restored windows, so the
tables are plain and this sweeper owns expiry. It walks each partition's RocksDB a slice at a
time from inside the report agent, so every delete is a changelog tombstone of that partition.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from streamagg.tables.buckets import parse_bucket_key
from streamagg.tables.faust_tables import ReportTables, partition_db

# Faust's RocksDB store keeps its changelog offset under a key of its own in each partition.
FAUST_PRIVATE_PREFIX = b"__faust"


@dataclass
class RetentionSweeper:
    retention_days: int
    dedup_horizon_seconds: int
    keys_per_step: int = 500
    _cursors: dict[tuple[str, int], bytes | None] = field(default_factory=dict)
    watermarks: dict[int, int] = field(default_factory=dict)  # newest call start per partition

    def observe(self, partition: int, newest_start: int) -> None:
        if newest_start > self.watermarks.get(partition, 0):
            self.watermarks[partition] = newest_start

    def step(self, tables: ReportTables, partition: int, now: float) -> int:
        """Examine a slice of every table of one partition; returns how many keys it deleted."""
        oldest_hour = int(now // 3600) - self.retention_days * 24
        deleted = 0
        for name, table in tables.reports.items():
            deleted += self._sweep(
                name, table, partition, lambda key, _v: _bucket_end(key) <= oldest_hour
            )
        watermark = self.watermarks.get(partition)
        if watermark is not None:
            oldest_start = watermark - self.dedup_horizon_seconds
            deleted += self._sweep(
                "dedup",
                tables.dedup,
                partition,
                lambda _k, value: orjson.loads(value)[0] < oldest_start,
            )
        return deleted

    def _sweep(
        self,
        name: str,
        table: Any,
        partition: int,
        expired: Callable[[bytes, bytes], bool],
    ) -> int:
        db = partition_db(table, partition)
        cursor = self._cursors.get((name, partition))
        items = list(itertools.islice(db.items(from_key=cursor), self.keys_per_step + 1))
        more = len(items) > self.keys_per_step
        self._cursors[(name, partition)] = items[-1][0] if more else None
        doomed = [
            key
            for key, value in items[: self.keys_per_step]
            if not key.startswith(FAUST_PRIVATE_PREFIX) and expired(key, value)
        ]
        for key in doomed:
            del table[key]
        return len(doomed)


def _bucket_end(key: bytes) -> int:
    _, grain, bucket = parse_bucket_key(key)
    return grain.span(bucket)[1]
