"""Reference data changing under a running worker (SPEC §2, reference data).

- Rate centers are joined at query time: rewriting the CSV re-labels the SAME historic calls
  without a restart, and a broken replacement keeps the data loaded before.
- The DID inventory is read when a CDR is processed: DIDs added or removed while the worker
  runs apply to calls processed from then on, and earlier counts stay as they were.

Every expected row is computed by hand from the CDRs below.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import ADMIN_TOKEN
from tests.support.common import iso
from tests.support.kafka_io import produce, produce_dids
from tests.support.oracle import margin_columns
from tests.support.worker import WorkerProcess, wait_for

pytestmark = pytest.mark.timeout(180)

HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
START = HOUR - timedelta(hours=2)
DAY = HOUR.replace(hour=0)


def cdr(callid: str, customer: str, **fields: object) -> bytes:
    return orjson.dumps({"callid": callid, "dt": iso(START), "customer_id": customer, **fields})


def report(worker: WorkerProcess, name: str, customer: str) -> list[dict[str, object]]:
    if name == "did-cli":  # whole UTC days
        span = {"from": iso(DAY - timedelta(days=1)), "to": iso(DAY + timedelta(days=1))}
    else:
        span = {"from": iso(HOUR - timedelta(days=1)), "to": iso(HOUR + timedelta(hours=1))}
    response = worker.get(f"/api/v1/customers/{customer}/reports/{name}", ADMIN_TOKEN, **span)
    assert response.status_code == 200, response.text
    rows: list[dict[str, object]] = response.json()["rows"]
    return rows


def wait_for_rows(
    worker: WorkerProcess, name: str, customer: str, expected: list[dict[str, object]]
) -> None:
    last: list[object] = []

    def matches() -> bool:
        last[:] = [report(worker, name, customer)]
        return last[0] == expected

    try:
        wait_for(matches, 60, f"the {name} report of customer {customer}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nexpected {expected}\nlast     {last[0]}") from None


def accepted(worker: WorkerProcess) -> float:
    for family in text_string_to_metric_families(worker.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "streamagg_cdrs_total" and sample.labels["outcome"] == "accepted":
                return sample.value
    raise AssertionError("no streamagg_cdrs_total{outcome=accepted}")


async def produce_records(
    bootstrap: str, topic: str, records: Sequence[tuple[bytes, bytes | None]]
) -> None:
    """Send (key, value) records in order; a None value is a tombstone (key removed)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


def replace_file(path: Path, text: str) -> None:
    """Write beside it under a hidden name and rename into place, with a fresh mtime."""
    hidden = path.with_name(f".{path.name}.tmp")
    hidden.write_text(text)
    os.replace(hidden, path)
    later = time.time() + 5  # a different mtime even on coarse-grained file systems
    os.utime(path, (later, later))


# --- rate centers ---------------------------------------------------------------------------

FIRST_CSV = """prefix,rc,state
201555,JERSEYCITY,NJ
212555,NWYRCYZN01,NY
305555,MIAMI,FL
416555,TORONTO,ON
"""
# 201-555-0 becomes a pooled block with its own rate center, 305-555 changes its rate center,
# 646-555 becomes known; 416 (Ontario) stays outside the US.
SECOND_CSV = """prefix,rc,state
201555,JERSEYCITY,NJ
2015550,HOBOKEN,NJ
212555,NWYRCYZN01,NY
305555,MIAMI BEACH,FL
416555,TORONTO,ON
646555,NWYRCYZN03,NY
"""

# Customer "rc1". Charges: customer, provider per call.
RATE_CENTER_CALLS = [
    cdr("r1", "rc1", dest_number="12015550100", customer_charge="1.000001", provider_charge="0.5"),
    cdr("r2", "rc1", dest_number="+12015551234", customer_charge="2", provider_charge="1"),
    cdr("r3", "rc1", dest_number="2015559999", customer_charge="0.25", provider_charge=0),
    cdr("r4", "rc1", tech_prefix="99#", dest_number="99#2125550000", customer_charge=3),
    cdr("r5", "rc1", dest_number="3055550001", customer_charge="0.1", provider_charge="0.05"),
    cdr("r6", "rc1", dest_number="+13055550002", customer_charge="0.2", provider_charge="0.05"),
    cdr("r7", "rc1", dest_number="4165550000", customer_charge=9, provider_charge=9),  # Canada
    cdr("r8", "rc1", dest_number="6465550000", customer_charge="0.5", provider_charge="0.4"),
    cdr("r9", "rc1", dest_number="011441234567", customer_charge=7),  # not NANP
    cdr("r10", "rc1", dest_number="1115550000", customer_charge=7),  # NPA may not start with 1
]


def rc_row(prefix: str, rc: str, state: str, cc: str, pc: str, calls: int) -> dict[str, object]:
    return {
        "prefix": prefix,
        "rc": rc,
        "state": state,
        "customer_charge": cc,
        "provider_charge": pc,
        "call_count": calls,
        # SPEC §6's margin, from the oracle's exact arithmetic on the same charges
        **margin_columns(Decimal(cc), Decimal(pc)),
    }


FIRST_ROWS = [
    rc_row("201555", "JERSEYCITY", "NJ", "3.250001", "1.500000", 3),  # r1 r2 r3
    rc_row("305555", "MIAMI", "FL", "0.300000", "0.100000", 2),  # r5 r6
    rc_row("212555", "NWYRCYZN01", "NY", "3.000000", "0.000000", 1),  # r4
    rc_row("646555", "UNKNOWN", "UNKNOWN", "0.500000", "0.400000", 1),  # r8
]
SECOND_ROWS = [
    rc_row("201555", "JERSEYCITY", "NJ", "2.250000", "1.000000", 2),  # r2 r3
    rc_row("305555", "MIAMI BEACH", "FL", "0.300000", "0.100000", 2),
    rc_row("2015550", "HOBOKEN", "NJ", "1.000001", "0.500000", 1),  # r1
    rc_row("212555", "NWYRCYZN01", "NY", "3.000000", "0.000000", 1),
    rc_row("646555", "NWYRCYZN03", "NY", "0.500000", "0.400000", 1),
]


async def test_rate_center_data_replaced_while_running_applies_to_historic_calls(
    worker_factory: Callable[..., WorkerProcess], kafka_bootstrap: str, tmp_path: Path
) -> None:
    folder = tmp_path / "ratecenters"
    folder.mkdir()
    csv_file = folder / "prefixes.csv"
    csv_file.write_text(FIRST_CSV)
    worker = worker_factory(
        STREAMAGG_RATECENTERS=str(folder), STREAMAGG_RATECENTERS_CHECK_SECONDS="1"
    )
    worker.wait_ready()
    await produce(kafka_bootstrap, worker.env["STREAMAGG_TOPIC"], RATE_CENTER_CALLS)
    wait_for_rows(worker, "rate-center", "rc1", FIRST_ROWS)

    replace_file(csv_file, SECOND_CSV)
    wait_for_rows(worker, "rate-center", "rc1", SECOND_ROWS)
    assert worker.process is not None and worker.process.poll() is None  # no restart

    log_lines_before = len(worker.log_path.read_text(errors="replace").splitlines())
    replace_file(csv_file, "this is not a rate-center file\nat all\n")

    def refused() -> bool:
        lines = worker.log_path.read_text(errors="replace").splitlines()[log_lines_before:]
        return any("keeping the data loaded at" in line for line in lines)

    wait_for(refused, 30, "the worker to refuse the broken rate-center file")
    assert report(worker, "rate-center", "rc1") == SECOND_ROWS


# --- DID inventory --------------------------------------------------------------------------

INVENTORY = {
    "2125550001": "acct-A",
    "12125550002": "acct-B",  # an 11-digit key: the inventory normalises it to 10 digits
    "2125550003": "cust-1",
}
BEFORE_CALLS = [
    cdr("d1", "cust-1", dest_cli="+1 (212) 555-0001"),  # acct-A
    cdr("d2", "cust-1", dest_cli="2125550001"),  # acct-A
    cdr("d3", "cust-1", dest_cli="12125550002"),  # acct-B
    cdr("d4", "cust-1", dest_cli="212-555-0003"),  # own DID
    cdr("d5", "cust-1", dest_cli="2125550009"),  # not a DID (yet)
    cdr("d6", "cust-1"),  # no caller ID
    cdr("d7", "cust-2", dest_cli="2125550003"),  # cust-1's DID used by cust-2
]
AFTER_CALLS = [
    cdr("e1", "cust-1", dest_cli="2125550001"),  # removed: no longer counted
    cdr("e2", "cust-1", dest_cli="2125550009"),  # added for acct-C
    cdr("e3", "cust-1", dest_cli="+12125550009"),
    cdr("e4", "cust-1", dest_cli="2125550003"),
    cdr("e5", "cust-2", dest_cli="2125550001"),
]


def did_row(account: str, did: str, count: int, foreign: bool) -> dict[str, object]:
    return {"account": account, "dest_cli": did, "count": count, "foreign": foreign}


async def test_did_inventory_changes_apply_to_calls_processed_afterwards(
    worker_factory: Callable[..., WorkerProcess], kafka_bootstrap: str, unique_name: str
) -> None:
    dids_topic = f"{unique_name}-dids"
    await produce_dids(kafka_bootstrap, dids_topic, INVENTORY)
    worker = worker_factory()
    assert worker.env["STREAMAGG_DIDS_TOPIC"] == dids_topic
    worker.wait_ready()
    topic = worker.env["STREAMAGG_TOPIC"]

    await produce(kafka_bootstrap, topic, BEFORE_CALLS)
    before_cust1 = [
        did_row("acct-A", "2125550001", 2, True),
        did_row("acct-B", "2125550002", 1, True),
        did_row("cust-1", "2125550003", 1, False),
    ]
    wait_for_rows(worker, "did-cli", "cust-1", before_cust1)
    wait_for_rows(worker, "did-cli", "cust-2", [did_row("cust-1", "2125550003", 1, True)])

    # While the worker runs: 2125550001 leaves the system, 2125550009 joins (in this order).
    await produce_records(
        kafka_bootstrap,
        dids_topic,
        [(b"2125550001", None), (b"2125550009", orjson.dumps({"account": "acct-C"}))],
    )
    # The change reaches the worker's inventory asynchronously: probe calls of another customer
    # until one is counted for the new DID; from then on the removal (earlier) applies too.
    probes = 0
    deadline = time.monotonic() + 60
    while not report(worker, "did-cli", "probe"):
        assert time.monotonic() < deadline, "the new DID never reached the worker's inventory"
        probes += 1
        await produce(kafka_bootstrap, topic, [cdr(f"p{probes}", "probe", dest_cli="2125550009")])
        await asyncio.sleep(0.5)
    probe_rows = report(worker, "did-cli", "probe")
    assert len(probe_rows) == 1 and probe_rows[0]["account"] == "acct-C"

    await produce(kafka_bootstrap, topic, AFTER_CALLS)
    after_cust1 = [
        did_row("acct-A", "2125550001", 2, True),  # earlier counts stay
        did_row("acct-B", "2125550002", 1, True),
        did_row("acct-C", "2125550009", 2, True),  # e2 e3; d5 came before the DID
        did_row("cust-1", "2125550003", 2, False),  # d4 e4
    ]
    wait_for_rows(worker, "did-cli", "cust-1", after_cust1)
    sent = len(BEFORE_CALLS) + probes + len(AFTER_CALLS)
    wait_for(lambda: accepted(worker) >= sent, 30, "every call to be processed")
    assert accepted(worker) == sent
    # e5 used a DID no longer in the inventory: cust-2 keeps only d7.
    assert report(worker, "did-cli", "cust-2") == [did_row("cust-1", "2125550003", 1, True)]
