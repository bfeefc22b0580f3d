"""The real broker does what the pipeline relies on: topics, groups, compaction, transactions."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaConnectionError

KAFKA_LOCAL = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "kafka-local"
# Generous bound for any single broker round trip; tests never assert on durations.
STEP_TIMEOUT_S = 30


@pytest.fixture
async def admin(kafka_bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    """An aiokafka admin client connected to the session's broker."""
    client = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await client.start()
    try:
        yield client
    finally:
        await client.close()


async def create_topics(admin: AIOKafkaAdminClient, *topics: NewTopic) -> None:
    """Create topics and wait until the broker's metadata shows every partition with a leader."""
    response = await admin.create_topics(list(topics))
    errors = [e for e in response.to_object()["topic_errors"] if e["error_code"] != 0]
    assert not errors, errors
    names = [topic.name for topic in topics]
    async with asyncio.timeout(STEP_TIMEOUT_S):
        while not all(
            topic["error_code"] == 0
            and topic["partitions"]
            and all(p["leader"] >= 0 for p in topic["partitions"])
            for topic in await admin.describe_topics(names)
        ):
            await asyncio.sleep(0.1)


async def produce(bootstrap: str, topic: str, values: list[bytes], **config: object) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **config)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=value)
    finally:
        await producer.stop()


async def consume(consumer: AIOKafkaConsumer, count: int) -> list[bytes]:
    """Read exactly `count` values (or fail after STEP_TIMEOUT_S)."""
    values: list[bytes] = []
    async with asyncio.timeout(STEP_TIMEOUT_S):
        while len(values) < count:
            batches = await consumer.getmany(timeout_ms=500, max_records=count - len(values))
            for records in batches.values():
                values.extend(record.value for record in records)
    return values


async def test_produce_consume_round_trip(kafka_bootstrap: str, admin, unique_name: str) -> None:
    await create_topics(admin, NewTopic(unique_name, 1, 1))
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        sent = await producer.send_and_wait(
            unique_name, b'{"call_id": "c1"}', key=b"acct-7", headers=[("source", b"test")]
        )
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        unique_name, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), STEP_TIMEOUT_S)
    finally:
        await consumer.stop()

    assert (record.offset, record.partition) == (sent.offset, sent.partition)
    assert record.key == b"acct-7"
    assert record.value == b'{"call_id": "c1"}'
    assert list(record.headers) == [("source", b"test")]


async def test_admin_creates_partitioned_and_compacted_topics(admin, unique_name: str) -> None:
    partitioned, compacted = f"{unique_name}-p", f"{unique_name}-c"
    await create_topics(
        admin,
        NewTopic(partitioned, num_partitions=6, replication_factor=1),
        NewTopic(compacted, 2, 1, topic_configs={"cleanup.policy": "compact"}),
    )

    described = await admin.describe_topics([partitioned, compacted])
    partitions = {t["topic"]: sorted(p["partition"] for p in t["partitions"]) for t in described}
    assert partitions == {partitioned: list(range(6)), compacted: [0, 1]}

    configs = {}
    for response in await admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, name) for name in (partitioned, compacted)]
    ):
        for resource in response.to_object()["resources"]:
            assert resource["error_code"] == 0, resource
            entries = {e["config_names"]: e["config_value"] for e in resource["config_entries"]}
            configs[resource["resource_name"]] = entries
    assert configs[compacted]["cleanup.policy"] == "compact"
    assert configs[partitioned]["cleanup.policy"] == "delete"

    again = await admin.create_topics([NewTopic(partitioned, 6, 1)])
    assert [e["error_code"] for e in again.to_object()["topic_errors"]] == [36]  # already exists


async def test_group_resumes_from_committed_offsets(
    kafka_bootstrap: str, admin, unique_name: str
) -> None:
    topic, group = unique_name, f"{unique_name}-g"
    await create_topics(admin, NewTopic(topic, 1, 1))
    values = [f"cdr-{i}".encode() for i in range(10)]
    await produce(kafka_bootstrap, topic, values)

    def member() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka_bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )

    first = member()
    await first.start()
    try:
        assert await consume(first, 4) == values[:4]
        await first.commit()
        assert await first.committed(TopicPartition(topic, 0)) == 4
    finally:
        await first.stop()

    second = member()
    await second.start()
    try:
        assert await consume(second, 6) == values[4:]
    finally:
        await second.stop()


async def test_transactions_commit_visible_abort_invisible(
    kafka_bootstrap: str, admin, unique_name: str
) -> None:
    await create_topics(admin, NewTopic(unique_name, 1, 1))
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, transactional_id=f"{unique_name}-tx"
    )
    await producer.start()
    try:
        async with asyncio.timeout(STEP_TIMEOUT_S):
            async with producer.transaction():
                await producer.send_and_wait(unique_name, b"committed-1")
                await producer.send_and_wait(unique_name, b"committed-2")
            await producer.begin_transaction()
            await producer.send_and_wait(unique_name, b"aborted")
            await producer.abort_transaction()
            async with producer.transaction():
                await producer.send_and_wait(unique_name, b"committed-3")
    finally:
        await producer.stop()

    async def read_all(isolation_level: str, count: int) -> list[bytes]:
        consumer = AIOKafkaConsumer(
            unique_name,
            bootstrap_servers=kafka_bootstrap,
            auto_offset_reset="earliest",
            isolation_level=isolation_level,
        )
        await consumer.start()
        try:
            return await consume(consumer, count)
        finally:
            await consumer.stop()

    # The aborted record was really written: only the isolation level hides it.
    assert await read_all("read_uncommitted", 4) == [
        b"committed-1",
        b"committed-2",
        b"aborted",
        b"committed-3",
    ]
    assert await read_all("read_committed", 3) == [b"committed-1", b"committed-2", b"committed-3"]


def _free_ports(count: int) -> list[int]:
    """Distinct free ports (all held open while choosing, so none is handed out twice)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@pytest.fixture
def scram_broker(tmp_path: Path) -> Iterator[str]:
    """A private kafka-local broker with a SASL_PLAINTEXT/SCRAM-SHA-256 listener; yields it."""
    port, sasl_port = _free_ports(2)
    env = {
        **os.environ,
        "KAFKA_DIR": str(tmp_path / "kafka"),
        "KAFKA_PORT": str(port),
        "KAFKA_OWNER_PID": str(os.getpid()),
        "KAFKA_SASL_PORT": str(sasl_port),
        "KAFKA_SASL_USER": "carrier",
        "KAFKA_SASL_PASSWORD": "pw with spaces=ok",
    }
    started = subprocess.run(
        [str(KAFKA_LOCAL), "start"], env=env, capture_output=True, text=True, timeout=180
    )
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield f"127.0.0.1:{sasl_port}"
    finally:
        subprocess.run([str(KAFKA_LOCAL), "stop"], env=env, capture_output=True, timeout=120)


async def test_scram_listener_accepts_only_its_user(scram_broker: str) -> None:
    def producer(password: str) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=scram_broker,
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="SCRAM-SHA-256",
            sasl_plain_username="carrier",
            sasl_plain_password=password,
        )

    intruder = producer("wrong")
    with pytest.raises(KafkaConnectionError):
        await asyncio.wait_for(intruder.start(), STEP_TIMEOUT_S)
    await intruder.stop()

    owner = producer("pw with spaces=ok")
    await asyncio.wait_for(owner.start(), STEP_TIMEOUT_S)
    try:
        sent = await asyncio.wait_for(owner.send_and_wait("sasl-check", b"x"), STEP_TIMEOUT_S)
    finally:
        await owner.stop()
    assert sent.offset == 0
