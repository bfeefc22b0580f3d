"""A state cycle: each partition's batch messages of one poll, folded into one transaction.

For each active partition the handler (the report agent) and the retention sweeper fill a
transaction, and its commit starts at once: it runs while the cycle folds the next partitions
(tables/commits.py), one commit in flight per partition. A partition whose fold or commit fails
is stopped (the state layer recovers it later); the others go on. Partitions that had no batch
for a while get a retention transaction of their own (``sweep_idle``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from aiokafka import ConsumerRecord, TopicPartition

from streamagg.batches import is_batch
from streamagg.gc_tuning import collector_paused
from streamagg.metrics import Metrics
from streamagg.tables.batch_log import LastBatch
from streamagg.tables.commits import CommitChains
from streamagg.tables.partition import OwnedPartition, Status
from streamagg.tables.retention import RetentionSweeper
from streamagg.tables.transaction import PartitionTransaction

log = logging.getLogger(__name__)

COMMIT_TIMEOUT_S = 30.0
MAINTENANCE_EVERY_S = 30.0

Polled = Mapping[TopicPartition, Sequence[ConsumerRecord[Any, Any]]]


class BatchHandler(Protocol):
    """What a cycle calls for each partition's batch messages."""

    async def apply(
        self, txn: PartitionTransaction, messages: Sequence[ConsumerRecord[Any, Any]]
    ) -> Any:
        """Fold the messages into the transaction; returns what ``committed`` gets. It may give
        the event loop back (queries read committed state only; rebalances wait for the
        cycle's lock)."""

    def committed(self, outcome: Any) -> None:
        """The transaction of ``apply`` is committed (count what it did)."""


class Cycles:
    """Runs the cycles of one state layer; ``stop`` marks a failed partition stopped."""

    def __init__(
        self,
        changelog: str,
        metrics: Metrics,
        handler: BatchHandler,
        sweeper: RetentionSweeper,
        stop: Callable[[OwnedPartition, str], None],
    ) -> None:
        self.changelog = changelog
        self.metrics = metrics
        self.handler = handler
        self.sweeper = sweeper
        self.stop = stop
        self.commits = CommitChains()

    async def run(self, owned: Mapping[int, OwnedPartition], polled: Polled) -> None:
        """Fold each partition's batches into a transaction and start its commit."""
        with collector_paused():  # (gc_tuning.py: a cycle's objects are short-lived)
            for tp, messages in polled.items():
                await self.commits.settled(tp.partition)
                partition = owned.get(tp.partition)
                if partition is not None and partition.status is Status.ACTIVE:
                    await self._fold(partition, tp, messages)

    async def _fold(
        self,
        owned: OwnedPartition,
        tp: TopicPartition,
        messages: Sequence[ConsumerRecord[Any, Any]],
    ) -> None:
        fresh = [m for m in messages if m.offset >= owned.next_offset]
        if len(fresh) < len(messages):
            log.warning(
                "partition %d: %d batch messages before offset %d read again, skipped",
                tp.partition,
                len(messages) - len(fresh),
                owned.next_offset,
            )
            self.metrics.batches_skipped.inc(len(messages) - len(fresh))
        if not fresh:
            return
        txn = owned.transaction(self.changelog)
        try:
            outcome = await self.handler.apply(txn, fresh)
            # Expiry keeps pace with what the batch added, whatever the batch size.
            self.sweeper.sweep(txn, time.time(), self.sweeper.budget + 2 * txn.changes)
            txn.consumed(fresh[-1].offset + 1, _last_batch(fresh))
        except Exception as exc:
            log.exception("partition %d: applying batches failed", tp.partition)
            self.stop(owned, f"applying batch {tp.topic}/{tp.partition}/{fresh[0].offset}: {exc!r}")
            return
        self.commits.start(owned.number, self._commit(owned, txn, outcome, fresh[-1].offset + 1))

    async def _commit(
        self, owned: OwnedPartition, txn: PartitionTransaction, outcome: Any, next_offset: int
    ) -> None:
        try:
            await txn.commit(COMMIT_TIMEOUT_S)
        except BaseException as exc:
            # (cancelled too: the batches it consumed must be read again, after a recovery)
            self.stop(owned, f"its transaction did not commit: {exc!r}")
            if not isinstance(exc, Exception):
                raise
            return
        owned.next_offset = next_offset
        owned.failures = 0
        owned.last_commit = time.monotonic()
        self.metrics.state_transactions.labels(outcome="committed").inc()
        self.handler.committed(outcome)

    async def sweep_idle(self, owned: Mapping[int, OwnedPartition]) -> None:
        """A retention transaction for each partition that had no batch for a while."""
        now = time.monotonic()
        for partition in list(owned.values()):
            if (
                partition.status is not Status.ACTIVE
                or now - partition.last_commit < MAINTENANCE_EVERY_S
            ):
                continue
            await self.commits.settled(partition.number)
            if partition.status is not Status.ACTIVE:
                continue
            partition.last_commit = now
            txn = partition.transaction(self.changelog)
            self.sweeper.sweep(txn, time.time())
            if not txn.changes:  # (nothing expired, and the retention kept did not change)
                continue
            try:
                await txn.commit(COMMIT_TIMEOUT_S)
            except Exception as exc:
                self.stop(partition, f"its retention transaction did not commit: {exc!r}")


def _last_batch(messages: Sequence[ConsumerRecord[Any, Any]]) -> LastBatch | None:
    """The last streamagg batch among ``messages`` (not a foreign message: those may repeat)."""
    for message in reversed(messages):
        if is_batch(message.headers):
            return LastBatch.of(message)
    return None
