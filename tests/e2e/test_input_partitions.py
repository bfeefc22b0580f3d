"""An operator adds partitions to the input topic while workers run (the softswitch side
scales its producers): CDRs written to the new partitions are read from their first message,
soon, and count once — none are skipped because the group first saw the partition late."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions

from streamagg.kafka_clients import INPUT_METADATA_MAX_AGE_MS
from tests.e2e.conftest import ADMIN_TOKEN
from tests.support.worker import WorkerProcess, wait_for

pytestmark = pytest.mark.timeout(240)

HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
START = HOUR - timedelta(hours=2)
PARTITIONS = 4  # the input topic's at first (tests/support/worker.py)
ADDED = 2
PER_PARTITION = 25


def cdr(callid: str, sip_code: int) -> bytes:
    return orjson.dumps(
        {
            "callid": callid,
            "dt": START.isoformat(),
            "customer_id": "7",
            "tech_prefix": "9#",
            "sip_code": sip_code,
            "duration": 30 if sip_code == 200 else 0,
        }
    )


async def produce_to(bootstrap: str, topic: str, partitions: range, tag: str) -> int:
    """PER_PARTITION CDRs into each partition, every third one answered; returns how many."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for partition in partitions:
            for i in range(PER_PARTITION):
                value = cdr(f"{tag}-{partition}-{i}", 200 if i % 3 == 0 else 486)
                await producer.send_and_wait(topic, value, partition=partition)
    finally:
        await producer.stop()
    return len(partitions) * PER_PARTITION


def totals(worker: WorkerProcess) -> tuple[int, int]:
    response = worker.get(
        "/api/v1/customers/7/reports/tech-prefix",
        ADMIN_TOKEN,
        **{
            "from": f"{HOUR - timedelta(days=1):%Y-%m-%dT%H:%M:%SZ}",
            "to": f"{HOUR:%Y-%m-%dT%H:%M:%SZ}",
        },
    )
    if response.status_code != 200:
        return (-1, -1)
    rows = response.json()["rows"]
    return (sum(r["total"] for r in rows), sum(r["answered_calls"] for r in rows))


@pytest.mark.parametrize("ingest_mode", ["inline", "process"])
async def test_partitions_added_to_the_input_topic_are_read_from_their_first_cdr(
    worker_factory: Callable[..., WorkerProcess], kafka_bootstrap: str, ingest_mode: str
) -> None:
    worker = worker_factory(STREAMAGG_INGEST_MODE=ingest_mode)
    worker.wait_ready()
    topic = worker.env["STREAMAGG_TOPIC"]
    sent = await produce_to(kafka_bootstrap, topic, range(PARTITIONS), "before")
    wait_for(lambda: totals(worker)[0] == sent, 60, "the first CDRs to be counted")

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_partitions({topic: NewPartitions(total_count=PARTITIONS + ADDED)})
    finally:
        await admin.close()
    # Written at once, before any worker can have noticed the new partitions.
    sent += await produce_to(kafka_bootstrap, topic, range(PARTITIONS + ADDED), "after")
    answered = sum(1 for i in range(PER_PARTITION) if i % 3 == 0) * (2 * PARTITIONS + ADDED)

    seen = INPUT_METADATA_MAX_AGE_MS / 1000
    wait_for(lambda: totals(worker) == (sent, answered), seen + 60, "the new partitions' CDRs")
    time.sleep(1.5)  # anything counted twice would show by now
    assert totals(worker) == (sent, answered)
