"""One partition's transaction: read-your-writes over its state, committed whole or not at all.

Commit order, the heart of exactly-once (docs/exactly-once.md):

1. every change, and the batch offset the transaction consumed up to, is sent to the
   partition's changelog inside a Kafka transaction of the partition's own transactional id;
2. the Kafka transaction commits: from here on the changes are the state;
3. the changes and the new changelog checkpoint go to the local RocksDB copy in one write batch.

A crash before 2 leaves nothing (the transaction is aborted when the next writer of the
partition fences this one); a crash between 2 and 3 leaves the local copy behind its changelog,
which recovery reads on. Nothing is ever written locally that is not committed in Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from aiokafka import AIOKafkaProducer

from streamagg.failpoints import failpoint
from streamagg.tables.batch_log import LastBatch
from streamagg.tables.changelog import send_changes
from streamagg.tables.keys import LAST_BATCH, NEXT_OFFSET, encode_int
from streamagg.tables.store import PartitionStore

_DELETED = None


class PartitionTransaction:
    """The changes one cycle makes to one partition's state."""

    def __init__(
        self, partition: int, store: PartitionStore, producer: AIOKafkaProducer, changelog: str
    ) -> None:
        self.partition = partition
        self._store = store
        self._producer = producer
        self._changelog = changelog
        self._changes: dict[bytes, bytes | None] = {}
        self._aside: list[tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]] = []

    def get(self, key: bytes) -> bytes | None:
        if key in self._changes:
            return self._changes[key]
        return self._store.get(key)

    def set(self, key: bytes, value: bytes) -> None:
        self._changes[key] = value

    def delete(self, key: bytes) -> None:
        self._changes[key] = _DELETED

    def scan(self, low: bytes, high: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Committed keys in [low, high) (this transaction's own writes are not included)."""
        return self._store.scan(low, high)

    def last(self, low: bytes, high: bytes) -> bytes | None:
        """The greatest committed key in [low, high) (as scan: not this transaction's own)."""
        return self._store.last(low, high)

    def send_aside(
        self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]
    ) -> None:
        """A record for another topic (the dead-letter topic), sent in this transaction: it
        is there exactly when the changes are."""
        self._aside.append((topic, key, value, headers))

    def consumed(self, next_offset: int, last: LastBatch | None = None) -> None:
        """Record that the batch partition is applied up to (not including) next_offset, and
        which batch was the last applied (when the transaction applied one)."""
        self._changes[NEXT_OFFSET] = encode_int(next_offset)
        if last is not None:
            self._changes[LAST_BATCH] = last.encode()

    @property
    def changes(self) -> int:
        return len(self._changes)

    async def commit(self, timeout: float) -> None:
        """Make the changes durable in the changelog, then in the local copy (see the module
        docstring). Raises on any failure; then nothing may be assumed of this transaction
        except that recovery (fence, read the changelog) restores a consistent state."""
        if not self._changes:
            return
        end = await asyncio.wait_for(self._commit_to_kafka(), timeout)
        failpoint("state.after-kafka-commit")
        self._store.apply(self._changes, end)

    async def _commit_to_kafka(self) -> int:
        producer = self._producer
        await producer.begin_transaction()
        try:
            for topic, key, value, headers in self._aside:
                await producer.send(topic, value=value, key=key, headers=headers)
            end = await send_changes(producer, self._changelog, self.partition, self._changes)
        except BaseException:
            # Best effort: the next writer's fencing aborts it anyway.
            await asyncio.shield(_abort_quietly(producer))
            raise
        failpoint("state.before-kafka-commit")
        await producer.commit_transaction()
        return end


async def _abort_quietly(producer: AIOKafkaProducer) -> None:
    # The producer may be fenced or cut off; the next writer's fencing settles it anyway.
    with contextlib.suppress(Exception):
        await asyncio.wait_for(producer.abort_transaction(), 10)
