"""Produce test messages to the real broker and read them back."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Sequence

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError


async def produce(
    bootstrap: str, topic: str, values: Sequence[bytes], key: bytes | None = None
) -> None:
    await produce_keyed(bootstrap, topic, ((key, value) for value in values))


async def produce_keyed(
    bootstrap: str, topic: str, messages: Iterable[tuple[bytes | None, bytes]]
) -> None:
    """Send (key, value) messages in order, acknowledged by every replica."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=512 * 1024, acks="all"
    )
    await producer.start()
    try:
        pending = []
        for key, value in messages:
            pending.append(await producer.send(topic, value, key=key))
            if len(pending) >= 20000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def create_compacted(bootstrap: str, topic: str) -> None:
    """Create ``topic`` compacted, as `streamagg dids load` would (the broker's automatic
    creation would make it delete records after 7 days, which a worker refuses)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(
                [NewTopic(topic, 1, 1, topic_configs={"cleanup.policy": "compact"})]
            )
    finally:
        await admin.close()


async def produce_dids(bootstrap: str, topic: str, owners: dict[str, str]) -> None:
    await create_compacted(bootstrap, topic)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for did, account in owners.items():
            await producer.send(topic, orjson.dumps({"account": account}), key=did.encode())
        await producer.flush()
    finally:
        await producer.stop()


async def consume_all(
    bootstrap: str, topic: str, expected: int, timeout: float = 60.0
) -> list[ConsumerRecord]:  # type: ignore[type-arg]
    """Every message of topic from the beginning, until expected arrived or timeout passed
    (committed transactions only, as the DLQ's readers must read it)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=16 * 1024 * 1024,
    )
    await consumer.start()
    records: list[ConsumerRecord] = []  # type: ignore[type-arg]
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(records) < expected and loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            for messages in batch.values():
                records.extend(messages)
    finally:
        await consumer.stop()
    return records


def header(record: ConsumerRecord, name: str) -> str | None:  # type: ignore[type-arg]
    for key, value in record.headers or ():
        if key == name:
            return bytes(value).decode()
    return None


def flatten(chunks: Iterable[Sequence[bytes]]) -> list[bytes]:
    return [value for chunk in chunks for value in chunk]
