"""The report agent: folds each partition's CDR batches into the transaction the state gives it.

A cycle of the state layer can carry a large backlog (a partition's transaction may hold tens of
thousands of CDRs after a restart or a traffic peak). The agent feeds the transaction's fold in
slices of FOLD_SLICE_CDRS records and writes its sums report by report, giving the event loop
back between the steps, so that queries, /metrics, /readyz and the Kafka clients' heartbeats
are served while a backlog is folded (BENCHMARKS.md: /healthz waited up to 6.7 s behind one
cycle before). The slices sum in memory: the transaction writes what one fold would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import ConsumerRecord

from streamagg.batches import Batch
from streamagg.metrics import Metrics
from streamagg.reports import REPORTS
from streamagg.tables.fold import BatchFold, FoldOutcome
from streamagg.tables.transaction import PartitionTransaction

# Records folded between two turns of the event loop: ~25 ms of CPU on the bench machine.
FOLD_SLICE_CDRS = 1_000


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

    async def apply(
        self, txn: PartitionTransaction, messages: Sequence[ConsumerRecord[Any, Any]]
    ) -> AppliedBatches:
        records = [
            record
            for message in messages
            for record in Batch.decode(message.value, message.headers).records
        ]
        fold = BatchFold(txn, REPORTS, self.horizon)
        for first in range(0, len(records), FOLD_SLICE_CDRS):
            await asyncio.sleep(0)  # (also between the partitions of a cycle)
            fold.add(records[first : first + FOLD_SLICE_CDRS])
        for _report in fold.finish():
            await asyncio.sleep(0)
        outcome = fold.outcome
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
