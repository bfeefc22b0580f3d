"""The state layer's transactions, fencing and recovery against the real broker.

Each test names the invariant of docs/exactly-once.md it checks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import ProducerFenced

from streamagg.errors import FormatError
from streamagg.kafka_clients import committed_reader, fencing_producer, stop_quietly
from streamagg.settings import Settings
from streamagg.tables.changelog import catch_up
from streamagg.tables.store import PartitionStore
from streamagg.tables.transaction import PartitionTransaction

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def changelog(kafka_bootstrap: str, unique_name: str) -> AsyncIterator[TopicPartition]:
    """A fresh compacted one-partition changelog topic."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        topic = f"{unique_name}-state-changelog"  # the changelog of app id unique_name
        await admin.create_topics(
            [NewTopic(topic, 1, 1, topic_configs={"cleanup.policy": "compact"})]
        )
        yield TopicPartition(topic, 0)
    finally:
        await admin.close()


@pytest.fixture
def settings(kafka_bootstrap: str, unique_name: str, tmp_path: Path) -> Settings:
    return Settings(broker=f"kafka://{kafka_bootstrap}", app_id=unique_name, data_dir=tmp_path)


async def commit(
    store: PartitionStore,
    producer: AIOKafkaProducer,
    tp: TopicPartition,
    writes: dict[bytes, bytes | None],
) -> None:
    txn = PartitionTransaction(tp.partition, store, producer, tp.topic)
    for key, value in writes.items():
        if value is None:
            txn.delete(key)
        else:
            txn.set(key, value)
    await txn.commit(timeout=30)


async def recovered_copy(settings: Settings, tp: TopicPartition, path: Path) -> dict[bytes, bytes]:
    """Everything a copy at ``path`` holds after catching up with the changelog's end."""
    store = PartitionStore(path)
    reader = committed_reader(settings)
    await reader.start()
    try:
        end = (await reader.end_offsets([tp]))[tp]
        await catch_up(store, reader, tp, end)
        return dict(contents(store))
    finally:
        await stop_quietly(reader)
        store.close()


def contents(store: PartitionStore) -> list[tuple[bytes, bytes]]:
    """The state keys of a copy (its local bookkeeping keys left out)."""
    return [(k, v) for k, v in store.scan(b"\x01", b"\xff")]


async def test_a_committed_transaction_is_in_the_copy_and_in_the_changelog(
    settings: Settings, changelog: TopicPartition, tmp_path: Path
) -> None:
    """Invariant 1: what the local copy holds is committed in the changelog."""
    store = PartitionStore(tmp_path / "a")
    producer = await fencing_producer(settings, f"{settings.app_id}-t")
    try:
        await commit(store, producer, changelog, {b"R\x1fa": b"1", b"R\x1fb": b"2"})
        await commit(store, producer, changelog, {b"R\x1fa": b"3", b"R\x1fb": None})
    finally:
        await stop_quietly(producer)
    local = dict(contents(store))
    store.close()
    assert local == {b"R\x1fa": b"3"}
    assert await recovered_copy(settings, changelog, tmp_path / "b") == local


async def test_a_copy_left_behind_by_a_crash_after_the_kafka_commit_catches_up(
    settings: Settings, changelog: TopicPartition, tmp_path: Path
) -> None:
    """Invariant 2: a crash between the Kafka commit and the local write loses nothing."""
    store = PartitionStore(tmp_path / "a")
    producer = await fencing_producer(settings, f"{settings.app_id}-t")
    try:
        await commit(store, producer, changelog, {b"R\x1fa": b"1"})

        def crash(*_: object) -> None:
            raise OSError("disk full")

        store.apply = crash  # type: ignore[method-assign]
        with pytest.raises(OSError):
            await commit(store, producer, changelog, {b"R\x1fa": b"2", b"R\x1fc": b"9"})
    finally:
        await stop_quietly(producer)
    store.close()
    # The same folder, as a restarted worker finds it, read on from its checkpoint.
    assert await recovered_copy(settings, changelog, tmp_path / "a") == {
        b"R\x1fa": b"2",
        b"R\x1fc": b"9",
    }


async def test_a_fenced_writer_commits_nothing(
    settings: Settings, changelog: TopicPartition, tmp_path: Path
) -> None:
    """Invariant 3: a writer that lost the partition cannot change its state."""
    zombie_store = PartitionStore(tmp_path / "zombie")
    zombie = await fencing_producer(settings, f"{settings.app_id}-t")
    successor = None
    try:
        await commit(zombie_store, zombie, changelog, {b"R\x1fa": b"1"})
        # The zombie begins a transaction; meanwhile a successor takes the partition over.
        txn = PartitionTransaction(0, zombie_store, zombie, changelog.topic)
        txn.set(b"R\x1fa", b"stale")
        successor = await fencing_producer(settings, f"{settings.app_id}-t")
        with pytest.raises(ProducerFenced):
            await txn.commit(timeout=30)
        successor_store = PartitionStore(tmp_path / "successor")
        reader = committed_reader(settings)
        await reader.start()
        try:
            end = (await reader.end_offsets([changelog]))[changelog]
            await catch_up(successor_store, reader, changelog, end)
        finally:
            await stop_quietly(reader)
        await commit(successor_store, successor, changelog, {b"R\x1fb": b"2"})
        successor_store.close()
    finally:
        await stop_quietly(zombie)
        if successor is not None:
            await stop_quietly(successor)
    assert dict(contents(zombie_store)) == {b"R\x1fa": b"1"}, "nothing uncommitted is local"
    zombie_store.close()
    assert await recovered_copy(settings, changelog, tmp_path / "fresh") == {
        b"R\x1fa": b"1",
        b"R\x1fb": b"2",
    }


async def test_an_aborted_transaction_is_never_read(
    settings: Settings, changelog: TopicPartition, kafka_bootstrap: str, tmp_path: Path
) -> None:
    producer = await fencing_producer(settings, f"{settings.app_id}-t")
    try:
        await producer.begin_transaction()
        await producer.send_and_wait(
            changelog.topic, b"9", key=b"R\x1fx", partition=0, headers=[("streamagg-format", b"1")]
        )
        await producer.abort_transaction()
        store = PartitionStore(tmp_path / "a")
        await commit(store, producer, changelog, {b"R\x1fy": b"1"})
        store.close()
    finally:
        await stop_quietly(producer)
    assert await recovered_copy(settings, changelog, tmp_path / "b") == {b"R\x1fy": b"1"}


async def test_a_changelog_record_of_another_format_is_refused_by_name(
    settings: Settings, changelog: TopicPartition, kafka_bootstrap: str, tmp_path: Path
) -> None:
    """Formats carry versions: a record of format 4 (newer) stops recovery, the versions named."""
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(
            changelog.topic, b"1", key=b"R\x1fa", partition=0, headers=[("streamagg-format", b"4")]
        )
    finally:
        await producer.stop()
    with pytest.raises(FormatError, match="has format 4; this streamagg reads formats 1, 2, 3"):
        await recovered_copy(settings, changelog, tmp_path / "a")


async def test_a_copy_ahead_of_its_changelog_is_rebuilt(
    settings: Settings, changelog: TopicPartition, tmp_path: Path
) -> None:
    """A folder whose checkpoint is past the changelog's end (the topic was recreated) is not
    trusted: it is emptied and rebuilt from the changelog."""
    stale = PartitionStore(tmp_path / "a")
    stale.apply({b"R\x1fold": b"1"}, checkpoint=10_000)
    stale.close()
    producer = await fencing_producer(settings, f"{settings.app_id}-t")
    try:
        store = PartitionStore(tmp_path / "b")
        await commit(store, producer, changelog, {b"R\x1fnew": b"2"})
        store.close()
    finally:
        await stop_quietly(producer)
    assert await recovered_copy(settings, changelog, tmp_path / "a") == {b"R\x1fnew": b"2"}


async def test_starting_a_fencing_producer_aborts_the_open_transaction_of_the_last(
    settings: Settings, changelog: TopicPartition, tmp_path: Path
) -> None:
    """What recovery relies on: once the successor's producer has started, the changelog's end
    is final (no open transaction of an earlier writer can still commit into it)."""
    zombie = await fencing_producer(settings, f"{settings.app_id}-t")
    try:
        await zombie.begin_transaction()
        await zombie.send_and_wait(
            changelog.topic, b"1", key=b"R\x1fz", partition=0, headers=[("streamagg-format", b"1")]
        )
        successor = await fencing_producer(settings, f"{settings.app_id}-t")
        await stop_quietly(successor)
        reader = committed_reader(settings)
        await reader.start()
        try:
            # read_committed ends at the last stable offset: it is not held back by the zombie.
            end = (await asyncio.wait_for(reader.end_offsets([changelog]), 30))[changelog]
            assert end >= 1
        finally:
            await stop_quietly(reader)
        assert await recovered_copy(settings, changelog, tmp_path / "a") == {}
    finally:
        await stop_quietly(zombie)


async def test_a_standby_copy_follows_the_committed_changelog(
    settings: Settings, changelog: TopicPartition, tmp_path: Path
) -> None:
    """A standby copy is the committed changelog, kept current: what a takeover then reads is
    the short tail past its checkpoint."""
    from streamagg.tables.standby import StandbyFollower

    assert settings.changelog_topic == changelog.topic
    standby = PartitionStore(tmp_path / "standby")
    follower = StandbyFollower(settings, lambda partition: standby)
    running = asyncio.create_task(follower.run())
    owner_store = PartitionStore(tmp_path / "owner")
    producer = await fencing_producer(settings, f"{settings.app_id}-t")
    try:
        await follower.follow([0])
        await commit(owner_store, producer, changelog, {b"R\x1fa": b"1", b"R\x1fb": b"2"})
        await producer.begin_transaction()  # an aborted attempt the standby must not see
        await producer.send_and_wait(
            changelog.topic, b"x", key=b"R\x1fc", partition=0, headers=[("streamagg-format", b"1")]
        )
        await producer.abort_transaction()
        await commit(owner_store, producer, changelog, {b"R\x1fa": b"3", b"R\x1fb": None})
        async with asyncio.timeout(30):
            while dict(contents(standby)) != {b"R\x1fa": b"3"}:
                await asyncio.sleep(0.1)
        assert standby.checkpoint >= owner_store.checkpoint
        await follower.follow([])  # taken over here: the follower lets go of it
    finally:
        follower.stop()
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await stop_quietly(producer)
        owner_store.close()
        standby.close()
