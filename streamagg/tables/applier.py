"""Apply one batch message to a partition's tables so that applying it twice changes nothing.

Faust commits the batch topic at least once, and a crash can leave some table keys written and
others not. Every value therefore carries the offset of the batch message that last changed it
(its tag): a replayed batch skips each key whose tag is already at or past its offset. Batches
carry the source offsets of their CDRs, and a per-source high-water mark drops CDRs that the
ingest stage sent again after a crash or a rebalance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from streamagg.batches import Batch
from streamagg.cdr import Cdr
from streamagg.reports.base import Groups, Report, merge_into
from streamagg.tables.buckets import bucket_key


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


def encode_state(tag: int, groups: Groups) -> bytes:
    return orjson.dumps([tag, groups])


def decode_state(raw: bytes | None) -> tuple[int, Groups]:
    if raw is None:
        return -1, {}
    tag, groups = orjson.loads(raw)
    return tag, groups


class BatchApplier:
    """Folds batches into report tables: dedup, then one read and one write per touched key."""

    def __init__(self, reports: Mapping[str, Report], dedup_horizon_seconds: int) -> None:
        self.reports = reports
        self.dedup_horizon = dedup_horizon_seconds

    def apply(
        self, partition: int, offset: int, batch: Batch, stores: PartitionStores
    ) -> BatchOutcome:
        outcome = BatchOutcome()
        fresh = self._not_yet_delivered(partition, offset, batch, stores.progress, outcome)
        seen_here: dict[bytes, int] = {}
        for cdr in fresh:
            if self._is_duplicate(cdr, offset, stores.dedup, seen_here):
                outcome.duplicates += 1
            else:
                outcome.accepted.append(cdr)
        for name, report in self.reports.items():
            outcome.keys_written += self._fold_report(
                report, outcome.accepted, offset, stores.reports[name]
            )
        return outcome

    def _not_yet_delivered(
        self,
        partition: int,
        offset: int,
        batch: Batch,
        progress: KeyValueStore,
        outcome: BatchOutcome,
    ) -> list[Cdr]:
        key = f"{partition}\x1f{batch.source}".encode()
        raw = progress.get(key)
        if raw is None:
            floor = -1
        else:
            tag, previous, high_water = orjson.loads(raw)
            # A replay of this very batch must see the mark as it was before the batch.
            floor = previous if tag == offset else high_water
        fresh = []
        high_water = floor
        for record in batch.records:
            if record.source_offset <= floor:
                outcome.resent += 1
                continue
            fresh.append(record.cdr)
            high_water = max(high_water, record.source_offset)
        progress.set(key, orjson.dumps([offset, floor, high_water]))
        return fresh

    def _is_duplicate(
        self, cdr: Cdr, offset: int, dedup: KeyValueStore, seen_here: dict[bytes, int]
    ) -> bool:
        key = f"{cdr.customer_id}\x1f{cdr.callid}".encode()
        earlier = seen_here.get(key)
        if earlier is not None and abs(cdr.start - earlier) <= self.dedup_horizon:
            return True
        if earlier is None:
            raw = dedup.get(key)
            if raw is not None:
                start, tag = orjson.loads(raw)
                # Accepted by this very batch before a crash: accept it again.
                if tag != offset and abs(cdr.start - start) <= self.dedup_horizon:
                    return True
        seen_here[key] = cdr.start
        dedup.set(key, orjson.dumps([cdr.start, offset]))
        return False

    @staticmethod
    def _fold_report(report: Report, cdrs: list[Cdr], offset: int, store: KeyValueStore) -> int:
        deltas: dict[bytes, Groups] = {}
        for cdr in cdrs:
            group = report.group(cdr)
            if group is None:
                continue
            delta = report.delta(cdr)
            hour = cdr.hour
            for grain in report.grains:
                key = bucket_key(cdr.customer_id, grain, grain.bucket(hour))
                groups = deltas.get(key)
                if groups is None:
                    groups = deltas[key] = {}
                existing = groups.get(group)
                if existing is None:
                    groups[group] = list(delta)
                else:
                    for i, value in enumerate(delta):
                        existing[i] += value
        written = 0
        for key, delta_groups in deltas.items():
            tag, groups = decode_state(store.get(key))
            if tag >= offset:
                continue  # this batch already reached this key before a crash
            merge_into(groups, delta_groups)
            store.set(key, encode_state(offset, groups))
            written += 1
        return written
