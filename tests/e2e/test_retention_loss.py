"""A topic's retention deletes CDRs before a worker read them (an outage longer than the
topic keeps messages, or a size limit crossed during a burst). They cannot be counted, but the
loss must not be silent: the worker counts the deleted messages in
`streamagg_messages_lost_total{topic}` (the StreamaggMessagesLost alert), logs the range, reads on
from the first message the topic still holds, and counts every CDR still there once.

Retention is played by the DeleteRecords admin call, which moves a partition's first offset
exactly where retention would, at a chosen moment. The same holds for the internal batch topic,
between the ingest stage and the state: batches deleted before the state applied them."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from prometheus_client.parser import text_string_to_metric_families

from streamagg.batches import customer_partition
from tests.e2e.conftest import ADMIN_TOKEN
from tests.support.chaos import ingest_children
from tests.support.worker import WorkerProcess, wait_for

pytestmark = pytest.mark.timeout(240)

HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
START = HOUR - timedelta(hours=2)
FIRST = 10  # CDRs read and counted before the outage
DURING = 20  # CDRs written during the outage
DELETED = 12  # of those, deleted by "retention" before the worker reads them


async def produce(bootstrap: str, topic: str, tag: str, count: int) -> None:
    """``count`` CDRs of customer 7 into partition 0, in order."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for i in range(count):
            value = {"callid": f"{tag}-{i}", "dt": START.isoformat(), "customer_id": "7"}
            await producer.send_and_wait(
                topic, orjson.dumps(value | {"sip_code": 486}), partition=0
            )
    finally:
        await producer.stop()


async def delete_before(bootstrap: str, topic: str, offset: int, partition: int = 0) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.delete_records({TopicPartition(topic, partition): RecordsToDelete(offset)})
    finally:
        await admin.close()


async def end_offset(bootstrap: str, tp: TopicPartition) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        return (await consumer.end_offsets([tp]))[tp]
    finally:
        await consumer.stop()


async def forwarded(bootstrap: str, group: str, tp: TopicPartition) -> int:
    """The input offset up to which the ingest stage has committed its batches."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group, partitions=[tp])
        return offsets[tp].offset if tp in offsets else -1
    finally:
        await admin.close()


def calls(worker: WorkerProcess) -> int:
    window = {
        "from": f"{HOUR - timedelta(days=1):%Y-%m-%dT%H:%M:%SZ}",
        "to": f"{HOUR:%Y-%m-%dT%H:%M:%SZ}",
    }
    response = worker.get("/api/v1/customers/7/reports/tech-prefix", ADMIN_TOKEN, **window)
    return sum(r["total"] for r in response.json()["rows"]) if response.status_code == 200 else -1


def lost(worker: WorkerProcess) -> dict[str, float]:
    """The topics with messages lost (series at 0 left out: the batch topic's shows from the
    state's first recovery on)."""
    return {
        sample.labels["topic"]: sample.value
        for family in text_string_to_metric_families(worker.get("/metrics").text)
        for sample in family.samples
        if sample.name == "streamagg_messages_lost_total" and sample.value
    }


def settles_at(worker: WorkerProcess, expected: int) -> None:
    wait_for(lambda: calls(worker) == expected, 90, f"{expected} calls counted")
    time.sleep(1.5)  # anything read twice would show by now
    assert calls(worker) == expected


async def test_cdrs_deleted_while_the_worker_was_stopped_are_counted_lost_the_rest_once(
    worker_factory: Callable[..., WorkerProcess], kafka_bootstrap: str
) -> None:
    worker = worker_factory(STREAMAGG_INGEST_MODE="inline")
    worker.wait_ready()
    topic = worker.env["STREAMAGG_TOPIC"]
    await produce(kafka_bootstrap, topic, "before", FIRST)
    settles_at(worker, FIRST)
    assert lost(worker) == {}

    worker.stop()
    await produce(kafka_bootstrap, topic, "during", DURING)
    await delete_before(kafka_bootstrap, topic, FIRST + DELETED)
    worker.start()
    worker.wait_ready()
    settles_at(worker, FIRST + DURING - DELETED)
    assert lost(worker) == {topic: DELETED}
    assert f"{topic}[0] messages [{FIRST}, {FIRST + DELETED}) were deleted" in worker.tail(400)


async def test_cdrs_deleted_while_the_ingest_child_was_frozen_are_counted_lost_the_rest_once(
    worker_factory: Callable[..., WorkerProcess], kafka_bootstrap: str
) -> None:
    """Frozen for less than its session: it keeps its partitions, and its next fetch finds its
    position deleted (the path a running consumer takes, not the one of a new assignment)."""
    worker = worker_factory(STREAMAGG_INGEST_MODE="process")
    worker.wait_ready()
    topic = worker.env["STREAMAGG_TOPIC"]
    await produce(kafka_bootstrap, topic, "before", FIRST)
    settles_at(worker, FIRST)
    assert worker.process is not None
    (child,) = ingest_children(worker.process.pid)

    os.kill(child, signal.SIGSTOP)
    try:
        await produce(kafka_bootstrap, topic, "during", DURING)
        await delete_before(kafka_bootstrap, topic, FIRST + DURING)
    finally:
        os.kill(child, signal.SIGCONT)
    await produce(kafka_bootstrap, topic, "after", DURING - DELETED)
    settles_at(worker, FIRST + DURING - DELETED)
    wait_for(lambda: lost(worker) == {topic: DURING}, 10, "the loss on the parent's /metrics")
    assert ingest_children(worker.process.pid) == [child]  # (the same child: it never restarted)
    assert f"{topic}[0] messages [{FIRST}, {FIRST + DURING}) were deleted" in worker.tail(400)


async def test_batches_deleted_before_the_state_applied_them_are_counted_lost_the_rest_once(
    worker_factory: Callable[..., WorkerProcess], kafka_bootstrap: str
) -> None:
    """The worker's main process (the state) frozen while its ingest child forwards CDRs, and
    the batch topic's retention deletes those batches before the state reads them: its next
    fetch finds its position deleted. The loss is counted on the batch topic and logged; later
    batches are applied once."""
    worker = worker_factory(STREAMAGG_INGEST_MODE="process")
    worker.wait_ready()
    topic = worker.env["STREAMAGG_TOPIC"]
    app_id = worker.env["STREAMAGG_APP_ID"]
    batches = TopicPartition(
        f"{app_id}-cdr-batches",
        customer_partition("7", int(worker.env["STREAMAGG_PARTITIONS"])),
    )
    await produce(kafka_bootstrap, topic, "before", FIRST)
    settles_at(worker, FIRST)
    applied = await end_offset(kafka_bootstrap, batches)
    assert worker.process is not None

    os.kill(worker.process.pid, signal.SIGSTOP)
    try:
        # (its fetch in flight, empty, returns within the fetch wait: no batch reaches it)
        time.sleep(1.5)
        await produce(kafka_bootstrap, topic, "during", DURING)
        input_tp = TopicPartition(topic, 0)
        for _ in range(100):  # the child forwards and commits the batches
            if await forwarded(kafka_bootstrap, f"{app_id}-ingest", input_tp) == FIRST + DURING:
                break
            time.sleep(0.05)
        end = await end_offset(kafka_bootstrap, batches)
        await delete_before(kafka_bootstrap, batches.topic, end, batches.partition)
    finally:
        os.kill(worker.process.pid, signal.SIGCONT)
    assert end > applied
    await produce(kafka_bootstrap, topic, "after", DURING - DELETED)
    settles_at(worker, FIRST + DURING - DELETED)
    wait_for(lambda: batches.topic in lost(worker), 10, "the loss on /metrics")
    assert lost(worker) == {batches.topic: end - applied}
    assert f"partition {batches.partition}: batches [{applied}, {end}) were deleted" in worker.tail(
        400
    )
