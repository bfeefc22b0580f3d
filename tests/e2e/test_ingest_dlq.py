"""Bad CDRs go to the DLQ with their original bytes and headers; good ones count exactly once.

Through the real broker and a worker process: every invalid kind SPEC §1 names, valid CDRs of
two customers, and byte-identical re-sends. Expected values are computed by hand below.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import ADMIN_TOKEN
from tests.support.kafka_io import consume_all, header
from tests.support.worker import WorkerProcess, wait_for

pytestmark = pytest.mark.timeout(180)

HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
START = HOUR - timedelta(hours=3)


def cdr(callid: object, customer: object = "7", **fields: object) -> dict[str, object]:
    return {"callid": callid, "dt": START.isoformat(), "customer_id": customer, **fields}


def raw(document: object) -> bytes:
    return orjson.dumps(document)


# Valid: customer "7" — "9#": 3 calls, answered v1 (200, 40 s) and v2 (no sip_code, 20 s);
# "": 2 calls, answered v5 (200, 10 s). Customer 8 (an integer id): "9#" 1 call, unanswered.
VALID = [
    raw(cdr("v1", tech_prefix="9#", sip_code=200, duration=40, customer_charge="1.25")),
    raw(cdr("v2", tech_prefix="9#", duration=20, dest_number="9#12015550100")),
    raw(cdr("v3", tech_prefix="9#", sip_code=404, extra_field={"ignored": True})),
    raw({**cdr("v4"), "dt": START.strftime("%Y-%m-%d %H:%M:%S"), "sip_code": 480}),
    raw({**cdr("v5", sip_code=200, duration=10.0), "dt": int(START.timestamp()) + 59}),
    raw(cdr("v1", customer=8, tech_prefix="9#", sip_code=486)),
]
DUPLICATES = [VALID[0], VALID[0], VALID[4]]
EXPECTED_TECH_PREFIX = {
    "7": [
        {"tech_prefix": "9#", "total": 3, "answered_calls": 2, "asr": 66.67, "acd": 30.0},
        {"tech_prefix": "", "total": 2, "answered_calls": 1, "asr": 50.0, "acd": 10.0},
    ],
    "8": [{"tech_prefix": "9#", "total": 1, "answered_calls": 0, "asr": 0.0, "acd": 0.0}],
}

_PAD = "x" * (64 * 1024)
# Each invalid message and the field its `error` header must name.
INVALID: list[tuple[bytes, str]] = [
    (b"this is not json", "message"),
    (b"\xff\xfe{not utf-8}", "message"),
    (b"", "message"),
    (b"[1, 2, 3]", "message"),
    (b'"a string"', "message"),
    (raw({"dt": START.isoformat(), "customer_id": "7"}), "callid"),
    (raw(cdr(1234)), "callid"),
    (raw(cdr("n1", customer_charge=-0.01)), "customer_charge"),
    (raw(cdr("n2", provider_charge="-3")), "provider_charge"),
    (raw(cdr("n3", provider_charge="NaN")), "provider_charge"),
    (raw({**cdr("t1"), "dt": "yesterday at noon"}), "dt"),
    (raw({**cdr("t2"), "dt": "2026-02-30T10:00:00Z"}), "dt"),
    (raw({**cdr("t3"), "dt": (HOUR - timedelta(days=401)).isoformat()}), "dt"),
    (raw({"callid": "t4", "customer_id": "7"}), "dt"),
    (raw(cdr("w1", customer=["7"])), "customer_id"),
    (raw(cdr("w2", customer=True)), "customer_id"),
    (raw(cdr("w3", duration="30")), "duration"),
    (raw(cdr("w4", sip_code="200")), "sip_code"),
    (raw(cdr("w5", sip_code=99)), "sip_code"),
    (raw(cdr("w6", tech_prefix=5)), "tech_prefix"),
    (raw(cdr("w7", dest_cli=["2125550000"])), "dest_cli"),
    (raw(cdr("big", padding=_PAD)), "message"),  # otherwise valid, but over 64 KiB
]


def cdr_counts(worker: WorkerProcess) -> dict[str, float]:
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(worker.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "streamagg_cdrs_total":
                counts[sample.labels["outcome"]] = sample.value
    return counts


def tech_prefix_rows(worker: WorkerProcess, customer: str) -> list[dict[str, object]]:
    response = worker.get(
        f"/api/v1/customers/{customer}/reports/tech-prefix",
        ADMIN_TOKEN,
        **{
            "from": f"{HOUR - timedelta(days=1):%Y-%m-%dT%H:%M:%SZ}",
            "to": f"{HOUR:%Y-%m-%dT%H:%M:%SZ}",
        },
    )
    assert response.status_code == 200, response.text
    rows: list[dict[str, object]] = response.json()["rows"]
    return rows


async def produce_keyed(
    bootstrap: str, topic: str, messages: list[tuple[bytes | None, bytes]]
) -> list[tuple[int, int]]:
    """Send (key, value) pairs one by one; return the (partition, offset) of each."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", max_request_size=2 * 1024 * 1024
    )
    await producer.start()
    try:
        placed = []
        for key, value in messages:
            metadata = await producer.send_and_wait(topic, value, key=key)
            placed.append((metadata.partition, metadata.offset))
        return placed
    finally:
        await producer.stop()


async def test_invalid_cdrs_reach_the_dlq_intact_and_valid_ones_count_once(
    worker_factory: Callable[..., WorkerProcess], kafka_bootstrap: str
) -> None:
    worker = worker_factory()
    worker.wait_ready()
    topic, dlq = worker.env["STREAMAGG_TOPIC"], worker.env["STREAMAGG_DLQ_TOPIC"]

    # Valid and invalid messages interleaved, the re-sends last; invalid ones carry a key.
    messages: list[tuple[bytes | None, bytes]] = []
    for i, (value, _field) in enumerate(INVALID):
        messages.append((f"bad-{i}".encode(), value))
        if i < len(VALID):
            messages.append((None, VALID[i]))
    messages += [(None, value) for value in DUPLICATES]
    placed = await produce_keyed(kafka_bootstrap, topic, messages)
    where = {f"{topic}/{p}/{o}": message for (p, o), message in zip(placed, messages, strict=True)}
    expected_field = {f"bad-{i}".encode(): field for i, (_v, field) in enumerate(INVALID)}

    dead = await consume_all(kafka_bootstrap, dlq, expected=len(INVALID), timeout=90)
    assert len(dead) == len(INVALID), f"{len(dead)} DLQ records for {len(INVALID)} bad CDRs"
    # The original messages, read back from the input topic by the source header.
    originals = {
        f"{r.topic}/{r.partition}/{r.offset}": r
        for r in await consume_all(kafka_bootstrap, topic, expected=len(messages), timeout=30)
    }
    seen_sources = set()
    for record in dead:
        source, error = header(record, "source"), header(record, "error")
        assert source is not None and error is not None, record.headers
        assert source in where, f"source {source} names no message this test sent"
        key, value = where[source]
        assert key is not None, f"a valid CDR went to the DLQ: {value[:200]!r} ({error})"
        assert record.value == value, f"DLQ bytes differ from the original at {source}"
        assert originals[source].value == record.value
        assert record.key == key
        assert error.startswith(f"{expected_field[key]}:"), (key, error)
        assert "\n" not in error
        seen_sources.add(source)
    assert len(seen_sources) == len(INVALID)

    def all_counted() -> bool:
        counts = cdr_counts(worker)
        return counts["accepted"] + counts["duplicate"] >= len(VALID) + len(DUPLICATES)

    wait_for(all_counted, 60, "the valid CDRs and re-sends to be counted")
    time.sleep(1.5)  # anything counted twice would show up by now
    assert cdr_counts(worker) == {
        "accepted": len(VALID),
        "duplicate": len(DUPLICATES),
        "rejected": len(INVALID),
    }
    for customer, rows in EXPECTED_TECH_PREFIX.items():
        assert tech_prefix_rows(worker, customer) == rows, customer

    # Nothing more arrives in the DLQ later (each reject exactly once, no valid CDR).
    again = await consume_all(kafka_bootstrap, dlq, expected=len(INVALID) + 1, timeout=3)
    assert len(again) == len(INVALID)


async def test_rejected_messages_over_the_brokers_limit_reach_the_dlq_cut_to_fit(
    worker_factory: Callable[..., WorkerProcess], kafka_bootstrap: str
) -> None:
    """Issue 14: a compressed batch can carry a message larger than the broker takes in one
    record; its DLQ copy must still be written (cut to fit, the cut said in a header) and the
    stage must go on. Sizes at, just under and over the DLQ's room, and well over 1 MiB."""
    import hashlib

    from streamagg.agents.dead_letters import DLQ_HEADROOM
    from streamagg.kafka_clients import MAX_BATCH_BYTES

    room = MAX_BATCH_BYTES - DLQ_HEADROOM
    sizes = [room - 1, room, room + 1, 1_500_000, 3 * 1024 * 1024]
    worker = worker_factory()
    worker.wait_ready()
    topic, dlq = worker.env["STREAMAGG_TOPIC"], worker.env["STREAMAGG_DLQ_TOPIC"]
    values = [bytes([65 + i]) * size for i, size in enumerate(sizes)]
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, compression_type="gzip", max_request_size=8 * 1024 * 1024
    )
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, partition=0)
        await producer.send_and_wait(topic, raw(cdr("after-the-big-ones")), partition=0)
    finally:
        await producer.stop()

    dead = await consume_all(kafka_bootstrap, dlq, expected=len(values), timeout=90)
    assert len(dead) == len(values)
    by_first_byte = {r.value[:1]: r for r in dead}
    for i, (size, value) in enumerate(zip(sizes, values, strict=True)):
        record = by_first_byte[bytes([65 + i])]
        assert header(record, "error") == f"message: larger than 64 KiB ({size} bytes)"
        if size <= room:
            assert record.value == value and header(record, "truncated") is None
        else:
            assert record.value == value[:room]
            digest = hashlib.sha256(value).hexdigest()
            assert header(record, "truncated") == f"{size} bytes, sha256 {digest}"
    wait_for(lambda: tech_total(worker, "7") == 1, 60, "the CDR sent after the big messages")


def tech_total(worker: WorkerProcess, customer: str) -> int:
    response = worker.get(
        f"/api/v1/customers/{customer}/reports/tech-prefix",
        ADMIN_TOKEN,
        **{
            "from": (HOUR - timedelta(days=1)).isoformat(),
            "to": (HOUR + timedelta(hours=1)).isoformat(),
        },
    )
    if response.status_code != 200:
        return -1
    return sum(row["total"] for row in response.json()["rows"])


async def test_a_foreign_message_on_the_batch_topic_is_dead_lettered_not_a_stopped_partition(
    worker_factory: Callable[..., WorkerProcess], kafka_bootstrap: str
) -> None:
    """A producer pointed at the internal batch topic (a raw CDR, no streamagg format header):
    before, its partition stopped for good (each retry failed on the same message) and the
    reports of its customers stood still. Now the message goes to the DLQ with its reason and
    source, and CDRs before and after it count once."""
    worker = worker_factory()
    worker.wait_ready()
    topic, dlq = worker.env["STREAMAGG_TOPIC"], worker.env["STREAMAGG_DLQ_TOPIC"]
    batches = f"{worker.env['STREAMAGG_APP_ID']}-cdr-batches"
    await produce_keyed(kafka_bootstrap, topic, [(None, VALID[0])])
    wait_for(lambda: cdr_counts(worker).get("accepted") == 1, 60, "the first CDR")
    stray = raw(cdr("stray", tech_prefix="9#"))
    ((partition, offset),) = await produce_keyed(kafka_bootstrap, batches, [(b"7", stray)])
    await produce_keyed(kafka_bootstrap, topic, [(None, VALID[1])])
    wait_for(lambda: cdr_counts(worker).get("accepted") == 2, 60, "the CDR after the stray one")
    (dead,) = await consume_all(kafka_bootstrap, dlq, expected=1, timeout=30)
    assert (dead.key, dead.value) == (b"7", stray)
    assert header(dead, "source") == f"{batches}/{partition}/{offset}"
    assert (header(dead, "error") or "").startswith("batch: not a streamagg batch")
    assert cdr_counts(worker).get("rejected") == 1
    assert worker.get("/readyz").status_code == 200
    assert [r["total"] for r in tech_prefix_rows(worker, "7")] == [2]
