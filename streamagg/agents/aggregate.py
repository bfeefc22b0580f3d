"""The report agent: folds each partition's CDR batches into the transaction the state gives it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import ConsumerRecord

from streamagg.batches import Batch
from streamagg.metrics import Metrics
from streamagg.reports import REPORTS
from streamagg.tables.fold import FoldOutcome, fold_records
from streamagg.tables.transaction import PartitionTransaction


@dataclass
class AppliedBatches:
    fold: FoldOutcome
    messages: int
    timestamps_ms: list[int]


class ReportAgent:
    """The state layer's BatchHandler: decode batch messages, fold them, count what committed."""

    def __init__(self, metrics: Metrics, dedup_horizon_seconds: int) -> None:
        self.metrics = metrics
        self.horizon = dedup_horizon_seconds

    def apply(
        self, txn: PartitionTransaction, messages: Sequence[ConsumerRecord[Any, Any]]
    ) -> AppliedBatches:
        records = [
            record
            for message in messages
            for record in Batch.decode(message.value, message.headers).records
        ]
        outcome = fold_records(txn, records, REPORTS, self.horizon)
        return AppliedBatches(outcome, len(messages), [r.timestamp_ms for r in records])

    def committed(self, applied: AppliedBatches) -> None:
        metrics = self.metrics
        metrics.count_accepted(applied.fold.accepted)
        if applied.fold.duplicates:
            metrics.cdrs.labels(outcome="duplicate").inc(applied.fold.duplicates)
        metrics.batches_applied.inc(applied.messages)
        metrics.table_keys_written.inc(applied.fold.keys_written)
        now = time.time()
        metrics.processing_latency.observe_many(
            [max(0.0, now - stamp / 1000) for stamp in applied.timestamps_ms]
        )
