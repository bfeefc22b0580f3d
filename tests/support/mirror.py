"""A copy of a deployment's topics on another cluster, made the way MirrorMaker 2 makes one.

MirrorMaker reads the committed records and writes them to the other cluster without the
source's transactions: the copy has no transaction markers, so a record sits at a smaller
offset there than in the source, and a topic whose first records were deleted starts at 0.
Keys, values, headers, timestamps and partitions are kept; topic configs are copied; the
ingest's consumer group gets its committed offsets translated into the copy's numbering, as
MirrorMaker's checkpoints do, possibly some records behind (those are read again: duplicates).

This copy is MirrorMaker at its best: each topic is copied up to its end at the moment it is
copied, whole transactions only. The real one can also cut a transaction in two
(docs/operations.md).
"""

from __future__ import annotations

import asyncio
import bisect
import random

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

COPIED_CONFIGS = ("cleanup.policy", "max.message.bytes", "retention.ms", "retention.bytes")
OffsetMap = dict[TopicPartition, list[tuple[int, int]]]  # partition → (source, copy) offsets


async def partition_counts(bootstrap: str, topics: list[str]) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return {t["topic"]: len(t["partitions"]) for t in await admin.describe_topics(topics)}
    finally:
        await admin.close()


async def create_like(source: str, target: str, topics: list[str]) -> None:
    """The topics on ``target`` with the partitions and configs they have on ``source``."""
    src, dst = (
        AIOKafkaAdminClient(bootstrap_servers=source),
        AIOKafkaAdminClient(bootstrap_servers=target),
    )
    await src.start()
    await dst.start()
    try:
        partitions = await partition_counts(source, topics)
        resources = [ConfigResource(ConfigResourceType.TOPIC, t) for t in topics]
        configs: dict[str, dict[str, str]] = {}
        for response in await src.describe_configs(resources):
            for _code, _message, _type, name, entries in response.resources:
                configs[name] = {
                    entry[0]: entry[1] for entry in entries if entry[0] in COPIED_CONFIGS
                }
        await dst.create_topics(
            [NewTopic(t, partitions[t], 1, topic_configs=configs.get(t, {})) for t in topics]
        )
    finally:
        await src.close()
        await dst.close()


async def copy_topics(source: str, target: str, topics: list[str]) -> OffsetMap:
    """Copy every committed record of ``topics`` (up to their ends now), one topic after the
    other; returns, per partition, the source and copy offsets of the records copied."""
    reader = AIOKafkaConsumer(
        bootstrap_servers=source, isolation_level="read_committed", enable_auto_commit=False
    )
    writer = AIOKafkaProducer(
        bootstrap_servers=target, acks="all", max_request_size=2_000_000, linger_ms=5
    )
    partitions = await partition_counts(source, topics)
    await reader.start()
    await writer.start()
    offsets: OffsetMap = {}
    try:
        for topic in topics:
            for partition in range(partitions[topic]):
                tp = TopicPartition(topic, partition)
                offsets[tp] = await _copy_partition(reader, writer, tp)
    finally:
        await reader.stop()
        await writer.stop()
    return offsets


async def _copy_partition(
    reader: AIOKafkaConsumer, writer: AIOKafkaProducer, tp: TopicPartition
) -> list[tuple[int, int]]:
    """Copy one partition; returns (source offset, copy offset) of every record copied."""
    reader.assign([tp])
    await reader.seek_to_beginning(tp)
    end = (await reader.end_offsets([tp]))[tp]
    pairs: list[tuple[int, int]] = []
    while await reader.position(tp) < end:
        polled = [
            m for m in (await reader.getmany(tp, timeout_ms=1000)).get(tp, []) if m.offset < end
        ]
        futures = [
            await writer.send(
                tp.topic,
                value=message.value,
                key=message.key,
                headers=list(message.headers),
                partition=tp.partition,
                timestamp_ms=message.timestamp,
            )
            for message in polled
        ]
        for message, sent in zip(polled, await asyncio.gather(*futures), strict=True):
            pairs.append((message.offset, sent.offset))
    return pairs


def in_copy(pairs: list[tuple[int, int]], source_offset: int) -> int:
    """The copy's offset of the first record at or after ``source_offset`` (the copy's end
    when there is none)."""
    index = bisect.bisect_left(pairs, (source_offset, -1))
    if index < len(pairs):
        return pairs[index][1]
    return pairs[-1][1] + 1 if pairs else 0


async def committed_offsets(bootstrap: str, group: str) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        found = await admin.list_consumer_group_offsets(group)
        return {tp: meta.offset for tp, meta in found.items()}
    finally:
        await admin.close()


async def translate_group(
    committed: dict[TopicPartition, int],
    target: str,
    group: str,
    offsets: OffsetMap,
    rng: random.Random,
    behind: int,
) -> dict[TopicPartition, int]:
    """Commit ``group``'s offsets on ``target``: ``committed`` (the source's) in the copy's
    numbering, each 0 to ``behind`` records earlier (MirrorMaker's checkpoints lag)."""
    translated = {
        tp: max(0, in_copy(offsets[tp], offset) - rng.randint(0, behind))
        for tp, offset in committed.items()
    }
    consumer = AIOKafkaConsumer(bootstrap_servers=target, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(list(translated))
        await consumer.commit(translated)
    finally:
        await consumer.stop()
    return translated
