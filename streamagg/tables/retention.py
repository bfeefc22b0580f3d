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
from streamagg.tables.changelog import ChangelogWriter
from streamagg.tables.faust_tables import ReportTables, partition_db

# Faust's RocksDB store keeps its changelog offset under a key of its own in each partition.
FAUST_PRIVATE_PREFIX = b"__faust"
EXPIRY_SLACK_SECONDS = 6 * 3600


@dataclass
class RetentionSweeper:
    retention_days: int
    dedup_horizon_seconds: int
    keys_per_step: int = 500
    _cursors: dict[tuple[str, int], bytes | None] = field(default_factory=dict)

    def step(
        self,
        tables: ReportTables,
        partition: int,
        now: float,
        newest_message_ms: int | None,
        writer: ChangelogWriter,
    ) -> int:
        """Examine a slice of every table of one partition; returns how many keys it deleted."""
        oldest_hour = int(now // 3600) - self.retention_days * 24
        deleted = 0
        for name, table in tables.reports.items():
            deleted += self._sweep(
                name, table, partition, writer, lambda key, _v: _bucket_end(key) <= oldest_hour
            )
        if newest_message_ms:
            # Dedup entries hold [start, batch offset, message timestamp (ms), previous entry].
            # The slack covers source partitions that lag behind the newest.
            oldest = newest_message_ms - (self.dedup_horizon_seconds + EXPIRY_SLACK_SECONDS) * 1000
            deleted += self._sweep(
                "dedup",
                tables.dedup,
                partition,
                writer,
                lambda _k, value: orjson.loads(value)[2] < oldest,
            )
        return deleted

    def _sweep(
        self,
        name: str,
        table: Any,
        partition: int,
        writer: ChangelogWriter,
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
            writer.put(table, partition, key, None)  # a tombstone in the changelog
        return len(doomed)


def _bucket_end(key: bytes) -> int:
    _, grain, bucket = parse_bucket_key(key)
    return grain.span(bucket)[1]
