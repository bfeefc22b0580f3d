"""One batch partition this worker owns: its local copy, its fencing producer, its status.

A partition is *recovering* (fencing earlier writers, reading its changelog), *active*
(applying batches, answering queries) or *stopped* (something failed; retried after a backoff
by recovering again). Recovery is the one way back from anything: fence, catch up with the
changelog, continue at the batch offset the state itself records.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import IllegalStateError, NoOffsetForPartitionError, OffsetOutOfRangeError
from prometheus_client import Counter

from streamagg.kafka_clients import committed_reader, fencing_producer, stop_quietly
from streamagg.settings import Settings
from streamagg.tables.batch_log import LastBatch, continue_at
from streamagg.tables.changelog import catch_up
from streamagg.tables.keys import LAST_BATCH, NEXT_OFFSET, decode_int
from streamagg.tables.store import PartitionStore
from streamagg.tables.transaction import PartitionTransaction

log = logging.getLogger(__name__)

FENCE_TIMEOUT_S = 60.0
MAX_BACKOFF_S = 60.0


class Status(enum.Enum):
    RECOVERING = "recovering"
    ACTIVE = "active"
    STOPPED = "stopped"


@dataclass(eq=False)
class OwnedPartition:
    number: int
    store: PartitionStore | None = None  # opened by recovery
    status: Status = Status.RECOVERING
    reason: str = "recovering its state from the changelog"
    cause: str = ""  # of the last failure
    producer: AIOKafkaProducer | None = None
    next_offset: int = 0  # next batch offset to apply
    failures: int = 0
    retry_at: float = 0.0
    last_commit: float = field(default_factory=time.monotonic)
    recovery: asyncio.Task[None] | None = None
    recovered: bool = False  # recovery done; the stage seeks and resumes the partition

    def transaction(self, changelog: str) -> PartitionTransaction:
        assert self.producer is not None and self.store is not None
        return PartitionTransaction(self.number, self.store, self.producer, changelog)

    def stop(self, reason: str) -> None:
        """Mark the partition stopped; it is recovered again after a growing backoff."""
        self.failures += 1
        backoff = min(MAX_BACKOFF_S, 2.0**self.failures)
        self.status = Status.STOPPED
        self.cause = reason
        self.reason = f"stopped ({reason}); retrying in {backoff:.0f} s"
        self.retry_at = time.monotonic() + backoff
        self.recovered = False
        log.error("partition %d %s", self.number, self.reason)

    async def release(self) -> None:
        """Give the partition up: no recovery running, no producer left."""
        if self.recovery is not None and not self.recovery.done():
            self.recovery.cancel()
            await asyncio.gather(self.recovery, return_exceptions=True)
        await self.drop_producer()

    async def drop_producer(self) -> None:
        producer, self.producer = self.producer, None
        if producer is not None:
            await stop_quietly(producer)


async def recover(
    partition: OwnedPartition,
    settings: Settings,
    changelog: TopicPartition,
    batches: TopicPartition,
    lost: Counter,
) -> int:
    """Fence every earlier writer of the partition, bring the local copy to the end of the
    changelog and read from it where batches continue; returns the changelog records read."""
    await partition.drop_producer()
    transactional_id = f"{settings.app_id}-state-{partition.number}"
    partition.producer = await asyncio.wait_for(
        fencing_producer(settings, transactional_id), FENCE_TIMEOUT_S
    )
    # From here no earlier writer can commit to the changelog: its end is final until we write.
    store = partition.store
    assert store is not None
    reader = committed_reader(settings)
    await reader.start()
    try:
        end = (await reader.end_offsets([changelog]))[changelog]
        read = await catch_up(store, reader, changelog, end)
        next_offset = decode_int(store.get(NEXT_OFFSET), 0)
        last = LastBatch.decode(store.get(LAST_BATCH))
        position = await continue_at(reader, batches, next_offset, last, settings.unknown_batch_log)
        next_offset = position.next_offset
        first = (await reader.beginning_offsets([batches]))[batches]
    finally:
        await stop_quietly(reader)
    if position.moved:
        txn = partition.transaction(changelog.topic)
        txn.consumed(next_offset, position.last)
        if position.last is None:
            txn.delete(LAST_BATCH)  # (nothing to compare until a batch of this log is applied)
        await txn.commit(FENCE_TIMEOUT_S)
    if next_offset < first:
        note_deleted(partition.number, next_offset, first, lost)
        next_offset = first
    partition.next_offset = next_offset
    return read


def note_deleted(number: int, offset: int, first: int, lost: Counter) -> None:
    """Batch partition ``number``'s offsets [offset, first) were deleted before the state
    applied them."""
    log.error(
        "partition %d: batches [%d, %d) were deleted by the batch topic's retention before "
        "they were applied; their CDRs are missing from the reports",
        number,
        offset,
        first,
    )
    lost.inc(first - offset)


async def out_of_range(
    consumer: AIOKafkaConsumer,
    owned: Mapping[int, OwnedPartition],
    exc: OffsetOutOfRangeError | NoOffsetForPartitionError,
    lost: Counter,
    stop: Callable[[OwnedPartition, str], None],
) -> None:
    """The state's consumer resets no position by itself (auto_offset_reset=none), so that
    batches the topic's retention deleted before they were applied are counted, not skipped in
    silence. This gives the partitions of ``exc`` a position again."""
    if isinstance(exc, NoOffsetForPartitionError):
        # Looked up before the assignment's listener gave it a position: paused, sought there.
        with contextlib.suppress(IllegalStateError):
            consumer.seek(exc.args[0], 0)
        return
    for tp, position in exc.args[0].items():
        partition = owned.get(tp.partition)
        if partition is None or partition.status is not Status.ACTIVE:
            continue  # (sought to the state's offset as it resumes; its recovery counts)
        first = (await consumer.beginning_offsets([tp]))[tp]
        if position < first:
            # The batch topic's retention deleted batches not yet applied (the state far
            # behind, or a size limit crossed): counted, and read on from the first batch.
            note_deleted(tp.partition, position, first, lost)
            consumer.seek(tp, first)
        else:
            # Past the end: the log was recreated or cut. Recovery compares it with the last
            # batch the state applied (batch_log.py) before anything more is applied.
            stop(partition, f"batch offset {position} is past the end of {tp.topic}/{tp.partition}")
