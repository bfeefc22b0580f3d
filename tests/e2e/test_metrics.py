"""/metrics of a worker counts exactly what went through the real broker (SPEC §4).

A hand-made mix — three tech prefixes including "", calls answered by sip_code 200 and by
duration without a sip_code, unanswered ones, byte-identical re-sends and invalid messages —
and every expected value computed by hand below.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import fields
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from streamagg.batches import customer_partition
from streamagg.settings import Settings
from tests.support.worker import WorkerProcess, wait_for

pytestmark = pytest.mark.timeout(180)

Labels = tuple[tuple[str, str], ...]


def cdr(callid: str, customer: str = "m1", **fields: object) -> bytes:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    return orjson.dumps(
        {"callid": callid, "dt": start.isoformat(), "customer_id": customer, **fields}
    )


# tech prefix "123#": 5 calls (4 of m1, 1 of m2), answered a1 (200), a2 (duration, no sip_code),
# d1 (200); a3 and a4 are not (a4 talked 5 s but its sip_code 487 decides).
A1 = cdr("a1", tech_prefix="123#", sip_code=200, duration=30.5)
A2 = cdr("a2", tech_prefix="123#", duration=12)
A3 = cdr("a3", tech_prefix="123#", sip_code=486, duration=0)
A4 = cdr("a4", tech_prefix="123#", sip_code=487, duration=5)
D1 = cdr("a1", customer="m2", tech_prefix="123#", sip_code=200, duration=1)  # other customer
# tech prefix "77*": 3 calls, answered b1 only (sip_code 200 with 0 s of talk time).
B1 = cdr("b1", tech_prefix="77*", sip_code=200, duration=0)
B2 = cdr("b2", tech_prefix="77*", duration=0)
B3 = cdr("b3", tech_prefix="77*")
# tech prefix "" (absent, null, empty): 3 calls, answered c1 (duration) and c2 (200).
C1 = cdr("c1", duration=60, customer_charge="0.5")
C2 = cdr("c2", tech_prefix=None, sip_code=200, duration=7.25)
C3 = cdr("c3", tech_prefix="", sip_code=503)

VALID = [A1, A2, A3, A4, D1, B1, B2, B3, C1, C2, C3]
DUPLICATES = [A1, A1, C1]  # re-sent byte for byte, after their originals
INVALID = [
    b"not json",
    b"[1, 2, 3]",
    orjson.dumps({"dt": "2026-01-01T00:00:00Z", "customer_id": "m1"}),  # no callid
    cdr("neg", customer_charge=-1),
]

EXPECTED_CDRS = {"accepted": 11, "duplicate": 3, "rejected": 4}
EXPECTED_CALLS = {"123#": 5, "77*": 3, "": 3}
EXPECTED_ANSWERED = {"123#": 3, "77*": 1, "": 2}
# Effective (NER): answered, or ended by the callee (486 busy, 487 cancelled); not 503, and
# not a call without a sip_code and without talk time.
EXPECTED_EFFECTIVE = {"123#": 5, "77*": 1, "": 2}
EXPECTED_SECONDS = {"123#": 30.5 + 12 + 1, "77*": 0.0, "": 60 + 7.25}


def samples(text: str) -> dict[str, dict[Labels, float]]:
    """Sample name -> labels -> value, from the Prometheus exposition text."""
    out: dict[str, dict[Labels, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


def by_label(series: dict[Labels, float], name: str) -> dict[str, float]:
    return {dict(labels)[name]: value for labels, value in series.items()}


async def produce_in_order(bootstrap: str, topic: str, values: list[bytes]) -> set[int]:
    """Send one message at a time (each acknowledged before the next); return the partitions."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    partitions = set()
    try:
        for value in values:
            metadata = await producer.send_and_wait(topic, value)
            partitions.add(metadata.partition)
    finally:
        await producer.stop()
    return partitions


async def test_metrics_count_exactly_the_cdrs_sent(
    worker_factory: Callable[..., WorkerProcess], kafka_bootstrap: str
) -> None:
    worker = worker_factory()
    worker.wait_ready()
    topic = worker.env["STREAMAGG_TOPIC"]
    batches_topic = f"{worker.env['STREAMAGG_APP_ID']}-cdr-batches"

    before = samples(worker.get("/metrics").text)
    assert by_label(before["streamagg_cdrs_total"], "outcome") == dict.fromkeys(EXPECTED_CDRS, 0.0)
    assert "streamagg_calls_total" not in before

    used = await produce_in_order(kafka_bootstrap, topic, VALID + INVALID + DUPLICATES)
    assert sum(EXPECTED_CDRS.values()) == len(VALID + INVALID + DUPLICATES)

    def quiet() -> bool:
        """Every CDR counted and every lag series of both stages at 0."""
        now = samples(worker.get("/metrics").text)
        counted = sum(now["streamagg_cdrs_total"].values())
        lag = now.get("streamagg_consumer_lag_messages", {})
        topics = {dict(labels)["topic"] for labels in lag}
        return (
            counted >= len(VALID + INVALID + DUPLICATES)
            and {topic, batches_topic} <= topics
            and all(value == 0 for value in lag.values())
        )

    wait_for(quiet, 90, "all CDRs counted and no consumer lag")
    time.sleep(1.5)  # anything counted twice would show up by now
    metrics = samples(worker.get("/metrics").text)

    assert by_label(metrics["streamagg_cdrs_total"], "outcome") == EXPECTED_CDRS
    assert by_label(metrics["streamagg_calls_total"], "tech_prefix") == EXPECTED_CALLS
    assert by_label(metrics["streamagg_calls_answered_total"], "tech_prefix") == EXPECTED_ANSWERED
    assert by_label(metrics["streamagg_calls_effective_total"], "tech_prefix") == EXPECTED_EFFECTIVE
    assert by_label(metrics["streamagg_answered_seconds_total"], "tech_prefix") == EXPECTED_SECONDS

    # The report stage observes one latency per CDR of each batch it applies: the accepted and
    # the duplicate ones (rejects never reach it; nothing was re-delivered in this run).
    (latency_count,) = metrics["streamagg_processing_latency_seconds_count"].values()
    assert latency_count == EXPECTED_CDRS["accepted"] + EXPECTED_CDRS["duplicate"]
    buckets = metrics["streamagg_processing_latency_seconds_bucket"]
    assert by_label(buckets, "le")["+Inf"] == latency_count
    assert metrics["streamagg_processing_latency_seconds_sum"][()] >= 0

    # Lag series exist exactly for the input partitions the ingest stage polled, all at 0.
    lag = metrics["streamagg_consumer_lag_messages"]
    input_lag = {dict(k)["partition"]: v for k, v in lag.items() if dict(k)["topic"] == topic}
    assert input_lag == {str(p): 0.0 for p in used}

    # Every transaction of the state committed; nothing was read twice below the state's offset.
    assert metrics["streamagg_state_transactions_total"][(("outcome", "failed"),)] == 0
    assert metrics["streamagg_state_transactions_total"][(("outcome", "committed"),)] > 0
    assert metrics["streamagg_batches_skipped_total"][()] == 0


def customer_per_partition(partitions: int) -> list[str]:
    """One customer id per internal (batch) partition, so every partition gets work."""
    found: dict[int, str] = {}
    candidate = 0
    while len(found) < partitions:
        found.setdefault(customer_partition(f"c{candidate}", partitions), f"c{candidate}")
        candidate += 1
    return [found[p] for p in range(partitions)]


async def produce_to_every_partition(bootstrap: str, topic: str, partitions: int, tag: str) -> None:
    """One CDR into each input partition p, of a customer whose batches go to partition p."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for p, customer in enumerate(customer_per_partition(partitions)):
            await producer.send_and_wait(topic, cdr(f"{tag}-{p}", customer), partition=p)
    finally:
        await producer.stop()


def lag_partitions(worker: WorkerProcess, topic: str) -> set[str]:
    lag = samples(worker.get("/metrics").text).get("streamagg_consumer_lag_messages", {})
    return {dict(k)["partition"] for k in lag if dict(k)["topic"] == topic}


def ingest_generation(worker: WorkerProcess) -> int:
    """The newest generation of the ingest consumer group the worker synced (aiokafka logs it)."""
    group = re.escape(f"{worker.env['STREAMAGG_APP_ID']}-ingest")
    found = re.findall(
        rf"Successfully synced group {group} with generation (\d+)",
        worker.log_path.read_text(errors="replace"),
    )
    return max((int(g) for g in found), default=0)


async def rebalanced_pair(
    worker_factory: Callable[..., WorkerProcess],
    bootstrap: str,
    watched_topic: Callable[[dict[str, str]], str],
    **settings: str,
) -> tuple[WorkerProcess, WorkerProcess, str, set[str]]:
    """A worker that processed CDRs of every partition, then a second one that joined; after
    the rebalance, CDRs of every partition again. Returns both, the watched topic, partitions."""
    first = worker_factory(**settings)
    first.wait_ready()
    topic, watched = first.env["STREAMAGG_TOPIC"], watched_topic(first.env)
    # The worker creates the input and batch topics with STREAMAGG_PARTITIONS partitions.
    partitions = int(first.env["STREAMAGG_PARTITIONS"])
    every = {str(p) for p in range(partitions)}
    await produce_to_every_partition(bootstrap, topic, partitions, "one")
    wait_for(lambda: lag_partitions(first, watched) == every, 60, f"lag of every {watched}")

    second = worker_factory(**settings)
    second.wait_ready()
    if watched == topic:
        # The ingest group rebalances: the first worker's consumer is given a new assignment.
        wait_for(lambda: ingest_generation(first) >= 2, 60, "the ingest group's rebalance")
    wait_for(lambda: first.get("/readyz").status_code == 200, 60, "the first worker's rebalance")
    await produce_to_every_partition(bootstrap, topic, partitions, "two")

    def covered() -> bool:
        theirs = lag_partitions(second, watched)
        return bool(theirs) and lag_partitions(first, watched) | theirs == every

    wait_for(covered, 60, f"both workers to report lag of {watched}")
    return first, second, watched, every


def _has_ingest_modes() -> bool:
    return "ingest_mode" in {f.name for f in fields(Settings)}


@pytest.mark.parametrize(
    "ingest_mode",
    [
        "inline",
        "process",
    ],
)
async def test_lag_series_of_input_partitions_moved_to_another_worker_disappear(
    worker_factory: Callable[..., WorkerProcess], kafka_bootstrap: str, ingest_mode: str
) -> None:
    """After a second worker joins, each input partition has a lag series on one worker only
    (a stale series on the worker that lost the partition would keep its last value)."""
    if ingest_mode == "process" and not _has_ingest_modes():
        pytest.skip("this version runs the ingest stage in the worker's own process only")
    first, second, topic, every = await rebalanced_pair(
        worker_factory,
        kafka_bootstrap,
        lambda env: env["STREAMAGG_TOPIC"],
        STREAMAGG_INGEST_MODE=ingest_mode,
    )
    mine, theirs = lag_partitions(first, topic), lag_partitions(second, topic)
    assert not mine & theirs, f"input partitions {sorted(mine & theirs)} reported by both"
    assert mine | theirs == every


async def test_lag_series_of_batch_partitions_moved_to_another_worker_disappear(
    worker_factory: Callable[..., WorkerProcess], kafka_bootstrap: str
) -> None:
    first, second, topic, _ = await rebalanced_pair(
        worker_factory, kafka_bootstrap, lambda env: f"{env['STREAMAGG_APP_ID']}-cdr-batches"
    )
    both = lag_partitions(first, topic) & lag_partitions(second, topic)
    assert not both, f"batch partitions {sorted(both)} have a lag series on both workers"
