"""Readiness that means it, and a failure that stops a partition instead of skipping a batch.

- A worker's first start on fresh topics answers every report of every customer with 200 as
  soon as /readyz says 200 (issue 13 saw 503 "owner moving" after readiness).
- A batch that cannot be applied stops its partition: /readyz, the metric and the log say so,
  the batches behind it wait (nothing is skipped), the other partitions go on; the customer
  list names the partition it lacks (a 503, or with partial=true the others' customers).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
from aiokafka import AIOKafkaProducer

from tests.e2e.conftest import ADMIN_TOKEN
from tests.e2e.test_metrics import customer_per_partition, samples
from tests.support.chaos import REPORTS
from tests.support.worker import WorkerProcess, free_port, wait_for, worker_env

FRESH_STARTS = 10
RANGE = {"from": "2026-01-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}


def cdr(callid: str, customer: str) -> bytes:
    return orjson.dumps(
        {"callid": callid, "dt": "2026-11-01T10:00:00Z", "customer_id": customer, "duration": 5}
    )


def report_status(worker: WorkerProcess, report: str, customer: str) -> httpx.Response:
    return worker.get(f"/api/v1/customers/{customer}/reports/{report}", ADMIN_TOKEN, **RANGE)


def test_fresh_workers_on_fresh_topics_answer_every_report_once_ready(
    kafka_bootstrap: str, tmp_path: Path, tokens_file: Path
) -> None:
    partitions = 4
    customers = customer_per_partition(partitions)  # every partition is asked
    for attempt in range(FRESH_STARTS):
        name = f"fresh-{attempt}-{uuid.uuid4().hex[:8]}"
        data_dir = tmp_path / name / "data"
        data_dir.mkdir(parents=True)
        env = worker_env(kafka_bootstrap, name, data_dir, free_port(), tokens_file)
        worker = WorkerProcess(
            env, data_dir, int(env["STREAMAGG_WEB_PORT"]), tmp_path / f"{name}.log"
        )
        worker.start()
        try:
            worker.wait_ready()
            answers = {
                (report, customer): report_status(worker, report, customer).status_code
                for report in REPORTS
                for customer in customers
            }
            refused = {k: v for k, v in answers.items() if v != 200}
            assert not refused, f"start {attempt}: ready, yet {refused}\n{worker.tail(40)}"
        finally:
            worker.stop()


async def test_a_batch_that_cannot_be_applied_stops_its_partition_and_nothing_behind_it(
    worker_factory: Callable[..., WorkerProcess], kafka_bootstrap: str
) -> None:
    worker = worker_factory()
    worker.wait_ready()
    topic = worker.env["STREAMAGG_TOPIC"]
    batches = f"{worker.env['STREAMAGG_APP_ID']}-cdr-batches"
    stuck, healthy = customer_per_partition(4)[:2]  # customers of batch partitions 0 and 1
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        # A batch of a format this version does not know (a newer worker wrote it, say).
        await producer.send_and_wait(
            batches,
            b'{"src": "x/0", "r": []}',
            partition=0,
            headers=[("streamagg-format", b"99")],
        )
        for i in range(3):
            await producer.send_and_wait(topic, cdr(f"after-{i}", stuck))
            await producer.send_and_wait(topic, cdr(f"other-{i}", healthy))
    finally:
        await producer.stop()

    def tech_total(customer: str) -> int | None:
        response = report_status(worker, "tech-prefix", customer)
        if response.status_code != 200:
            return None
        return sum(row["total"] for row in response.json()["rows"])

    wait_for(lambda: tech_total(healthy) == 3, 60, "the other partition's calls")
    ready = worker.get("/readyz")
    assert ready.status_code == 503
    reason = ready.json()["reason"]
    assert "partition 0" in reason and "format 99" in reason, reason
    stuck_answer = report_status(worker, "tech-prefix", stuck)
    assert stuck_answer.status_code == 503, stuck_answer.text
    assert "partition" in stuck_answer.json()["error"]["message"]
    metrics = samples(worker.get("/metrics").text)
    assert metrics["streamagg_partition_stopped"][(("partition", "0"),)] == 1
    assert metrics["streamagg_partition_stopped"][(("partition", "1"),)] == 0
    assert metrics["streamagg_state_transactions_total"][(("outcome", "failed"),)] >= 1
    assert "partition 0 stopped" in worker.log_path.read_text()
    # The customer list: refused naming the partition, or without it when partial is asked
    # for (the page's suggestions), never a list that silently lacks some customers.
    strict = worker.get("/api/v1/customers", ADMIN_TOKEN)
    assert strict.status_code == 503, strict.text
    message = strict.json()["error"]["message"]
    assert "lacks partition 0" in message and "stopped" in message, message
    partial = worker.get("/api/v1/customers", ADMIN_TOKEN, partial="true")
    assert partial.status_code == 200, partial.text
    assert [c["customer_id"] for c in partial.json()["customers"]] == [healthy]
    (missing,) = partial.json()["unavailable_partitions"]
    assert missing["partition"] == 0 and "format 99" in missing["reason"], missing
    # Retried, and still stopped: the calls behind the batch were never skipped past it.
    await asyncio.sleep(5)
    assert worker.get("/readyz").status_code == 503
    committed = metrics["streamagg_cdrs_total"][(("outcome", "accepted"),)]
    assert committed == 3, "only the healthy partition's calls were applied"
