"""The input partitions the ingest stage owns: their lag series, their transactional
producers and the offsets they are read from (agents/ingest.py runs the stage)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from prometheus_client import Gauge

from streamagg.kafka_clients import LagSeries, fencing_producer, stop_quietly

if TYPE_CHECKING:
    from streamagg.agents.ingest import IngestStage

log = logging.getLogger(__name__)


class LagSeriesListener(ConsumerRebalanceListener):
    """Keeps the lag series to the partitions this consumer owns.

    The lag gauge is set only for partitions this stage polls; a series left behind for a
    partition now read elsewhere would keep its last value forever (and an alert firing). A
    rebalance revokes partitions while a poll may still be forwarded, so the stage sets a series
    only for a partition in ``owned``.
    """

    def __init__(self, lag: Gauge) -> None:
        self.lag = LagSeries(lag)
        self.owned: set[TopicPartition] = set()

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        for tp in revoked:
            self.owned.discard(tp)
            self.lag.forget(tp.topic, tp.partition)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        # No series yet: one appears with the first poll of the partition.
        self.owned.update(assigned)


class TransactionalPartitions(LagSeriesListener):
    """One fencing transactional producer per input partition this stage owns.

    On assignment, the partition's producer is started first (which aborts what an earlier
    owner left open and fences it), and only then is the committed offset read and the
    partition resumed there: whatever the earlier owner committed is seen, nothing twice.
    """

    def __init__(self, stage: IngestStage, consumer: AIOKafkaConsumer) -> None:
        super().__init__(stage.metrics.consumer_lag)
        self.stage = stage
        self.consumer = consumer
        self.producers: dict[TopicPartition, AIOKafkaProducer] = {}
        # The next input offset of each owned partition: its committed offset. Records read
        # past it but not forwarded (a poll dropped after a rebalance) are read again from here.
        self.next_offsets: dict[TopicPartition, int] = {}
        self.failure: BaseException | None = None

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        async with self.stage.lock:  # wait for the transactions in flight
            self.stage.epoch += 1
            await super().on_partitions_revoked(revoked)
            await self.close(list(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        tps = list(assigned)
        self.consumer.pause(*tps)
        self.stage.epoch += 1
        try:
            for tp in tps:
                transactional_id = f"{self.stage.settings.app_id}-ingest-{tp.topic}-{tp.partition}"
                producer = await fencing_producer(self.stage.settings, transactional_id)
                self.producers[tp] = producer  # (closed with the others should this fail)
                committed = await self.consumer.committed(tp)
                first = (await self.consumer.beginning_offsets([tp]))[tp]
                if committed is None:  # never committed: from the start of what is kept
                    committed = first
                elif committed < first:
                    self.stage.note_deleted(tp, committed, first)
                    committed = first
                # (seek_to_beginning would wait for the fetcher, which waits for this listener)
                self.consumer.seek(tp, committed)
                self.next_offsets[tp] = committed
        except Exception as exc:  # aiokafka would only log it: make the stage restart
            self.failure = exc
            return
        await super().on_partitions_assigned(tps)
        self.consumer.resume(*tps)

    async def skip_deleted(self, positions: dict[TopicPartition, int]) -> None:
        """Fetches at these positions were out of their partitions' range. Every owned
        partition has been rewound to its committed offset: those from which the topic's
        retention deleted records read on from their first offset, the loss counted; a position
        past the end (a truncated or recreated log) reads the partition from its start."""
        owned = [tp for tp in positions if tp in self.next_offsets]
        firsts = await self.consumer.beginning_offsets(owned) if owned else {}
        for tp, first in firsts.items():
            committed = self.next_offsets[tp]
            if committed < first:
                self.stage.note_deleted(tp, committed, first)
            else:
                log.warning(
                    "ingest: %s[%d] offset %d is past the partition's end; reading it from %d",
                    tp.topic,
                    tp.partition,
                    positions[tp],
                    first,
                )
            self.consumer.seek(tp, first)
            self.next_offsets[tp] = first

    def rewind(self, tps: Iterable[TopicPartition]) -> None:
        """Read these partitions again from their committed offsets: their last poll was
        dropped, so the consumer's position is past records nothing forwarded."""
        for tp in tps:
            if tp in self.next_offsets:  # (the others are still being sought by the listener)
                self.consumer.seek(tp, self.next_offsets[tp])

    async def close(self, tps: Iterable[TopicPartition] | None = None) -> None:
        for tp in list(self.producers if tps is None else tps):
            self.next_offsets.pop(tp, None)
            producer = self.producers.pop(tp, None)
            if producer is not None:
                await stop_quietly(producer)
