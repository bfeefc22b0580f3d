"""Apply one batch message to a partition's tables so that applying it again changes nothing.

Faust commits the batch topic at least once, and a crash can leave some table keys written and
others not, in whatever order their changelogs were flushed. So:

- every report value carries the offset of the batch message that last changed it (its tag):
  a replayed batch skips each key whose tag is already at or past its offset;
- batches carry the source offsets of their CDRs, and a progress record per (partition, source)
  keeps the high-water mark of source offsets applied, which drops CDRs the ingest stage sent
  twice (after its own crash or a rebalance);
- the progress record also remembers, for its recent batches, the mark each one started from,
  so replaying several batches decides exactly as the first run did.

Dedup runs on event time as Kafka defines it, the timestamps of the CDR messages: a call id is
remembered for the horizon after the message that brought it. Every decision depends only on
the batch and the tables, never on the clock or on what the process saw before.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from streamagg.batches import Batch, Record
from streamagg.cdr import Cdr
from streamagg.reports.base import Groups, Report, merge_into
from streamagg.tables.buckets import bucket_key

# Batches of one source that can be replayed together: far more than Faust leaves uncommitted
# (it commits every 100 events or every second).
REMEMBERED_BATCHES = 512


class KeyValueStore(Protocol):
    """The bytes-to-bytes view of one table partition that the applier writes through."""

    def get(self, key: bytes) -> bytes | None: ...

    def set(self, key: bytes, value: bytes) -> None: ...

    def delete(self, key: bytes) -> None: ...


@dataclass
class PartitionStores:
    """The tables of one customer partition."""

    progress: KeyValueStore
    dedup: KeyValueStore
    reports: Mapping[str, KeyValueStore]


@dataclass
class BatchOutcome:
    accepted: list[Cdr] = field(default_factory=list)
    duplicates: int = 0
    resent: int = 0  # CDRs the ingest stage had already delivered (dropped silently)
    keys_written: int = 0
    newest_timestamp_ms: int = 0  # of the CDR messages applied, for dedup expiry


def encode_state(tag: int, groups: Groups) -> bytes:
    return orjson.dumps([tag, groups])


def decode_state(raw: bytes | None) -> tuple[int, Groups]:
    if raw is None:
        return -1, {}
    tag, groups = orjson.loads(raw)
    return tag, groups


@dataclass
class SourceProgress:
    """What a partition has applied from one source partition."""

    high_water: int = -1  # highest source offset applied
    recent: list[list[int]] = field(default_factory=list)  # [batch offset, mark it started from]

    @classmethod
    def decode(cls, raw: bytes | None) -> SourceProgress:
        if raw is None:
            return cls()
        high_water, recent = orjson.loads(raw)
        return cls(high_water, recent)

    def encode(self) -> bytes:
        return orjson.dumps([self.high_water, self.recent])

    def starting_mark(self, offset: int) -> int:
        """The high-water mark a batch starts from: as first recorded when it is a replay."""
        for batch_offset, mark in reversed(self.recent):
            if batch_offset == offset:
                return mark
        self.recent.append([offset, self.high_water])
        del self.recent[:-REMEMBERED_BATCHES]
        return self.high_water


class BatchApplier:
    """Folds batches into report tables: dedup, then one read and one write per touched key."""

    def __init__(self, reports: Mapping[str, Report], dedup_horizon_seconds: int) -> None:
        self.reports = reports
        self.dedup_horizon = dedup_horizon_seconds
        self.horizon_ms = dedup_horizon_seconds * 1000

    def apply(
        self, partition: int, offset: int, batch: Batch, stores: PartitionStores
    ) -> BatchOutcome:
        outcome = BatchOutcome()
        fresh = self._not_yet_delivered(partition, offset, batch, stores, outcome)
        seen_here: dict[bytes, int] = {}
        for record in fresh:
            if self._is_duplicate(record, offset, stores.dedup, seen_here):
                outcome.duplicates += 1
            else:
                outcome.accepted.append(record.cdr)
            if record.timestamp_ms > outcome.newest_timestamp_ms:
                outcome.newest_timestamp_ms = record.timestamp_ms
        for name, report in self.reports.items():
            outcome.keys_written += self._fold_report(
                report, outcome.accepted, offset, stores.reports[name]
            )
        return outcome

    @staticmethod
    def _not_yet_delivered(
        partition: int,
        offset: int,
        batch: Batch,
        stores: PartitionStores,
        outcome: BatchOutcome,
    ) -> list[Record]:
        key = f"{partition}\x1f{batch.source}".encode()
        progress = SourceProgress.decode(stores.progress.get(key))
        mark = progress.starting_mark(offset)
        fresh = []
        for record in batch.records:
            if record.source_offset <= mark:
                outcome.resent += 1
                continue
            fresh.append(record)
            progress.high_water = max(progress.high_water, record.source_offset)
        stores.progress.set(key, progress.encode())
        return fresh

    def _is_duplicate(
        self, record: Record, offset: int, dedup: KeyValueStore, seen_here: dict[bytes, int]
    ) -> bool:
        """A call is a duplicate when its id was accepted from a message less than the horizon
        older than this one, and its start is within the horizon of the first one's (a call id
        reused months later is a new call)."""
        cdr = record.cdr
        key = f"{cdr.customer_id}\x1f{cdr.callid}".encode()
        earlier = seen_here.get(key)
        if earlier is not None and abs(cdr.start - earlier) <= self.dedup_horizon:
            return True
        previous = None
        if earlier is None:
            raw = dedup.get(key)
            entry = orjson.loads(raw) if raw is not None else None
            if entry is not None and entry[1] == offset:
                # Written by this very batch before a crash: decide against what was there
                # before the batch, as the first run did.
                entry = entry[3]
            if entry is not None:
                start, _tag, accepted_at = entry[:3]
                if (
                    accepted_at >= record.timestamp_ms - self.horizon_ms
                    and abs(cdr.start - start) <= self.dedup_horizon
                ):
                    return True
                previous = entry[:3]
        seen_here[key] = cdr.start
        dedup.set(key, orjson.dumps([cdr.start, offset, record.timestamp_ms, previous]))
        return False

    @staticmethod
    def _fold_report(report: Report, cdrs: list[Cdr], offset: int, store: KeyValueStore) -> int:
        # Sum the batch per (customer, hour) first, then roll the hours up into every grain:
        # per-CDR work stays one dict lookup, whatever the number of grains.
        hourly: dict[tuple[str, int], Groups] = {}
        for cdr in cdrs:
            group = report.group(cdr)
            if group is None:
                continue
            delta = report.delta(cdr)
            slot = (cdr.customer_id, cdr.start // 3600)
            groups = hourly.get(slot)
            if groups is None:
                hourly[slot] = {group: delta}
                continue
            existing = groups.get(group)
            if existing is None:
                groups[group] = delta
            else:
                for i, value in enumerate(delta):
                    existing[i] += value
        deltas: dict[bytes, Groups] = {}
        for (customer, hour), groups in hourly.items():
            for grain in report.grains:
                key = bucket_key(customer, grain, grain.bucket(hour))
                target = deltas.get(key)
                if target is None:
                    deltas[key] = {group: list(vector) for group, vector in groups.items()}
                else:
                    merge_into(target, groups)
        written = 0
        for key, delta_groups in deltas.items():
            raw = store.get(key)
            tag, groups = decode_state(raw)
            if tag >= offset and raw is not None:
                # This batch reached the key before a crash: the local store has it, but its
                # changelog message may have died in the producer's buffer. Send it again, or
                # a standby or the next owner of the partition would never see it.
                store.set(key, raw)
                continue
            merge_into(groups, delta_groups)
            store.set(key, encode_state(offset, groups))
            written += 1
        return written
