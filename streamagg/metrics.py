"""Every business metric of SPEC §4, declared in one place on a registry passed in."""

from __future__ import annotations

import bisect
import collections
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streamagg.cdr import Cdr

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LOOP_LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
OTHER_PREFIXES = "__other__"
DEFAULT_MAX_PREFIXES = 1_000


class BulkHistogram(Histogram):
    """A Histogram that takes a batch's observations at once: one increment per bucket
    touched instead of one observe() (and its lock) per CDR. Relies on the bucket and sum
    values of prometheus_client's Histogram; tests/unit/test_metrics_bounds.py checks the
    exposition equals one observe() per value."""

    def observe_many(self, amounts: Sequence[float]) -> None:
        self._raise_if_not_observable()  # type: ignore[no-untyped-call]
        bounds = self._upper_bounds  # ascending, +Inf last: observe()'s first bound >= amount
        per_bucket = collections.Counter(bisect.bisect_left(bounds, a) for a in amounts)
        for index, count in per_bucket.items():
            self._buckets[index].inc(count)
        self._sum.inc(math.fsum(amounts))


@dataclass(frozen=True)
class Metrics:
    cdrs: Counter
    calls: Counter
    calls_answered: Counter
    calls_effective: Counter
    answered_seconds: Counter
    consumer_lag: Gauge
    processing_latency: BulkHistogram
    batches_applied: Counter
    table_keys_written: Counter
    partition_stopped: Gauge
    state_transactions: Counter
    batches_skipped: Counter
    messages_lost: Counter
    tokens_file_valid: Gauge
    prefixes_folded: Counter
    event_loop_lag: Histogram
    max_prefixes: int = DEFAULT_MAX_PREFIXES
    _prefixes: set[str] = field(default_factory=set)

    def prefix_label(self, tech_prefix: str) -> str:
        """The label of a tech prefix: itself for the first max_prefixes seen by this worker,
        `__other__` after that (a CDR chooses its prefix: the label set must stay bounded)."""
        if tech_prefix in self._prefixes:
            return tech_prefix
        if len(self._prefixes) < self.max_prefixes:
            self._prefixes.add(tech_prefix)
            return tech_prefix
        return OTHER_PREFIXES

    def count_accepted(self, cdrs: Iterable[Cdr]) -> None:
        """Add accepted calls to the per-tech-prefix counters, one labels() call per prefix."""
        per_prefix: dict[str, list[int]] = {}
        accepted = 0
        for cdr in cdrs:
            accepted += 1
            label = self.prefix_label(cdr.tech_prefix)
            totals = per_prefix.get(label)
            if totals is None:
                totals = per_prefix[label] = [0, 0, 0, 0]
            totals[0] += 1
            if cdr.answered:
                totals[1] += 1
                totals[2] += cdr.duration
            if cdr.effective:
                totals[3] += 1
        if accepted:
            self.cdrs.labels(outcome="accepted").inc(accepted)
        for prefix, (calls, answered, micros, effective) in per_prefix.items():
            if prefix == OTHER_PREFIXES:
                self.prefixes_folded.inc(calls)
            self.calls.labels(tech_prefix=prefix).inc(calls)
            if answered:
                self.calls_answered.labels(tech_prefix=prefix).inc(answered)
                self.answered_seconds.labels(tech_prefix=prefix).inc(micros / 1_000_000)
            if effective:
                self.calls_effective.labels(tech_prefix=prefix).inc(effective)


def create_metrics(
    registry: CollectorRegistry, max_prefixes: int = DEFAULT_MAX_PREFIXES
) -> Metrics:
    """Declare all streamagg metrics on registry (tests pass a fresh CollectorRegistry)."""
    metrics = Metrics(
        cdrs=Counter("streamagg_cdrs", "CDR messages by outcome.", ["outcome"], registry=registry),
        calls=Counter(
            "streamagg_calls",
            "Accepted call attempts per tech prefix.",
            ["tech_prefix"],
            registry=registry,
        ),
        calls_answered=Counter(
            "streamagg_calls_answered",
            "Answered calls per tech prefix.",
            ["tech_prefix"],
            registry=registry,
        ),
        calls_effective=Counter(
            "streamagg_calls_effective",
            "Effective calls per tech prefix: answered or ended by the called user (final SIP "
            "code 200, 486, 600, 603, 480 or 487; ITU-T E.425), the numerator of NER.",
            ["tech_prefix"],
            registry=registry,
        ),
        answered_seconds=Counter(
            "streamagg_answered_seconds",
            "Billed seconds of answered calls per tech prefix.",
            ["tech_prefix"],
            registry=registry,
        ),
        consumer_lag=Gauge(
            "streamagg_consumer_lag_messages",
            "Messages not yet processed: end offset minus position, per partition.",
            ["topic", "partition"],
            registry=registry,
        ),
        processing_latency=BulkHistogram(
            "streamagg_processing_latency_seconds",
            "From a CDR message's Kafka timestamp until its table updates are visible.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        batches_applied=Counter(
            "streamagg_batches_applied",
            "Internal CDR batches applied to the report tables.",
            registry=registry,
        ),
        table_keys_written=Counter(
            "streamagg_table_keys_written",
            "Report table keys written (changelog messages).",
            registry=registry,
        ),
        partition_stopped=Gauge(
            "streamagg_partition_stopped",
            "1 while an owned batch partition is stopped by a failure (retried with a backoff).",
            ["partition"],
            registry=registry,
        ),
        state_transactions=Counter(
            "streamagg_state_transactions",
            "Transactions of the report state by outcome (failed: the partition stopped).",
            ["outcome"],
            registry=registry,
        ),
        batches_skipped=Counter(
            "streamagg_batches_skipped",
            "Batch messages read again below the state's own offset, skipped (expected: 0).",
            registry=registry,
        ),
        messages_lost=Counter(
            "streamagg_messages_lost",
            "Messages (offsets) a topic's retention deleted before streamagg read them: the input "
            "topic's CDRs, or the batch topic's accepted CDRs, missing from the reports "
            "(expected: 0).",
            ["topic"],
            registry=registry,
        ),
        tokens_file_valid=Gauge(
            "streamagg_tokens_file_valid",
            "0 while the tokens file is missing (every token revoked) or cannot be used (the "
            "tokens of the last good file are in use), 1 otherwise.",
            registry=registry,
        ),
        prefixes_folded=Counter(
            "streamagg_metrics_prefixes_folded",
            f"Calls counted under tech_prefix={OTHER_PREFIXES} because the worker already "
            "exports STREAMAGG_METRICS_MAX_PREFIXES prefixes.",
            registry=registry,
        ),
        event_loop_lag=Histogram(
            "streamagg_event_loop_lag_seconds",
            "How late the worker's event loop ran a timer: how long one step held it (queries, "
            "/readyz and Kafka heartbeats wait that long).",
            buckets=LOOP_LAG_BUCKETS,
            registry=registry,
        ),
        max_prefixes=max_prefixes,
    )
    for outcome in ("committed", "failed"):
        metrics.state_transactions.labels(outcome=outcome)
    for outcome in ("accepted", "rejected", "duplicate"):
        metrics.cdrs.labels(outcome=outcome)
    return metrics
