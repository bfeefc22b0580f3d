"""Where the state continues in a batch partition that may not be the log it was built from.

Invariant (docs/exactly-once.md, 12): the state applies a batch partition from the message
after the last batch it applied, in whatever numbering the log in front of it has, or not at
all. The batches here are written in Kafka transactions, as the ingest stage writes them, so
that every transaction's marker takes an offset; the copy is written without transactions, as
MirrorMaker writes one, so the same batch sits at a smaller offset there.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic, RecordsToDelete

from streamagg.batches import BATCH_HEADERS, Batch, Record
from streamagg.cdr import Cdr
from streamagg.kafka_clients import committed_reader, fencing_producer, stop_quietly
from streamagg.settings import Settings
from streamagg.tables.batch_log import BatchLogMismatch, LastBatch, Position, continue_at

pytestmark = pytest.mark.timeout(120)
Message = tuple[int, bytes]  # offset, value


def batch(source_offset: int) -> bytes:
    cdr = Cdr(f"call-{source_offset}", "42", 1795000000, "7", 0, 0, "", 0, False, False, "", "", "")
    return Batch("cdrs/0", [Record(source_offset, 1795000000000, cdr)]).encode()


@pytest.fixture
def settings(kafka_bootstrap: str, unique_name: str, tmp_path: Path) -> Settings:
    return Settings(broker=f"kafka://{kafka_bootstrap}", app_id=unique_name, data_dir=tmp_path)


async def write_in_transactions(
    settings: Settings, topic: str, values: list[bytes], rng: random.Random
) -> list[Message]:
    """The values in transactions of 1-4 messages, one aborted now and then (its messages
    take offsets and are never read); returns the committed (offset, value)s."""
    producer = await fencing_producer(settings, f"{topic}-writer")
    written: list[Message] = []
    try:
        index = 0
        while index < len(values):
            chunk = values[index : index + rng.randint(1, 4)]
            await producer.begin_transaction()
            futures = [
                await producer.send(topic, value=value, headers=BATCH_HEADERS, partition=0)
                for value in chunk
            ]
            if rng.random() < 0.2:
                await producer.abort_transaction()
                continue
            await producer.commit_transaction()
            written += [((await f).offset, value) for f, value in zip(futures, chunk, strict=True)]
            index += len(chunk)
    finally:
        await stop_quietly(producer)
    return written


async def copy_topic(bootstrap: str, source: str, target: str) -> list[Message]:
    """What MirrorMaker does: the committed messages, one by one, without transactions."""
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level="read_committed")
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await reader.start()
    await producer.start()
    try:
        tp = TopicPartition(source, 0)
        reader.assign([tp])
        await reader.seek_to_beginning(tp)
        end = (await reader.end_offsets([tp]))[tp]
        copied: list[Message] = []
        while await reader.position(tp) < end:
            for message in (await reader.getmany(tp, timeout_ms=1000)).get(tp, []):
                sent = await producer.send_and_wait(
                    target, value=message.value, headers=list(message.headers), partition=0
                )
                copied.append((sent.offset, message.value or b""))
        return copied
    finally:
        await reader.stop()
        await producer.stop()


async def continue_in(
    settings: Settings,
    topic: str,
    next_offset: int,
    last: LastBatch | None,
    when_unknown: str = "stop",
) -> Position:
    reader = committed_reader(settings)
    await reader.start()
    try:
        return await continue_at(reader, TopicPartition(topic, 0), next_offset, last, when_unknown)
    finally:
        await stop_quietly(reader)


async def topics(admin: AIOKafkaAdminClient, *names: str) -> None:
    await admin.create_topics([NewTopic(name, 1, 1) for name in names])


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_the_state_continues_after_its_last_batch_in_the_log_or_in_a_copy(
    settings: Settings, admin: AIOKafkaAdminClient, unique_name: str, seed: int
) -> None:
    rng = random.Random(seed)
    original, mirror = f"{unique_name}-batches", f"{unique_name}-mirror"
    await topics(admin, original, mirror)
    written = await write_in_transactions(settings, original, [batch(n) for n in range(40)], rng)
    applied = rng.randrange(5, 35)  # the state applied the batches up to this one
    offset, value = written[applied]
    last = LastBatch(offset, LastBatch.of(_Message(offset, value)).digest)

    assert await continue_in(settings, original, offset + 1, last) == Position(offset + 1)

    copied = await copy_topic(settings.bootstrap_servers, original, mirror)
    there = copied[applied][0]
    assert there < offset  # (the copy has no markers: smaller offsets)
    moved = await continue_in(settings, mirror, offset + 1, last)
    assert moved == Position(there + 1, moved=True, last=LastBatch(there, last.digest))


async def test_a_recreated_or_cut_log_stops_the_state_instead_of_skipping_batches(
    settings: Settings, admin: AIOKafkaAdminClient, unique_name: str
) -> None:
    rng = random.Random(7)
    original, recreated = f"{unique_name}-batches", f"{unique_name}-new"
    await topics(admin, original, recreated)
    written = await write_in_transactions(settings, original, [batch(n) for n in range(30)], rng)
    offset, value = written[20]
    last = LastBatch(offset, LastBatch.of(_Message(offset, value)).digest)
    # New batches (other source offsets) in a new log; then the same log, shorter.
    await write_in_transactions(settings, recreated, [batch(n) for n in range(100, 140)], rng)
    short = f"{unique_name}-short"
    await topics(admin, short)
    await write_in_transactions(settings, short, [batch(n) for n in range(10)], rng)

    for log, end in ((recreated, 40), (short, 10)):
        with pytest.raises(BatchLogMismatch, match="does not hold the last batch"):
            await continue_in(settings, log, offset + 1, last)
        # The operator's choice: every batch of the log applied already, or none.
        at_end = await continue_in(settings, log, offset + 1, last, "from-end")
        assert at_end.moved and at_end.last is None
        assert await committed_before(settings, log, at_end.next_offset) == end
        at_start = await continue_in(settings, log, offset + 1, last, "from-start")
        assert at_start == Position(0, moved=True)


async def test_a_last_batch_deleted_by_retention_cannot_be_compared_and_the_offset_stands(
    settings: Settings, admin: AIOKafkaAdminClient, unique_name: str
) -> None:
    topic = f"{unique_name}-batches"
    await topics(admin, topic)
    written = await write_in_transactions(
        settings, topic, [batch(n) for n in range(20)], random.Random(3)
    )
    offset, value = written[10]
    last = LastBatch(offset, LastBatch.of(_Message(offset, value)).digest)
    await admin.delete_records({TopicPartition(topic, 0): RecordsToDelete(written[15][0])}, 30_000)

    assert await continue_in(settings, topic, offset + 1, last) == Position(offset + 1)


async def committed_before(settings: Settings, topic: str, offset: int) -> int:
    """How many committed messages of the topic lie before ``offset``."""
    reader = committed_reader(settings)
    await reader.start()
    try:
        tp = TopicPartition(topic, 0)
        reader.assign([tp])
        await reader.seek_to_beginning(tp)
        count = 0
        while await reader.position(tp) < offset:
            for message in (await reader.getmany(tp, timeout_ms=1000)).get(tp, []):
                count += message.offset < offset
        return count
    finally:
        await stop_quietly(reader)


class _Message:
    def __init__(self, offset: int, value: bytes) -> None:
        self.offset = offset
        self.value = value


async def test_a_state_past_the_logs_end_is_not_taken_for_this_log_even_without_a_record(
    settings: Settings, admin: AIOKafkaAdminClient, unique_name: str
) -> None:
    """Found by review: a state from before the record (no last batch) in front of a shorter
    log, or a log cut after the last batch but before the state's offset, went round between
    'past the end' and a recovery that kept the offset."""
    topic = f"{unique_name}-batches"
    await topics(admin, topic)
    written = await write_in_transactions(
        settings, topic, [batch(n) for n in range(6)], random.Random(5)
    )
    offset, value = written[-1]
    last = LastBatch(offset, LastBatch.of(_Message(offset, value)).digest)
    beyond = written[-1][0] + 50

    with pytest.raises(BatchLogMismatch, match="does not hold the last batch"):
        await continue_in(settings, topic, beyond, None)
    # Cut after the last batch: what followed it is gone; the state goes on right after it.
    assert await continue_in(settings, topic, beyond, last) == Position(
        offset + 1, moved=True, last=last
    )
    assert await continue_in(settings, topic, beyond, None, "from-end") == Position(
        await committed_end(settings, topic), moved=True
    )


async def committed_end(settings: Settings, topic: str) -> int:
    reader = committed_reader(settings)
    await reader.start()
    try:
        tp = TopicPartition(topic, 0)
        return int((await reader.end_offsets([tp]))[tp])
    finally:
        await stop_quietly(reader)
