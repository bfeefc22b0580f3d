"""The consumer-lag series of the ingest stage follow its partition assignment.

A series for a partition a rebalance moved to another worker would keep its last value forever
(and keep a lag alert firing): the rebalance listener removes it, and a poll finishing after the
revocation does not bring it back.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiokafka import ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from prometheus_client import CollectorRegistry

from streamagg.agents.ingest import IngestStage
from streamagg.agents.ingest_partitions import LagSeriesListener, TransactionalPartitions
from streamagg.kafka_clients import LagSeries
from streamagg.metrics import Metrics, create_metrics
from streamagg.settings import Settings

LAG = "streamagg_consumer_lag_messages"
TOPIC = "cdr-events"


def lag(registry: CollectorRegistry, topic: str, partition: int) -> float | None:
    return registry.get_sample_value(LAG, {"topic": topic, "partition": str(partition)})


def lag_series(registry: CollectorRegistry) -> set[tuple[str, str]]:
    return {
        (sample.labels["topic"], sample.labels["partition"])
        for family in registry.collect()
        if family.name == LAG
        for sample in family.samples
    }


def fresh() -> tuple[CollectorRegistry, Metrics]:
    registry = CollectorRegistry()
    return registry, create_metrics(registry)


async def test_revoked_partitions_lose_their_series_and_others_keep_theirs() -> None:
    registry, metrics = fresh()
    for partition, value in ((0, 5), (1, 0), (2, 17)):
        metrics.consumer_lag.labels(topic=TOPIC, partition=str(partition)).set(value)
    metrics.consumer_lag.labels(topic="other-topic", partition="1").set(3)
    listener = LagSeriesListener(metrics.consumer_lag)
    assert isinstance(listener, ConsumerRebalanceListener)

    await listener.on_partitions_revoked([TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)])

    assert lag(registry, TOPIC, 0) is None
    assert lag(registry, TOPIC, 1) is None
    assert lag(registry, TOPIC, 2) == 17
    assert lag(registry, "other-topic", 1) == 3
    assert lag_series(registry) == {(TOPIC, "2"), ("other-topic", "1")}
    exposition = registry_text(registry)
    assert f'{LAG}{{partition="0",topic="{TOPIC}"}}' not in exposition
    assert f'{LAG}{{partition="2",topic="{TOPIC}"}} 17.0' in exposition


async def test_revoking_a_partition_never_polled_and_revoking_twice_are_harmless() -> None:
    registry, metrics = fresh()
    metrics.consumer_lag.labels(topic=TOPIC, partition="3").set(1)
    listener = LagSeriesListener(metrics.consumer_lag)

    await listener.on_partitions_revoked([TopicPartition(TOPIC, 7)])
    await listener.on_partitions_revoked([TopicPartition(TOPIC, 3)])
    await listener.on_partitions_revoked([TopicPartition(TOPIC, 3)])
    await listener.on_partitions_revoked([])

    assert lag_series(registry) == set()


async def test_assignment_creates_no_series_until_the_partition_is_polled() -> None:
    registry, metrics = fresh()
    listener = LagSeriesListener(metrics.consumer_lag)
    assigned = {TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)}

    await listener.on_partitions_assigned(assigned)

    assert lag_series(registry) == set()
    assert listener.owned == assigned


def transactional(stage: IngestStage, consumer: FakeConsumer, *tps: TopicPartition) -> Any:
    """The stage's partitions with a fake transactional producer for each of tps."""
    partitions = TransactionalPartitions(stage, consumer)  # type: ignore[arg-type]
    for tp in tps:
        partitions.producers[tp] = FakeProducer()
        partitions.next_offsets[tp] = 0
    stage.lag_listener = partitions
    return partitions


async def test_a_poll_of_a_partition_not_owned_sets_no_series() -> None:
    registry, metrics = fresh()
    stage = IngestStage(Settings(topic=TOPIC), metrics, did_owner=lambda did: "")
    tp = TopicPartition(TOPIC, 3)
    consumer = FakeConsumer(highwater={tp: 8})
    partitions = transactional(stage, consumer, tp)

    await stage._forward(consumer, partitions, {tp: [message(tp, 5)]})  # type: ignore[arg-type]

    assert lag_series(registry) == set()
    # Everything else about the poll happened, in one committed transaction.
    assert partitions.producers[tp].log == ["begin", "send", "offsets {6}", "commit"]


async def test_a_reassigned_partition_gets_a_series_again_from_its_next_poll() -> None:
    registry, metrics = fresh()
    stage = IngestStage(Settings(topic=TOPIC), metrics, did_owner=lambda did: "")
    tp = TopicPartition(TOPIC, 1)
    consumer = FakeConsumer(highwater={tp: 10})
    partitions = transactional(stage, consumer, tp)

    await LagSeriesListener.on_partitions_assigned(partitions, [tp])
    await stage._forward(consumer, partitions, {tp: [message(tp, 6)]})  # type: ignore[arg-type]
    assert lag(registry, TOPIC, 1) == 3  # end offset 10, next to read 7

    await partitions.on_partitions_revoked([tp])
    assert lag(registry, TOPIC, 1) is None
    assert tp not in partitions.producers

    partitions.producers[tp] = FakeProducer()
    partitions.next_offsets[tp] = 7
    await LagSeriesListener.on_partitions_assigned(partitions, [tp])
    await stage._forward(consumer, partitions, {tp: [message(tp, 9)]})  # type: ignore[arg-type]
    assert lag(registry, TOPIC, 1) == 0


async def test_a_revocation_waits_for_the_transactions_in_flight() -> None:
    """A rebalance that revokes a partition while its poll is being forwarded waits until the
    poll's transaction is over, and then removes the series: none is left behind."""
    registry, metrics = fresh()
    stage = IngestStage(Settings(topic=TOPIC), metrics, did_owner=lambda did: "")
    kept, moved = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 2)
    consumer = FakeConsumer(highwater={kept: 4, moved: 50})
    partitions = transactional(stage, consumer, kept, moved)
    await LagSeriesListener.on_partitions_assigned(partitions, [kept, moved])
    release = asyncio.Event()
    partitions.producers[moved].hold_commit = release
    order: list[str] = []

    async def forward() -> None:
        async with stage.lock:
            polled = {kept: [message(kept, 3)], moved: [message(moved, 10)]}
            await stage._forward(consumer, partitions, polled)  # type: ignore[arg-type]
            order.append("forwarded")

    async def rebalance() -> None:
        await partitions.on_partitions_revoked([kept, moved])  # eager: everything is revoked
        order.append("revoked")
        await LagSeriesListener.on_partitions_assigned(partitions, [kept])

    forwarding = asyncio.create_task(forward())
    await asyncio.sleep(0.05)
    rebalancing = asyncio.create_task(rebalance())
    await asyncio.sleep(0.05)
    assert order == [], "the revocation must wait for the transaction in flight"
    release.set()
    await asyncio.gather(forwarding, rebalancing)

    assert order == ["forwarded", "revoked"]
    assert lag_series(registry) == set()
    assert partitions.owned == {kept}
    assert partitions.producers == {} and partitions.next_offsets == {}


# --- fakes of the two aiokafka clients, as far as IngestStage._forward uses them ---


def message(tp: TopicPartition, offset: int) -> ConsumerRecord:
    value = orjson.dumps(
        {"callid": f"c{offset}", "dt": "2020-01-01T00:00:00Z", "customer_id": "1"}
    )  # older than the retention: a reject, so the DLQ path runs too
    return ConsumerRecord(
        topic=tp.topic,
        partition=tp.partition,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=None,
        value=value,
        checksum=None,
        serialized_key_size=-1,
        serialized_value_size=len(value),
        headers=(),
    )


class FakeConsumer:
    def __init__(self, highwater: dict[TopicPartition, int]):
        self._highwater = highwater
        self.sought: list[tuple[TopicPartition, int]] = []

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.sought.append((tp, offset))

    def highwater(self, tp: TopicPartition) -> int | None:
        return self._highwater.get(tp)


class FakeProducer:
    """A transactional producer that logs its calls; ``hold_commit`` delays the commit."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.hold_commit: asyncio.Event | None = None

    async def begin_transaction(self) -> None:
        self.log.append("begin")

    async def send(self, topic: str, value: bytes, **_: Any) -> asyncio.Future[object]:
        self.log.append("send")
        done: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def send_offsets_to_transaction(self, offsets: dict[Any, int], group: str) -> None:
        self.log.append(f"offsets {set(offsets.values())}")

    async def commit_transaction(self) -> None:
        if self.hold_commit is not None:
            await self.hold_commit.wait()
        self.log.append("commit")

    async def abort_transaction(self) -> None:
        self.log.append("abort")

    async def stop(self) -> None:
        self.log.append("stop")


def registry_text(registry: CollectorRegistry) -> str:
    from prometheus_client import generate_latest

    return generate_latest(registry).decode()


async def test_a_dropped_poll_is_read_again_from_the_committed_offsets() -> None:
    """A poll that spans a rebalance is dropped; the consumer's position is then past records
    nothing forwarded (chaos seed 5 lost 713 CDRs this way), so every owned partition of the
    poll goes back to its committed offset. A partition the listener is still seeking is left
    to it."""
    _, metrics = fresh()
    stage = IngestStage(Settings(topic=TOPIC), metrics, did_owner=lambda did: "")
    owned, arriving = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 2)
    consumer = FakeConsumer(highwater={})
    partitions = transactional(stage, consumer, owned)
    partitions.next_offsets[owned] = 826
    partitions.producers[arriving] = FakeProducer()  # fenced, offset not read yet

    partitions.rewind([owned, arriving])

    assert consumer.sought == [(owned, 826)]


class _Highwater:
    def __init__(self, marks: dict[TopicPartition, int]) -> None:
        self.marks = marks

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.marks.get(tp)


def test_lag_series_show_only_mirrors_another_process_and_drops_what_it_no_longer_has() -> None:
    """The parent shows the ingest child's lag: a partition the child lost must go here too."""
    registry = CollectorRegistry()
    series = LagSeries(create_metrics(registry).consumer_lag)
    series.show_only({(TOPIC, "0"): 5.0, (TOPIC, "1"): 7.0})
    series.show_only({(TOPIC, "1"): 3.0})
    assert lag_series(registry) == {(TOPIC, "1")}
    assert lag(registry, TOPIC, 1) == 3.0
    series.forget(TOPIC, 9)  # never shown: nothing to do, no error


def test_lag_series_from_a_position_waits_for_the_high_watermark_and_is_never_negative() -> None:
    registry = CollectorRegistry()
    series = LagSeries(create_metrics(registry).consumer_lag)
    known, unknown = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
    consumer: Any = _Highwater({known: 100})
    series.show_position(consumer, unknown, 10)
    series.show_position(consumer, known, 60)
    assert lag_series(registry) == {(TOPIC, "0")}
    assert lag(registry, TOPIC, 0) == 40
    series.show_position(consumer, known, 101)  # (a transaction marker past the last record)
    assert lag(registry, TOPIC, 0) == 0
