"""The ingest stage: raw CDR messages in, DLQ for rejects, per-customer batches out.

Faust pays tens of microseconds per event, so CDRs do not become Faust events one by one. This
stage reads `cdr-events` in large polls with aiokafka, decodes and validates every message, and
sends the accepted CDRs on as a few compact batch messages, one per customer partition. Each input
partition's share of a poll — its DLQ records, its batches and its new input offset — is one Kafka
transaction of that partition's own transactional id: it lands whole or not at all, and a stage
that lost the partition to another worker is fenced. Readers of the batch topic and the DLQ use
read_committed, so every CDR message is in exactly one of them, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import (
    AIOKafkaConsumer,
    AIOKafkaProducer,
    ConsumerRecord,
    TopicPartition,
)
from aiokafka.errors import KafkaError, NoOffsetForPartitionError, OffsetOutOfRangeError

from streamagg.agents.dead_letters import dead_letter
from streamagg.agents.ingest_partitions import LagSeriesListener, TransactionalPartitions
from streamagg.batches import BATCH_HEADERS, Batch, Record, split_into_batches
from streamagg.cdr import Rejection, TimePolicy, decode_cdr
from streamagg.failpoints import failpoint
from streamagg.kafka_clients import (
    INPUT_METADATA_MAX_AGE_MS,
    MAX_BATCH_BYTES,
    group_reader,
    kafka_failure,
)
from streamagg.metrics import Metrics
from streamagg.settings import Settings

log = logging.getLogger(__name__)

Polled = dict[TopicPartition, list[ConsumerRecord[Any, Any]]]

RETRY_SECONDS = 5.0


# A message's Kafka time drives the dedup horizon and the closing of hours in the state. One
# stamped far ahead (a producer with a broken clock, or a hostile one) would move the newest
# message time of its partition past every id within the horizon and expire them: it is held
# to at most this much past the ingest's clock (less than the slack the state keeps ids for
# beyond the horizon, tables/retention.py, so no id within the horizon expires early).
MESSAGE_TIME_AHEAD_MAX_S = 3600


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
    """Decode every message; accepted CDRs get their DID owner as of now, and their message
    time held to at most MESSAGE_TIME_AHEAD_MAX_S past now (now when they have none)."""
    result = Triage()
    now_ms = int(now * 1000)
    latest_ms = now_ms + MESSAGE_TIME_AHEAD_MAX_S * 1000
    for message in messages:
        value = message.value if message.value is not None else b""
        decoded = decode_cdr(value, now=now, policy=policy)
        if isinstance(decoded, Rejection):
            result.rejects.append((message, decoded.reason))
            continue
        if decoded.cli:
            decoded.did_owner = did_owner(decoded.cli)
        # (-1: a message without a time, as producers of the oldest message format send)
        stamp = min(message.timestamp, latest_ms) if message.timestamp > 0 else now_ms
        result.records.append(Record(message.offset, stamp, decoded))
    return result


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
        self.lock = asyncio.Lock()
        self.epoch = 0
        self.group_id = f"{settings.app_id}-ingest"
        self.lag_listener: LagSeriesListener = LagSeriesListener(metrics.consumer_lag)
        self._stopping = False
        metrics.messages_lost.labels(topic=settings.topic)  # (at 0 from the start: the alert)

    def stop(self) -> None:
        self._stopping = True

    def note_deleted(self, tp: TopicPartition, offset: int, first: int) -> None:
        """The input partition's offsets [offset, first) were deleted before they were read."""
        log.error(
            "ingest: %s[%d] messages [%d, %d) were deleted by the topic's retention before they "
            "were read; their CDRs are missing from the reports",
            tp.topic,
            tp.partition,
            offset,
            first,
        )
        self.metrics.messages_lost.labels(topic=tp.topic).inc(first - offset)

    async def run(self) -> None:
        while not self._stopping:
            try:
                await self._run_once()
            except (KafkaError, OSError) as exc:
                self.running.clear()
                log.warning(
                    "ingest: %s; retrying in %.0f s",
                    kafka_failure(self.settings.bootstrap_servers, exc),
                    RETRY_SECONDS,
                )
                await asyncio.sleep(RETRY_SECONDS)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug must not stop ingestion for good: log it whole, start over. The poll
                # that failed is read again (its transaction was not committed).
                self.running.clear()
                log.exception("ingest: unexpected error; restarting in %.0f s", RETRY_SECONDS)
                await asyncio.sleep(RETRY_SECONDS)

    async def _run_once(self) -> None:
        s = self.settings
        # Positions the topic's retention deleted raise OffsetOutOfRangeError (to be counted)
        # instead of being moved silently to the first offset.
        consumer = group_reader(
            s,
            self.group_id,
            metadata_max_age_ms=INPUT_METADATA_MAX_AGE_MS,
            auto_offset_reset="none",
        )
        partitions = TransactionalPartitions(self, consumer)
        self.lag_listener = partitions
        consumer.subscribe([s.topic], listener=partitions)
        try:
            await consumer.start()
            self.running.set()
            while not self._stopping:
                if partitions.failure is not None:
                    raise partitions.failure
                epoch = self.epoch
                try:
                    polled = await self._poll(consumer)
                except (OffsetOutOfRangeError, NoOffsetForPartitionError) as exc:
                    # Nothing of this poll is forwarded: every partition reads again from its
                    # committed offset. (No offset: the fetcher looked for a new partition's
                    # position before the listener sought it there; it is sought now.)
                    partitions.rewind(partitions.next_offsets)
                    if isinstance(exc, OffsetOutOfRangeError):
                        await partitions.skip_deleted(exc.args[0])
                    continue
                async with self.lock:
                    if epoch != self.epoch:
                        # A rebalance ran during the poll (maybe between two of its fetches):
                        # some records predate it, others follow its seeks. Drop them all and
                        # read on from what is committed.
                        partitions.rewind(polled)
                    elif polled:
                        await self._forward(consumer, partitions, polled)
        finally:
            self.running.clear()
            async with self.lock:
                self.epoch += 1
                # Closing the consumer revokes nothing through the listener: drop the series
                # here, the next consumer may be given other partitions.
                await LagSeriesListener.on_partitions_revoked(partitions, list(partitions.owned))
                await partitions.close()
            with contextlib.suppress(KafkaError, OSError):
                await consumer.stop()

    async def _poll(self, consumer: AIOKafkaConsumer) -> Polled:
        """One poll, lingering up to STREAMAGG_INGEST_LINGER_MS for more when it came back small.

        Every batch message costs the report stage a transaction, so a trickle of tiny batches
        costs far more than the same CDRs in a few larger ones.
        """
        limit = self.settings.ingest_max_records
        polled: Polled = await consumer.getmany(timeout_ms=200, max_records=limit)
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
        partitions: TransactionalPartitions,
        polled: dict[TopicPartition, list[ConsumerRecord]],
    ) -> None:
        """Each input partition's share of the poll in one transaction of its own producer:
        its rejects, its batches and its new input offset, all or nothing."""
        now = time.time()
        work = [
            (tp, messages, partitions.producers[tp])
            for tp, messages in polled.items()
            if tp in partitions.next_offsets  # owned, fenced and sought to its committed offset
        ]
        results = await asyncio.gather(
            *(
                self._forward_partition(tp, messages, producer, now)
                for tp, messages, producer in work
            ),
            return_exceptions=True,  # let every transaction finish before giving up
        )
        rejected = sum(r for r in results if isinstance(r, int))
        if rejected:
            self.metrics.cdrs.labels(outcome="rejected").inc(rejected)
        for (tp, messages, _producer), result in zip(work, results, strict=True):
            if isinstance(result, int):
                partitions.next_offsets[tp] = messages[-1].offset + 1
        for result in results:
            if isinstance(result, BaseException):
                raise result
        for tp, messages, _producer in work:
            if tp in partitions.owned:
                partitions.lag.show_position(consumer, tp, messages[-1].offset + 1)

    async def _forward_partition(
        self,
        tp: TopicPartition,
        messages: list[ConsumerRecord],
        producer: AIOKafkaProducer,
        now: float,
    ) -> int:
        s = self.settings
        result = triage(messages, now=now, policy=self.policy, did_owner=self.did_owner)
        source = f"{tp.topic}/{tp.partition}"
        await producer.begin_transaction()
        try:
            for message, reason in result.rejects:
                value, headers = dead_letter(message, reason, source)
                await producer.send(s.dlq_topic, value=value, key=message.key, headers=headers)
            batches = split_into_batches(source, result.records, s.partitions, s.batch_max_cdrs)
            for partition, batch in batches:
                for payload in _encode_bounded(batch):
                    await producer.send(
                        s.batches_topic,
                        value=payload,
                        partition=partition,
                        headers=BATCH_HEADERS,
                    )
            await producer.send_offsets_to_transaction({tp: messages[-1].offset + 1}, self.group_id)
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.abort_transaction(), 10)
            raise
        failpoint("ingest.before-commit")
        await producer.commit_transaction()
        failpoint("ingest.after-commit")
        return len(result.rejects)


def _encode_bounded(batch: Batch) -> list[bytes]:
    """Encode a batch, halving it until every message fits the broker's size limit."""
    payload = batch.encode()
    if len(payload) <= MAX_BATCH_BYTES or len(batch.records) <= 1:
        return [payload]
    middle = len(batch.records) // 2
    first = Batch(batch.source, batch.records[:middle])
    second = Batch(batch.source, batch.records[middle:])
    return _encode_bounded(first) + _encode_bounded(second)
