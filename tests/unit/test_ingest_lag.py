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

from streamagg.agents.ingest import IngestStage, LagSeriesListener
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


async def test_a_poll_of_a_partition_not_owned_sets_no_series() -> None:
    registry, metrics = fresh()
    stage = IngestStage(Settings(topic=TOPIC), metrics, did_owner=lambda did: "")
    tp = TopicPartition(TOPIC, 3)
    consumer = FakeConsumer(highwater={tp: 8})

    await stage._forward(consumer, FakeProducer(), {tp: [message(tp, 5)]})

    assert lag_series(registry) == set()
    assert consumer.committed == {tp: 6}  # everything else about the poll happened


async def test_a_reassigned_partition_gets_a_series_again_from_its_next_poll() -> None:
    registry, metrics = fresh()
    stage = IngestStage(Settings(topic=TOPIC), metrics, did_owner=lambda did: "")
    tp = TopicPartition(TOPIC, 1)
    consumer = FakeConsumer(highwater={tp: 10})
    listener = stage.lag_listener

    await listener.on_partitions_assigned([tp])
    await stage._forward(consumer, FakeProducer(), {tp: [message(tp, 6)]})
    assert lag(registry, TOPIC, 1) == 3  # end offset 10, next to read 7

    await listener.on_partitions_revoked([tp])
    assert lag(registry, TOPIC, 1) is None

    await listener.on_partitions_assigned([tp])
    await stage._forward(consumer, FakeProducer(), {tp: [message(tp, 9)]})
    assert lag(registry, TOPIC, 1) == 0


async def test_a_poll_finishing_after_its_partition_was_revoked_sets_no_series() -> None:
    """The sends of a poll are awaited; a rebalance can revoke the partition meanwhile (before
    the consumer's new assignment is known)."""
    registry, metrics = fresh()
    stage = IngestStage(Settings(topic=TOPIC), metrics, did_owner=lambda did: "")
    kept, moved = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 2)
    consumer = FakeConsumer(highwater={kept: 4, moved: 50})
    listener = stage.lag_listener
    await listener.on_partitions_assigned([kept, moved])
    metrics.consumer_lag.labels(topic=TOPIC, partition="2").set(40)

    async def rebalance_during_send() -> None:
        await listener.on_partitions_revoked([kept, moved])  # eager: everything is revoked
        await listener.on_partitions_assigned([kept])

    producer = FakeProducer(on_first_send=rebalance_during_send)
    polled = {kept: [message(kept, 3)], moved: [message(moved, 10)]}
    await stage._forward(consumer, producer, polled)

    assert lag(registry, TOPIC, 0) == 0
    assert lag(registry, TOPIC, 2) is None
    assert lag_series(registry) == {(TOPIC, "0")}
    assert listener.owned == {kept}


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
        self.committed: dict[TopicPartition, int] = {}

    def highwater(self, tp: TopicPartition) -> int | None:
        return self._highwater.get(tp)

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.committed.update(offsets)


class FakeProducer:
    def __init__(self, on_first_send: Any = None) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self._on_first_send = on_first_send

    async def send(self, topic: str, value: bytes, **_: Any) -> asyncio.Future[object]:
        if self._on_first_send is not None:
            hook, self._on_first_send = self._on_first_send, None
            await hook()
        self.sent.append((topic, value))
        done: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


def registry_text(registry: CollectorRegistry) -> str:
    from prometheus_client import generate_latest

    return generate_latest(registry).decode()
