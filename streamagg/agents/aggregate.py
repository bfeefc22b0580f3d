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
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import ConsumerRecord

from streamagg.agents.dead_letters import dead_letter
from streamagg.batches import Batch, is_batch
from streamagg.metrics import Metrics
from streamagg.reports import REPORTS
from streamagg.settings import COLUMN_SUMS_FROM
from streamagg.tables.fold import BatchFold, FoldOutcome
from streamagg.tables.transaction import PartitionTransaction

log = logging.getLogger(__name__)

# Records folded between two turns of the event loop: ~25 ms of CPU on the bench machine.
FOLD_SLICE_CDRS = 1_000


# A message of the batch topic without a streamagg format header was not written by streamagg
# (a producer pointed at the internal topic by mistake): it holds no accepted CDR, so it goes to
# the dead-letter topic instead of stopping the partition for good. A streamagg batch that does
# not decode, or of a newer format, still stops it (alerts.md, StreamaggPartitionStopped).
FOREIGN_REASON = (
    "batch: not a streamagg batch (no streamagg-format header): something other than "
    "streamagg writes to the internal batch topic"
)


@dataclass
class AppliedBatches:
    fold: FoldOutcome
    messages: int
    timestamps_ms: list[int]
    foreign: int = 0  # messages of the batch topic sent to the dead-letter topic


class ReportAgent:
    """The state layer's BatchHandler: decode batch messages, fold them, count what committed."""

    def __init__(
        self,
        metrics: Metrics,
        dedup_horizon_seconds: int,
        dlq_topic: str,
        column_sums_from: int = COLUMN_SUMS_FROM,
    ) -> None:
        self.metrics = metrics
        self.horizon = dedup_horizon_seconds
        self.dlq_topic = dlq_topic
        self.column_sums_from = column_sums_from

    async def apply(
        self, txn: PartitionTransaction, messages: Sequence[ConsumerRecord[Any, Any]]
    ) -> AppliedBatches:
        batches = [message for message in messages if is_batch(message.headers)]
        if len(batches) < len(messages):
            self._set_aside(txn, [m for m in messages if not is_batch(m.headers)])
        records = [
            record
            for message in batches
            for record in Batch.decode(message.value, message.headers).records
        ]
        on_columns = len(records) >= self.column_sums_from
        fold = BatchFold(txn, REPORTS, self.horizon, on_columns)
        for first in range(0, len(records), FOLD_SLICE_CDRS):
            await asyncio.sleep(0)  # (also between the partitions of a cycle)
            fold.add(records[first : first + FOLD_SLICE_CDRS])
        for _report in fold.finish():
            await asyncio.sleep(0)
        outcome = fold.outcome
        timestamps = [r.timestamp_ms for r in records]
        return AppliedBatches(outcome, len(batches), timestamps, len(messages) - len(batches))

    def _set_aside(
        self, txn: PartitionTransaction, foreign: list[ConsumerRecord[Any, Any]]
    ) -> None:
        first = foreign[0]
        log.error(
            "%s[%d]: %d messages without a streamagg format header (the first at offset %d) "
            "sent to the dead-letter topic %s: something other than streamagg writes to this "
            "internal topic",
            first.topic,
            first.partition,
            len(foreign),
            first.offset,
            self.dlq_topic,
        )
        for message in foreign:
            value, headers = dead_letter(
                message, FOREIGN_REASON, f"{message.topic}/{message.partition}"
            )
            txn.send_aside(self.dlq_topic, message.key, value, headers)

    def committed(self, applied: AppliedBatches) -> None:
        metrics = self.metrics
        metrics.count_accepted(applied.fold.accepted)
        if applied.foreign:
            metrics.cdrs.labels(outcome="rejected").inc(applied.foreign)
        if applied.fold.duplicates:
            metrics.cdrs.labels(outcome="duplicate").inc(applied.fold.duplicates)
        metrics.batches_applied.inc(applied.messages)
        metrics.table_keys_written.inc(applied.fold.keys_written)
        now = time.time()
        metrics.processing_latency.observe_many(
            [max(0.0, now - stamp / 1000) for stamp in applied.timestamps_ms]
        )
