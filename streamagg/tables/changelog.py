"""Write table changes to RocksDB and to their changelog topics, a batch message at a time.

Faust sends one changelog message per `table[key] = value`, through a per-message path that
costs far more than the fold itself. Here a batch's writes go into the partition's RocksDB at
once and into the changelog as a few Kafka record batches (aiokafka's batch API), awaited before
the report agent acknowledges the batch. The changelog topics, their recovery and standby
replicas stay Faust's: it replays these messages exactly like its own.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from faust.types import TP

from streamagg.settings import Settings
from streamagg.tables.faust_tables import partition_db

log = logging.getLogger(__name__)
RETRY_SECONDS = 2.0


@dataclass
class ChangelogWriter:
    """Collects the writes of one batch; `flush` makes them durable in Kafka."""

    settings: Settings
    _pending: dict[tuple[Any, int], list[tuple[bytes, bytes | None]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    _producer: AIOKafkaProducer | None = None

    def put(self, table: Any, partition: int, key: bytes, value: bytes | None) -> None:
        """Apply a write (None = delete) to the local store now and queue its changelog message."""
        db = partition_db(table, partition)
        if value is None:
            db.delete(key)
        else:
            db.put(key, value)
        self._pending[(table, partition)].append((key, value))

    async def flush(self) -> None:
        """Send every queued write to its changelog partition and wait until Kafka has them.

        Retries until it succeeds: the batch must not be acknowledged with its changes only in
        the local store, where a standby or the next owner of the partition would never see them.
        """
        while self._pending:
            try:
                await self._send_pending()
            except (KafkaError, OSError) as exc:
                log.warning(
                    "changelog write to Kafka at %s failed (%s); retrying in %.0f s",
                    self.settings.bootstrap_servers,
                    exc,
                    RETRY_SECONDS,
                )
                await asyncio.sleep(RETRY_SECONDS)

    async def _send_pending(self) -> None:
        producer = await self._started()
        sends: list[tuple[Any, int, int, asyncio.Future[Any]]] = []
        for (table, partition), writes in self._pending.items():
            topic = table.changelog_topic.get_topic_name()
            batch = producer.create_batch()
            count = 0
            for key, value in writes:
                if batch.append(key=key, value=value, timestamp=None) is None:
                    sends.append(
                        (
                            table,
                            partition,
                            count,
                            await producer.send_batch(batch, topic, partition=partition),
                        )
                    )
                    batch, count = producer.create_batch(), 0
                    if batch.append(key=key, value=value, timestamp=None) is None:
                        raise ValueError(f"a value of {len(value or b'')} bytes exceeds a batch")
                count += 1
            if count:
                sends.append(
                    (
                        table,
                        partition,
                        count,
                        await producer.send_batch(batch, topic, partition=partition),
                    )
                )
        last: dict[tuple[Any, int], int] = {}
        for table, partition, count, future in sends:
            metadata = await future
            end = metadata.offset + count - 1
            last[(table, partition)] = max(last.get((table, partition), -1), end)
        for (table, partition), offset in last.items():
            # What Faust records after its own sends: restarts replay the changelog from here.
            topic = table.changelog_topic.get_topic_name()
            table.data.set_persisted_offset(TP(topic, partition), offset)
        self._pending.clear()

    async def _started(self) -> AIOKafkaProducer:
        if self._producer is None:
            s = self.settings
            producer = AIOKafkaProducer(
                bootstrap_servers=s.bootstrap_servers,
                acks="all",
                linger_ms=0,
                max_batch_size=900_000,
                max_request_size=4 * 1024 * 1024,
                **s.kafka_client_options(),
            )
            await producer.start()
            self._producer = producer
        return self._producer

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
