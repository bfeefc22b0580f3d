"""The state layer: owns the batch partitions of this worker, from batch message to durable state.

A consumer of the batch topic in the group ``{app_id}-state`` (assignor: tables/assignor.py)
gets partitions. Each owned partition recovers (tables/partition.py), then the stage reads
batches in cycles (tables/cycles.py): one transaction per active partition, its commit running
while the next partitions fold. A failure of one partition stops that partition only, and it
is recovered again after a backoff. Queries read the local copy of active partitions; the
owner map from the assignment says where the others are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import (
    IllegalStateError,
    KafkaError,
    NoOffsetForPartitionError,
    OffsetOutOfRangeError,
)

from streamagg.errors import NotOwner, Unavailable
from streamagg.kafka_clients import SESSION_TIMEOUT_MS, LagSeries, group_reader
from streamagg.metrics import Metrics
from streamagg.settings import Settings
from streamagg.tables.assignor import OwnershipAssignor
from streamagg.tables.cycles import MAINTENANCE_EVERY_S, BatchHandler, Cycles
from streamagg.tables.partition import OwnedPartition, Status, out_of_range, recover
from streamagg.tables.retention import RetentionSweeper
from streamagg.tables.standby import StandbyFollower
from streamagg.tables.standstill import StandStill
from streamagg.tables.store import PartitionStore

log = logging.getLogger(__name__)

PREDECESSOR = (
    "is still assigned to this worker's previous instance, until the group drops it "
    "(at most the 10 s session timeout)"
)
RESTART_SECONDS = 5.0


class PartitionReader:
    """A query's view of one active partition: its local copy, for as long as the partition
    stays the same active one here (a rebalance or a failure in between ends the read)."""

    def __init__(self, state: StateLayer, owned: OwnedPartition) -> None:
        self._state = state
        self._owned = owned

    def scan(self, low: bytes, high: bytes) -> Iterator[tuple[bytes, bytes]]:
        return self._store().scan(low, high)

    def get(self, key: bytes) -> bytes | None:
        return self._store().get(key)

    def _store(self) -> PartitionStore:
        owned = self._owned
        if self._state.owned.get(owned.number) is not owned or owned.status is not Status.ACTIVE:
            raise Unavailable(
                "this customer's partition moved or stopped while it was being read; retry"
            )
        assert owned.store is not None
        return owned.store


class StateLayer(ConsumerRebalanceListener):
    def __init__(
        self, settings: Settings, metrics: Metrics, handler: BatchHandler, sweeper: RetentionSweeper
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.lag = LagSeries(metrics.consumer_lag)
        self.topic = settings.batches_topic
        self._lost = metrics.messages_lost.labels(topic=self.topic)
        self.changelog = settings.changelog_topic
        self.assignor = OwnershipAssignor(
            settings.canonical_url, self.topic, settings.standby_replicas, self._warm_partitions
        )
        self.owned: dict[int, OwnedPartition] = {}
        self.stores: dict[int, PartitionStore] = {}
        self.cycles = Cycles(self.changelog, metrics, handler, sweeper, self._stop)
        self.lock = asyncio.Lock()
        self.epoch = 0  # bumped by every rebalance: a poll from an older epoch is dropped
        self.rebalancing = True
        self.consumer: AIOKafkaConsumer | None = None
        self.follower = StandbyFollower(settings, self._store)
        self._stopping = False
        self.standstill = StandStill(SESSION_TIMEOUT_MS / 1000)
        self._last_offsets_commit = 0.0

    # -- queries ----------------------------------------------------------------------------

    def reader(self, partition: int) -> PartitionReader:
        """What a query reads; NotOwner or Unavailable when this worker cannot answer."""
        owned = self.owned.get(partition)
        if owned is not None and owned.status is Status.ACTIVE and owned.store is not None:
            return PartitionReader(self, owned)
        if owned is not None:
            raise Unavailable(f"this customer's partition is {owned.reason}; retry shortly")
        if self.rebalancing:
            raise Unavailable("partitions are being rebalanced; retry shortly")
        if partition in self._held_by_predecessor():
            raise Unavailable(f"this customer's partition {PREDECESSOR}; retry shortly")
        raise NotOwner(partition)

    def owner_url(self, partition: int) -> str | None:
        url = self.assignor.ownership.owners.get(partition)
        return None if url == self.settings.canonical_url else url

    def readiness(self) -> tuple[bool, str]:
        if self.consumer is None:
            return False, "connecting to Kafka (batch topic)"
        if self.standstill.frozen():
            return False, "this worker was frozen past its group session; rejoining the group"
        if self.rebalancing:
            return False, "partitions are being rebalanced"
        for number in sorted(self.owned):
            owned = self.owned[number]
            if owned.status is not Status.ACTIVE:
                return False, f"partition {number} is {owned.reason}"
        held = self._held_by_predecessor()
        if held:
            return False, f"partitions {sorted(held)} {PREDECESSOR}"
        return True, "ready"

    def _held_by_predecessor(self) -> set[int]:
        """Partitions the group gave to this worker's URL but not to this process: a previous
        instance (killed, not yet dropped by the group) holds them until its session expires."""
        url = self.settings.canonical_url
        owners = self.assignor.ownership.owners
        return {p for p, owner in owners.items() if owner == url and p not in self.owned}

    # -- running ----------------------------------------------------------------------------

    def stop(self) -> None:
        self._stopping = True
        self.follower.stop()

    async def run(self) -> None:
        follower = asyncio.create_task(self.follower.run())
        clock = asyncio.create_task(self.standstill.run())
        try:
            while not self._stopping:
                try:
                    await self._run_consumer()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.error(
                        "state: consumer of %s failed (%r); restarting in %.0f s",
                        self.topic,
                        exc,
                        RESTART_SECONDS,
                    )
                    await asyncio.sleep(RESTART_SECONDS)
        finally:
            follower.cancel()
            clock.cancel()
            await asyncio.gather(follower, clock, return_exceptions=True)

    async def close(self) -> None:
        async with self.lock:
            await self._release_all()
        await self.follower.close()
        for store in self.stores.values():
            store.close()
        self.stores.clear()

    async def _run_consumer(self) -> None:
        consumer = group_reader(
            self.settings,
            f"{self.settings.app_id}-state",
            partition_assignment_strategy=(self.assignor,),
            auto_offset_reset="none",  # (a position out of range: partition.out_of_range)
        )
        consumer.subscribe([self.topic], listener=self)
        self.rebalancing = True
        self.consumer = consumer  # the listener may be called as soon as it starts
        try:
            await consumer.start()
            while not self._stopping:
                self._resume_recovered(consumer)
                self._retry_stopped()
                epoch = self.epoch
                try:
                    polled = await consumer.getmany(timeout_ms=200, max_records=50_000)
                except (OffsetOutOfRangeError, NoOffsetForPartitionError) as exc:
                    async with self.lock:
                        await out_of_range(consumer, self.owned, exc, self._lost, self._stop)
                    continue
                async with self.lock:
                    if epoch != self.epoch:
                        # Read across a rebalance: every partition it gave is paused until it is
                        # recovered and sought to the state's offset; nothing read here counts.
                        continue
                    if polled:
                        await self.cycles.run(self.owned, polled)
                        await self._set_lag()
                    await self._maintenance(consumer)
        finally:
            async with self.lock:
                await self._release_all()
                self.consumer = None
            with contextlib.suppress(KafkaError, OSError):
                await consumer.stop()

    # -- rebalances (aiokafka calls these between polls) --------------------------------------

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        async with self.lock:  # wait for the cycle in flight
            self.epoch += 1
            self.rebalancing = True
            await self._release_all()

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        consumer = self.consumer
        assert consumer is not None
        tps = list(assigned)
        consumer.pause(*tps)  # nothing is read before the partition is recovered
        for tp in tps:  # (a position of its own, sought again as it resumes: _resume_recovered)
            consumer.seek(tp, 0)
        self.epoch += 1
        # The follower lets go of partitions owned here now before their recovery starts.
        ownership = self.assignor.ownership
        await self.follower.follow(ownership.standby - {tp.partition for tp in tps})
        for tp in tps:
            owned = OwnedPartition(tp.partition)
            self.owned[tp.partition] = owned
            owned.recovery = asyncio.create_task(self._recover(owned))
        self.rebalancing = False
        self.standstill.reassigned()
        log.info(
            "state: owning partitions %s of %s (generation %d)",
            sorted(self.owned),
            self.topic,
            self.assignor.ownership.generation,
        )

    # -- partition lifecycle ----------------------------------------------------------------

    def _store(self, partition: int) -> PartitionStore:
        store = self.stores.get(partition)
        if store is None:
            store = self.stores[partition] = PartitionStore(self._store_path(partition))
        return store

    def _store_path(self, partition: int) -> Path:
        return self.settings.data_dir / "state" / self.settings.app_id / f"partition-{partition}"

    def _warm_partitions(self) -> set[int]:
        """Partitions with a local copy on disk: cheap to take over here."""
        folder = self._store_path(0).parent
        if not folder.is_dir():
            return set()
        return {int(p.name.rsplit("-", 1)[1]) for p in folder.glob("partition-*")}

    async def _recover(self, owned: OwnedPartition) -> None:
        started = time.monotonic()
        try:
            owned.store = self._store(owned.number)
            read = await recover(
                owned,
                self.settings,
                TopicPartition(self.changelog, owned.number),
                TopicPartition(self.topic, owned.number),
                self._lost,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._stop(owned, f"recovery failed: {exc!r}")
            return
        owned.recovered = True
        log.info(
            "state: partition %d recovered (%d changelog records in %.1f s), continuing at "
            "batch offset %d",
            owned.number,
            read,
            time.monotonic() - started,
            owned.next_offset,
        )

    def _resume_recovered(self, consumer: AIOKafkaConsumer) -> None:
        for owned in self.owned.values():
            if owned.recovered and owned.status is not Status.ACTIVE:
                tp = TopicPartition(self.topic, owned.number)
                consumer.seek(tp, owned.next_offset)
                consumer.resume(tp)
                owned.recovered = False
                owned.status = Status.ACTIVE
                owned.reason = "active"
                self.metrics.partition_stopped.labels(partition=str(owned.number)).set(0)

    def _retry_stopped(self) -> None:
        now = time.monotonic()
        for owned in self.owned.values():
            if owned.status is Status.STOPPED and now >= owned.retry_at:
                owned.status = Status.RECOVERING
                owned.reason = f"recovering after a failure ({owned.cause})"
                owned.recovery = asyncio.create_task(self._recover(owned))

    def _stop(self, owned: OwnedPartition, reason: str) -> None:
        if self.consumer is not None:
            with contextlib.suppress(Exception):  # no longer assigned: nothing to pause
                self.consumer.pause(TopicPartition(self.topic, owned.number))
        owned.stop(reason)
        self.metrics.partition_stopped.labels(partition=str(owned.number)).set(1)
        self.metrics.state_transactions.labels(outcome="failed").inc()
        asyncio.get_running_loop().create_task(owned.drop_producer())

    async def _release_all(self) -> None:
        await self.cycles.commits.settle_all()  # (a partition's producer is in use until then)
        owned, self.owned = self.owned, {}
        await asyncio.gather(*(o.release() for o in owned.values()), return_exceptions=True)
        for number in owned:
            self.lag.forget(self.topic, number)
            with contextlib.suppress(KeyError):
                self.metrics.partition_stopped.remove(str(number))

    async def _maintenance(self, consumer: AIOKafkaConsumer) -> None:
        """Sweep partitions that had no batch for a while; publish the group's offsets."""
        await self.cycles.sweep_idle(self.owned)
        now = time.monotonic()
        if now - self._last_offsets_commit >= MAINTENANCE_EVERY_S / 6:
            self._last_offsets_commit = now
            # For operators' tools only (lag per group): the state's own offsets rule.
            offsets = {
                TopicPartition(self.topic, o.number): o.next_offset
                for o in self.owned.values()
                if o.status is Status.ACTIVE
            }
            if offsets:
                with contextlib.suppress(KafkaError):
                    await consumer.commit(offsets)
            await self._set_lag()

    async def _set_lag(self) -> None:
        consumer = self.consumer
        if consumer is None:
            return
        for owned in list(self.owned.values()):
            if owned.status is not Status.ACTIVE:
                continue
            tp = TopicPartition(self.topic, owned.number)
            # The position, not the state's next offset: transaction markers take offsets too.
            try:
                position = max(owned.next_offset, await consumer.position(tp))
            except IllegalStateError:  # no longer assigned
                continue
            self.lag.show_position(consumer, tp, position)
