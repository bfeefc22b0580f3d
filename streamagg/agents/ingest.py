"""The ingest stage: raw CDR messages in, DLQ for rejects, per-customer batches out.

Faust pays tens of microseconds per event, so CDRs do not become Faust events one by one. This
stage reads `cdr-events` in large polls with aiokafka, decodes and validates every message, and
sends the accepted CDRs on as a few compact batch messages, one per customer partition. It commits
its input offsets only once everything it produced is acknowledged (at least once); the report
stage drops CDRs delivered twice by their source offsets (see tables/applier.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRebalanceListener,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.errors import CommitFailedError, KafkaConnectionError, KafkaError
from prometheus_client import Gauge

from streamagg.batches import Batch, Record, split_into_batches
from streamagg.cdr import Rejection, TimePolicy, decode_cdr
from streamagg.metrics import Metrics
from streamagg.settings import Settings

log = logging.getLogger(__name__)

MAX_BATCH_BYTES = 900_000  # under the broker's default 1 MiB message limit
RETRY_SECONDS = 5.0
# A killed worker's partitions wait this long for a new owner: short, for fast recovery.
SESSION_TIMEOUT_MS = 10_000


@dataclass
class Triage:
    """What one poll of one partition turned into."""

    records: list[Record] = field(default_factory=list)
    rejects: list[tuple[ConsumerRecord, str]] = field(default_factory=list)


def triage(
    messages: Sequence[ConsumerRecord],
    *,
    now: float,
    policy: TimePolicy,
    did_owner: Callable[[str], str],
) -> Triage:
    """Decode every message; accepted CDRs get their DID owner as of now."""
    result = Triage()
    for message in messages:
        value = message.value if message.value is not None else b""
        decoded = decode_cdr(value, now=now, policy=policy)
        if isinstance(decoded, Rejection):
            result.rejects.append((message, decoded.reason))
            continue
        if decoded.cli:
            owner = did_owner(decoded.cli)
            if owner:
                decoded = replace(decoded, did_owner=owner)
        result.records.append(Record(message.offset, message.timestamp, decoded))
    return result


class LagSeriesListener(ConsumerRebalanceListener):
    """Keeps the lag series to the partitions this consumer owns.

    The lag gauge is set only for partitions this stage polls; a series left behind for a
    partition now read elsewhere would keep its last value forever (and an alert firing). A
    rebalance revokes partitions while a poll may still be forwarded, so the stage sets a series
    only for a partition in ``owned``.
    """

    def __init__(self, lag: Gauge) -> None:
        self.lag = lag
        self.owned: set[TopicPartition] = set()

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        for tp in revoked:
            self.owned.discard(tp)
            self.lag.remove(tp.topic, str(tp.partition))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        # No series yet: one appears with the first poll of the partition.
        self.owned.update(assigned)


class IngestStage:
    """Runs the ingest loop until stopped; survives an unreachable broker by retrying."""

    def __init__(
        self, settings: Settings, metrics: Metrics, did_owner: Callable[[str], str]
    ) -> None:
        self.settings = settings
        self.metrics = metrics
        self.did_owner = did_owner
        self.policy = TimePolicy(settings.retention_days, settings.future_tolerance_hours)
        self.running = asyncio.Event()
        self.lag_listener = LagSeriesListener(metrics.consumer_lag)
        self._stopping = False

    def stop(self) -> None:
        self._stopping = True

    async def run(self) -> None:
        while not self._stopping:
            try:
                await self._run_once()
            except (KafkaConnectionError, KafkaError, OSError) as exc:
                self.running.clear()
                log.warning(
                    "ingest: cannot use Kafka at %s (%s); retrying in %.0f s",
                    self.settings.bootstrap_servers,
                    exc,
                    RETRY_SECONDS,
                )
                await asyncio.sleep(RETRY_SECONDS)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug must not stop ingestion for good: log it whole, start over. The poll
                # that failed is read again (its offsets were not committed).
                self.running.clear()
                log.exception("ingest: unexpected error; restarting in %.0f s", RETRY_SECONDS)
                await asyncio.sleep(RETRY_SECONDS)

    async def _run_once(self) -> None:
        s = self.settings
        common = {"bootstrap_servers": s.bootstrap_servers, **s.kafka_client_options()}
        consumer = AIOKafkaConsumer(
            group_id=f"{s.app_id}-ingest",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=8 * 1024 * 1024,
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=SESSION_TIMEOUT_MS // 3,
            fetch_max_bytes=32 * 1024 * 1024,
            **common,
        )
        self.lag_listener = LagSeriesListener(self.metrics.consumer_lag)
        consumer.subscribe([s.topic], listener=self.lag_listener)
        producer = AIOKafkaProducer(
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            max_batch_size=1024 * 1024,
            max_request_size=4 * 1024 * 1024,
            **common,
        )
        await producer.start()
        try:
            await consumer.start()
            try:
                self.running.set()
                while not self._stopping:
                    polled = await self._poll(consumer)
                    if polled:
                        await self._forward(consumer, producer, polled)
            finally:
                self.running.clear()
                await consumer.stop()
                # Closing the consumer revokes nothing through the listener: drop the series
                # here, the next consumer may be given other partitions.
                await self.lag_listener.on_partitions_revoked(list(self.lag_listener.owned))
        finally:
            await producer.stop()

    async def _poll(self, consumer: AIOKafkaConsumer) -> dict[TopicPartition, list[ConsumerRecord]]:
        """One poll, lingering up to STREAMAGG_INGEST_LINGER_MS for more when it came back small.

        Every batch message costs the report stage a rewrite of each bucket it touches, so a
        trickle of tiny batches costs far more than the same CDRs in a few larger ones.
        """
        limit = self.settings.ingest_max_records
        polled = await consumer.getmany(timeout_ms=200, max_records=limit)
        if not polled:
            return polled
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.ingest_linger_ms / 1000
        count = sum(len(messages) for messages in polled.values())
        while count < limit and (left := deadline - loop.time()) > 0:
            more = await consumer.getmany(
                timeout_ms=int(left * 1000) + 1, max_records=limit - count
            )
            for tp, messages in more.items():
                polled.setdefault(tp, []).extend(messages)
                count += len(messages)
        return polled

    async def _forward(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        polled: dict[TopicPartition, list[ConsumerRecord]],
    ) -> None:
        s = self.settings
        now = time.time()
        sends: list[asyncio.Future[object]] = []
        offsets: dict[TopicPartition, int] = {}
        for tp, messages in polled.items():
            result = triage(messages, now=now, policy=self.policy, did_owner=self.did_owner)
            source = f"{tp.topic}/{tp.partition}"
            for message, reason in result.rejects:
                headers = [
                    ("error", reason.encode()),
                    ("source", f"{source}/{message.offset}".encode()),
                ]
                sends.append(
                    await producer.send(
                        s.dlq_topic, value=message.value or b"", key=message.key, headers=headers
                    )
                )
            batches = split_into_batches(source, result.records, s.partitions, s.batch_max_cdrs)
            for partition, batch in batches:
                for payload in _encode_bounded(batch):
                    sends.append(
                        await producer.send(s.batches_topic, value=payload, partition=partition)
                    )
            if result.rejects:
                self.metrics.cdrs.labels(outcome="rejected").inc(len(result.rejects))
            offsets[tp] = messages[-1].offset + 1
            highwater = consumer.highwater(tp)
            # A rebalance during the sends above may have revoked tp: set no series for it.
            if highwater is not None and tp in self.lag_listener.owned:
                self.metrics.consumer_lag.labels(topic=tp.topic, partition=str(tp.partition)).set(
                    max(0, highwater - offsets[tp])
                )
        if sends:
            await asyncio.gather(*sends)
        try:
            await consumer.commit(offsets)
        except CommitFailedError as exc:
            # A rebalance moved the partitions; their new owner reads them again and the
            # report stage drops what was already delivered.
            log.info("ingest: commit skipped after a rebalance (%s)", exc)


def _encode_bounded(batch: Batch) -> list[bytes]:
    """Encode a batch, halving it until every message fits the broker's size limit."""
    payload = batch.encode()
    if len(payload) <= MAX_BATCH_BYTES or len(batch.records) <= 1:
        return [payload]
    middle = len(batch.records) // 2
    first = Batch(batch.source, batch.records[:middle])
    second = Batch(batch.source, batch.records[middle:])
    return _encode_bounded(first) + _encode_bounded(second)
