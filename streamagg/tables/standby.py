"""Standby copies: keep the local copies of partitions another worker owns close to their end.

The assignment names, for each worker, the partitions it keeps a standby copy of
(STREAMAGG_STANDBY_REPLICAS). The follower tails their changelogs (read_committed, so only
committed transactions) into the local copies, so that taking one over means reading a short
tail instead of the whole changelog. Nothing relies on a standby being current: an owner always
fences and catches up from its copy's checkpoint before it applies anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

from aiokafka import AIOKafkaConsumer, TopicPartition

from streamagg.kafka_clients import committed_reader, stop_quietly
from streamagg.settings import Settings
from streamagg.tables.changelog import check_format
from streamagg.tables.store import PartitionStore

log = logging.getLogger(__name__)

RETRY_SECONDS = 5.0


class StandbyFollower:
    def __init__(self, settings: Settings, store_of: Callable[[int], PartitionStore]) -> None:
        self.settings = settings
        self.store_of = store_of
        self.partitions: frozenset[int] = frozenset()
        self._lock = asyncio.Lock()  # held while applying: `follow` waits for it
        self._reader: AIOKafkaConsumer | None = None
        self._changed = asyncio.Event()
        self._stopping = False

    async def follow(self, partitions: Iterable[int]) -> None:
        """Follow these partitions from now on; when it returns, no other is written to."""
        async with self._lock:
            self.partitions = frozenset(partitions)
            if self._reader is not None:
                await self._assign(self._reader)
            self._changed.set()

    def stop(self) -> None:
        self._stopping = True
        self._changed.set()

    async def run(self) -> None:
        while not self._stopping:
            try:
                await self._follow_until_error()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("standby copies: %r; retrying in %.0f s", exc, RETRY_SECONDS)
                await asyncio.sleep(RETRY_SECONDS)

    async def _follow_until_error(self) -> None:
        reader = committed_reader(self.settings)
        await reader.start()
        try:
            async with self._lock:
                self._reader = reader
                await self._assign(reader)
            while not self._stopping:
                if not self.partitions:
                    self._changed.clear()
                    await self._changed.wait()
                    continue
                polled = await reader.getmany(timeout_ms=500, max_records=50_000)
                async with self._lock:
                    for tp, records in polled.items():
                        if tp.partition not in self.partitions:
                            continue  # given up (or taken over) meanwhile
                        changes: dict[bytes, bytes | None] = {}
                        for record in records:
                            check_format(record)
                            changes[record.key] = record.value
                        self.store_of(tp.partition).apply(changes, await reader.position(tp))
        finally:
            async with self._lock:
                self._reader = None
            await stop_quietly(reader)

    async def _assign(self, reader: AIOKafkaConsumer) -> None:
        topic = self.settings.changelog_topic
        tps = [TopicPartition(topic, p) for p in sorted(self.partitions)]
        reader.assign(tps)
        if not tps:
            return
        ends = await reader.end_offsets(tps)
        beginnings = await reader.beginning_offsets(tps)
        for tp in tps:
            store = self.store_of(tp.partition)
            start = store.checkpoint
            if start > ends[tp] or start < beginnings[tp]:
                store.wipe()
                start = beginnings[tp]
            reader.seek(tp, start)
        log.info("standby copies of partitions %s", sorted(self.partitions))

    async def close(self) -> None:
        self.stop()
        with contextlib.suppress(Exception):
            await self.follow(())
