"""The report agent: one Faust event per batch of CDRs, folded into the report tables."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

import faust

from streamagg.batches import Batch
from streamagg.metrics import Metrics
from streamagg.reports import REPORTS
from streamagg.settings import Settings
from streamagg.tables.applier import BatchApplier
from streamagg.tables.changelog import ChangelogWriter
from streamagg.tables.faust_tables import ReportTables
from streamagg.tables.retention import RetentionSweeper

log = logging.getLogger(__name__)


def register_aggregate_agent(
    app: faust.App, settings: Settings, tables: ReportTables, metrics: Metrics
) -> Any:
    """Declare the batch topic and the agent that applies each batch to the tables."""
    topic = app.topic(
        settings.batches_topic,
        partitions=settings.partitions,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    applier = BatchApplier(REPORTS, settings.dedup_hours * 3600)
    sweeper = RetentionSweeper(settings.retention_days, settings.dedup_hours * 3600)
    writer = ChangelogWriter(settings)
    newest: dict[int, int] = {}  # newest CDR message timestamp (ms) per partition

    async def aggregate(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            message = event.message
            batch = Batch.decode(event.value)
            outcome = applier.apply(
                message.partition,
                message.offset,
                batch,
                tables.stores_for(message.partition, writer),
            )
            now = time.time()
            try:
                newest[message.partition] = max(
                    newest.get(message.partition, 0), outcome.newest_timestamp_ms
                )
                sweeper.step(tables, message.partition, now, newest[message.partition], writer)
            except Exception:
                # Expiry is housekeeping: a failure there must never hold up the reports.
                log.exception("retention sweep of partition %d failed", message.partition)
            # The batch is acknowledged (and its offset committed) only once the changelog holds
            # every change it made.
            await writer.flush()
            _record(metrics, outcome, batch, time.time())
            highwater = app.consumer.highwater(message.tp)
            if highwater is not None:
                metrics.consumer_lag.labels(
                    topic=message.topic, partition=str(message.partition)
                ).set(max(0, highwater - message.offset - 1))

    async def forget_lag_of_revoked(sender: Any, *args: Any, **kwargs: Any) -> None:
        revoked: set[Any] = args[0] if args else kwargs.get("revoked", set())
        # A partition that moved to another worker is reported there; a stale series here
        # would keep its last value (and a lag alert) forever.
        for tp in revoked:
            if tp.topic == settings.batches_topic:
                with contextlib.suppress(KeyError):
                    metrics.consumer_lag.remove(tp.topic, str(tp.partition))

    app.on_partitions_revoked.connect(forget_lag_of_revoked)  # type: ignore[arg-type]
    return app.agent(topic, name="aggregate")(aggregate)


def _record(metrics: Metrics, outcome: Any, batch: Batch, now: float) -> None:
    metrics.count_accepted(outcome.accepted)
    if outcome.duplicates:
        metrics.cdrs.labels(outcome="duplicate").inc(outcome.duplicates)
    metrics.batches_applied.inc()
    metrics.table_keys_written.inc(outcome.keys_written)
    observe = metrics.processing_latency.observe
    for record in batch.records:
        observe(max(0.0, now - record.timestamp_ms / 1000))
