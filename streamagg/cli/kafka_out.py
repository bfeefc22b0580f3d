"""Send many messages to one Kafka topic, fast, with progress, pacing and a closing summary."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    KafkaError,
)
from aiokafka.partitioner import murmur2
from tqdm import tqdm

from streamagg.cli.replay_progress import Checkpoints
from streamagg.cli.tool_producer import quiet_aiokafka, start_producer
from streamagg.errors import StreamaggError
from streamagg.kafka_clients import (
    stop_quietly,
)
from streamagg.settings import Settings

Message = tuple[bytes | None, bytes]

# Batches are built here, per partition, and handed to the producer whole: far cheaper per
# message than `send()`, which partitions (pure-Python murmur2) and queues one record at a time.
MAX_IN_FLIGHT_BATCHES = 32
FAST_CHUNK = 5000  # messages taken from the source between two yields to the event loop
PACED_TICKS_PER_SECOND = 20
# A transaction holds back what read_committed consumers (the worker's ingest) read of its
# partitions, live CDRs included, until it ends: keep them short.
TRANSACTION_SECONDS = 0.5
COMMIT_TIMEOUT_S = 60.0  # (the transaction timeout: past it, the broker aborts it anyway)
ABORT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class SendSummary:
    """What one run sent; `line()` is the summary printed at the end."""

    topic: str
    sent: int
    seconds: float
    stopped_by: str | None = None  # the signal name when interrupted

    @property
    def messages_per_second(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        text = (
            f"sent {self.sent:,} messages to {self.topic} in {self.seconds:.2f} s "
            f"({self.messages_per_second:,.0f} msgs/s)"
        )
        return text + (f", stopped by {self.stopped_by}" if self.stopped_by else "")


@dataclass
class SendPlan:
    """How to send: pacing, limits and progress display."""

    rate: float = 0.0  # messages per second; 0 = as fast as possible
    total: int | None = None  # expected count, for the progress bar
    time_limit: float | None = None  # stop after this many seconds
    show_progress: bool = False
    label: str = "sending"


def progress_wanted(forced: bool) -> bool:
    """Progress goes to stderr when it is a terminal, or when asked for."""
    return forced or sys.stderr.isatty()


def send_messages(
    settings: Settings, topic: str, messages: Iterable[Message], plan: SendPlan
) -> SendSummary:
    """Send every message (until a limit or SIGINT/SIGTERM) and return the summary."""

    async def source() -> Iterable[Message]:
        return messages

    return asyncio.run(_send_until_stopped(settings, topic, source, plan, None))


def send_in_transactions(
    settings: Settings,
    topic: str,
    source: Callable[[], Any],  # async () → the messages, called once the producer has fenced
    plan: SendPlan,
    checkpoints: Checkpoints,
) -> SendSummary:
    """Like `send_messages`, in transactions that commit ``checkpoints``' position with the
    messages. ``source`` runs after every earlier producer of the transactional id is fenced
    and its open transaction ended, so that it can read the last committed position."""
    return asyncio.run(_send_until_stopped(settings, topic, source, plan, checkpoints))


async def _send_until_stopped(
    settings: Settings,
    topic: str,
    source: Callable[[], Any],
    plan: SendPlan,
    checkpoints: Checkpoints | None,
) -> SendSummary:
    loop = asyncio.get_running_loop()
    stop = _StopFlag()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set, signal.Signals(signum).name)
    try:
        transactional_id = checkpoints.transactional_id if checkpoints else None
        producer = await start_producer(settings, topic, transactional_id)
        sender = _BatchSender(producer, topic, plan, stop, checkpoints)
        try:
            messages = await source()
            with quiet_aiokafka(logging.ERROR):  # retried warnings, e.g. a topic being created
                return await sender.send(messages)
        finally:
            await sender.abort_open_transaction()
            await stop_quietly(producer)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


class _StopFlag:
    """The first SIGINT/SIGTERM stops after the chunk in hand (its transaction committed);
    a second one stops at once, even a commit waiting for the broker."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.again = asyncio.Event()
        self.reason: str | None = None

    def set(self, reason: str) -> None:
        if self.event.is_set():
            self.again.set()
        self.reason = reason
        self.event.set()


class _BatchSender:
    def __init__(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        plan: SendPlan,
        stop: _StopFlag,
        checkpoints: Checkpoints | None = None,
    ) -> None:
        self.producer = producer
        self.topic = topic
        self.plan = plan
        self.stop = stop
        self.checkpoints = checkpoints
        self.in_transaction = False
        self.transaction_started = 0.0
        self.partitions: list[int] = []
        self.partition_of_key: dict[bytes, int] = {}
        self.open_batches: dict[int, Any] = {}
        self.in_flight: deque[asyncio.Future[Any]] = deque()
        self.keyless_partitions = itertools.cycle([0])
        self.keyless_partition = 0

    async def send(self, messages: Iterable[Message]) -> SendSummary:
        self.partitions = sorted(await self.producer.partitions_for(self.topic))
        self.keyless_partitions = itertools.cycle(self.partitions)
        self.keyless_partition = next(self.keyless_partitions)
        plan = self.plan
        paced = plan.rate > 0
        chunk_size = max(1, round(plan.rate / PACED_TICKS_PER_SECOND)) if paced else FAST_CHUNK
        source = iter(messages)
        sent = 0
        started = time.monotonic()
        exhausted = False
        await self._begin_transaction()
        with tqdm(
            total=plan.total or None,
            desc=plan.label,
            unit="msg",
            unit_scale=not plan.total or plan.total >= 100_000,
            file=sys.stderr,
            disable=not plan.show_progress,
        ) as progress:
            while not self.stop.event.is_set():
                if plan.time_limit is not None and time.monotonic() - started >= plan.time_limit:
                    break
                chunk = list(itertools.islice(source, chunk_size))
                if not chunk:
                    exhausted = True
                    break
                for key, value in chunk:
                    await self._append(key, value)
                sent += len(chunk)
                progress.update(len(chunk))
                if self._transaction_due():
                    await self._commit(sent, finished=False)
                    await self._begin_transaction()
                if paced:
                    await self._submit_open_batches()
                    await self._sleep_until(started + sent / plan.rate)
                else:
                    await asyncio.sleep(0)  # let the producer's sender task run
            await self._submit_open_batches()
            await self._drain(0)
            if self.checkpoints is not None and (sent or exhausted):
                await self._commit(sent, finished=exhausted)
        return SendSummary(self.topic, sent, time.monotonic() - started, self.stop.reason)

    async def _begin_transaction(self) -> None:
        if self.checkpoints is not None:
            await self.producer.begin_transaction()
            self.in_transaction = True
            self.transaction_started = time.monotonic()

    def _transaction_due(self) -> bool:
        return (
            self.in_transaction
            and time.monotonic() - self.transaction_started >= TRANSACTION_SECONDS
        )

    async def _commit(self, sent: int, finished: bool) -> None:
        """Commit what was sent with the source's position; ``sent`` counts every message."""
        checkpoints = self.checkpoints
        assert checkpoints is not None and self.in_transaction
        await self._submit_open_batches()
        await self._drain(0)
        offset, metadata = checkpoints.position(finished)
        # aiokafka retries a commit for as long as the coordinator is away: bound it, and let
        # a second Ctrl-C end it (the transaction then commits or is aborted; --resume reads
        # which).
        commit = asyncio.ensure_future(self._commit_offsets(offset, metadata))
        stopped = asyncio.ensure_future(self.stop.again.wait())
        done, _pending = await asyncio.wait(
            {commit, stopped}, timeout=COMMIT_TIMEOUT_S, return_when=asyncio.FIRST_COMPLETED
        )
        stopped.cancel()
        if commit not in done:
            commit.cancel()
            why = f"stopped by {self.stop.reason}" if self.stop.reason else "timed out"
            raise StreamaggError(
                f"committing to {self.topic} {why} after {COMMIT_TIMEOUT_S:.0f} s at most; "
                "whether its last transaction committed is recorded in Kafka"
            )
        try:
            commit.result()
        except KafkaError as exc:
            raise StreamaggError(f"committing to {self.topic} failed: {exc}") from exc
        self.in_transaction = False
        checkpoints.committed(sent, offset, finished)

    async def _commit_offsets(self, offset: int, metadata: str) -> None:
        checkpoints = self.checkpoints
        assert checkpoints is not None
        await self.producer.send_offsets_to_transaction(
            {checkpoints.partition: (offset, metadata)}, checkpoints.group_id
        )
        await self.producer.commit_transaction()

    async def abort_open_transaction(self) -> None:
        """End a transaction cut off by an error, so that read_committed consumers of its
        partitions need not wait for its timeout (best effort: the broker may be gone)."""
        if self.in_transaction:
            self.in_transaction = False
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.producer.abort_transaction(), ABORT_TIMEOUT_S)

    async def _append(self, key: bytes | None, value: bytes) -> None:
        partition = self._partition_for(key)
        batch = self.open_batches.get(partition)
        if batch is None:
            batch = self.open_batches[partition] = self.producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None) is not None:
            return
        await self._submit(partition, batch)
        if key is None:
            # Like Kafka's sticky partitioner: keyless messages fill one batch, then move on.
            self.keyless_partition = partition = next(self.keyless_partitions)
        batch = self.open_batches.get(partition)
        if batch is None:
            batch = self.open_batches[partition] = self.producer.create_batch()
        if batch.append(key=key, value=value, timestamp=None) is None:
            raise StreamaggError(f"a message of {len(value):,} bytes does not fit in one batch")

    def _partition_for(self, key: bytes | None) -> int:
        if key is None:
            return self.keyless_partition
        partition = self.partition_of_key.get(key)
        if partition is None:
            # The same hash as Kafka's default partitioner, so keys land where any client puts them.
            index = (murmur2(key) & 0x7FFFFFFF) % len(self.partitions)
            partition = self.partition_of_key[key] = self.partitions[index]
        return partition

    async def _submit(self, partition: int, batch: Any) -> None:
        del self.open_batches[partition]
        await self._drain(MAX_IN_FLIGHT_BATCHES - 1)
        try:
            future = await self.producer.send_batch(batch, self.topic, partition=partition)
        except KafkaError as exc:
            raise StreamaggError(f"sending to {self.topic} failed: {exc}") from exc
        self.in_flight.append(future)

    async def _submit_open_batches(self) -> None:
        for partition, batch in list(self.open_batches.items()):
            await self._submit(partition, batch)

    async def _drain(self, keep: int) -> None:
        while len(self.in_flight) > keep:
            try:
                await self.in_flight.popleft()
            except KafkaError as exc:
                raise StreamaggError(f"sending to {self.topic} failed: {exc}") from exc

    async def _sleep_until(self, deadline: float) -> None:
        delay = deadline - time.monotonic()
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.event.wait(), delay)
