"""A partition's changelog: the record format, appending a transaction's changes, catching up.

The changelog (`{app_id}-state-changelog`, compacted, one partition per batch partition) is the
state's source of truth: key = state key, value = state value, no value = deleted. Each record
carries the header ``streamagg-format``; a reader refuses a format it does not know. Records
are written only inside Kafka transactions and read only with ``read_committed``, so what a
reader sees is exactly the committed transactions, whole.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from streamagg.errors import FormatError, StateError
from streamagg.failpoints import failpoint
from streamagg.tables.keys import FORMAT_VERSION, READABLE_FORMATS
from streamagg.tables.store import PartitionStore

log = logging.getLogger(__name__)

FORMAT_HEADER = "streamagg-format"
_HEADERS = [(FORMAT_HEADER, str(FORMAT_VERSION).encode())]
_READABLE = {str(version).encode() for version in READABLE_FORMATS}
# Changes applied to the local copy per write batch while catching up.
CATCH_UP_CHUNK = 50_000
# Records appended between two turns of the event loop (a backlog's transaction may carry
# 100,000 changes: the web and the clients' heartbeats are served meanwhile).
APPENDS_PER_TURN = 4_096


async def send_changes(
    producer: AIOKafkaProducer, topic: str, partition: int, changes: Mapping[bytes, bytes | None]
) -> int:
    """Append the changes to one changelog partition as a few record batches (the producer is
    inside a transaction) and wait until Kafka has them; returns the offset after the last."""
    sent: list[tuple[asyncio.Future[Any], int]] = []

    async def send(batch: Any) -> None:
        count = batch.record_count()
        sent.append((await producer.send_batch(batch, topic, partition=partition), count))

    batch = producer.create_batch()
    for index, (key, value) in enumerate(changes.items()):
        if index % APPENDS_PER_TURN == APPENDS_PER_TURN - 1:
            await asyncio.sleep(0)
        if batch.append(key=key, value=value, timestamp=None, headers=_HEADERS) is None:
            await send(batch)
            batch = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None, headers=_HEADERS) is None:
                raise StateError(f"a state record of {len(key) + len(value or b'')} bytes")
    if batch.record_count():
        await send(batch)
    end = 0
    for future, count in sent:
        metadata = await future  # a record batch's metadata carries its first offset
        end = max(end, metadata.offset + count)
    return end


def check_format(record: ConsumerRecord[Any, Any]) -> None:
    """Refuse a changelog record written in a format this version cannot read."""
    found = dict(record.headers or ()).get(FORMAT_HEADER)
    if found not in _READABLE:
        version = found.decode(errors="replace") if found else "unknown (no header)"
        raise FormatError(
            f"changelog record {record.topic}/{record.partition}/{record.offset} has format "
            f"{version}; this streamagg reads formats "
            f"{', '.join(map(str, READABLE_FORMATS))}"
        )


async def catch_up(
    store: PartitionStore, consumer: AIOKafkaConsumer, tp: TopicPartition, end: int
) -> int:
    """Bring the local copy from its checkpoint to ``end`` of the changelog; returns the number
    of records read. ``consumer`` reads with read_committed and belongs to no group."""
    start = store.checkpoint
    beginning = (await consumer.beginning_offsets([tp]))[tp]
    if start > end or start < beginning:
        # The copy belongs to another log (the topic was recreated) or to records the log no
        # longer holds: it cannot be completed, only rebuilt.
        log.warning(
            "state copy of %s is at offset %d, the changelog holds [%d, %d)",
            tp,
            start,
            beginning,
            end,
        )
        store.wipe()
        start = beginning
    if start >= end:
        return 0
    consumer.assign([tp])
    consumer.seek(tp, start)
    read = 0
    pending: dict[bytes, bytes | None] = {}
    position = start
    while position < end:
        polled = await consumer.getmany(tp, timeout_ms=1000, max_records=10_000)
        for record in polled.get(tp, ()):
            if record.offset >= end:
                break
            check_format(record)
            pending[record.key] = record.value
            read += 1
        position = min(await consumer.position(tp), end)
        if len(pending) >= CATCH_UP_CHUNK or position >= end:
            store.apply(pending, position)
            pending = {}
            failpoint("state.catching-up")
    return read
