"""Two workers share 8 partitions (with a standby replica each); either answers every customer,
forwarding to the owner; when one is SIGKILLed the other takes every partition over, and keeps
answering every customer exactly, also for CDRs produced after the takeover."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from tests.e2e.conftest import ADMIN_TOKEN, LIMITED_TOKEN
from tests.support.cdr_mix import CdrMix, rate_center_table, resolver, utc_now_hour
from tests.support.chaos import (
    REPORTS,
    alive,
    check_ranges,
    descendants,
    full_range,
    kill_pids,
    kill_tree,
    mismatches,
    wait_until_equal,
)
from tests.support.kafka_io import produce, produce_dids
from tests.support.oracle import ReportOracle
from tests.support.worker import WorkerProcess, http_get

pytestmark = pytest.mark.timeout(420)

SEED = 8080
FIRST = 30_000
SECOND = 10_000
Check = tuple[str, str, datetime, datetime]


def every_customer(oracle: ReportOracle, now: datetime) -> list[Check]:
    """Each report of each customer over 13 months, plus a month and an hour of a few."""
    checks: list[Check] = [
        (report, customer, *full_range(now))
        for customer in oracle.customers()
        for report in REPORTS
    ]
    for customer in oracle.customers()[:4]:
        for report in REPORTS:
            checks += [(report, customer, s, e) for s, e in check_ranges(report, now)[1:]]
    return checks


def test_two_workers_answer_every_customer_and_one_survives_the_other(
    worker_factory: Callable[..., WorkerProcess],
    kafka_bootstrap: str,
    unique_name: str,
    tmp_path: Path,
) -> None:
    now = utc_now_hour()
    mix = CdrMix(seed=SEED, now=now, customers=40)
    first, second = mix.messages(FIRST), mix.messages(SECOND)
    csv_text, table, outside = rate_center_table()
    rate_file = tmp_path / "ratecenters.csv"
    rate_file.write_text(csv_text)
    rates = resolver(table, outside)
    settings = {"STREAMAGG_PARTITIONS": "8", "STREAMAGG_RATECENTERS": str(rate_file)}

    asyncio.run(produce_dids(kafka_bootstrap, f"{unique_name}-dids", mix.dids))
    a = worker_factory(**settings)
    b = worker_factory(**settings)
    orphans: set[int] = set()
    try:
        a.wait_ready()
        b.wait_ready()
        topic = a.env["STREAMAGG_TOPIC"]
        asyncio.run(produce(kafka_bootstrap, topic, first))

        oracle = ReportOracle(first, did_owner=mix.dids, rate_centers=rates)
        assert len(oracle.customers()) == 40
        checks = every_customer(oracle, now)
        totals = [c for c in checks if c[0] == "tech-prefix"]
        wait_until_equal([a, b], ADMIN_TOKEN, oracle, totals, 120, "the first 30,000 CDRs")
        different = mismatches([a, b], ADMIN_TOKEN, oracle, checks, limit=10)
        assert not different, "\n".join(different)
        # Both took part: each applied the batches of its own share of the 8 partitions, so
        # each answered some customers by forwarding to the other.
        assert split_between(a, b), (applied_partitions(a), applied_partitions(b))
        # The customer list (SPEC §6): every worker answers for all partitions, its own and
        # the other's, and a token sees only the customers it may read.
        for worker in (a, b):
            listed = worker.get("/api/v1/customers", ADMIN_TOKEN)
            assert listed.status_code == 200, listed.text
            assert listed.json()["customers"] == oracle.customer_list()
            limited = worker.get("/api/v1/customers", LIMITED_TOKEN).json()["customers"]
            assert limited == [c for c in oracle.customer_list() if c["customer_id"] == "42"]

        # A polling page gets 304s from either worker: a forwarded answer keeps the owner's
        # ETag, and its If-None-Match reaches the owner.
        for worker in (a, b):
            assert unchanged_answers_are_304(worker, oracle.customers(), now)

        orphans.update(kill_tree(b))
        # Until the group drops the dead member, its partitions' requests have no live owner:
        # 503 (retry shortly), never a 500.
        failover: Counter[str] = Counter()
        wait_until_equal(
            [a],
            ADMIN_TOKEN,
            oracle,
            checks,
            180,
            "the survivor answering every customer",
            tolerate=(503,),
            seen=failover,
        )
        print(f"answers refused during the takeover: {dict(failover)}")

        asyncio.run(produce(kafka_bootstrap, topic, second))
        oracle = ReportOracle(first + second, did_owner=mix.dids, rate_centers=rates)
        checks = every_customer(oracle, now)
        totals = [c for c in checks if c[0] == "tech-prefix"]
        wait_until_equal([a], ADMIN_TOKEN, oracle, totals, 120, "the 10,000 CDRs after takeover")
        different = mismatches([a], ADMIN_TOKEN, oracle, checks, limit=10)
        assert not different, "\n".join(different)
    finally:
        for worker in (a, b):
            if worker.process is not None:
                orphans.update(descendants(worker.process.pid))
        a.stop()
        b.stop()
        kill_pids(sorted(pid for pid in orphans if alive(pid)))


def split_between(a: WorkerProcess, b: WorkerProcess) -> bool:
    """Whether the workers applied batches of disjoint, non-empty sets of partitions."""
    owners = [applied_partitions(worker) for worker in (a, b)]
    return bool(owners[0]) and bool(owners[1]) and not (owners[0] & owners[1])


def applied_partitions(worker: WorkerProcess) -> set[int]:
    """Partitions of the batch topic whose batches the worker applied (its lag series)."""
    batches = f'topic="{worker.env["STREAMAGG_APP_ID"]}-cdr-batches"'
    found = set()
    for line in worker.get("/metrics").text.splitlines():
        if line.startswith("streamagg_consumer_lag_messages{") and batches in line:
            found.add(int(line.split('partition="', 1)[1].split('"', 1)[0]))
    return found


def test_requests_for_a_dead_owner_are_503_not_500(
    worker_factory: Callable[..., WorkerProcess],
) -> None:
    settings = {"STREAMAGG_PARTITIONS": "8"}
    a, b = worker_factory(**settings), worker_factory(**settings)
    orphans: set[int] = set()
    customers = [str(1000 + i) for i in range(24)]
    path = "/api/v1/customers/{}/reports/tech-prefix"
    month = {"month": utc_now_hour().strftime("%Y-%m")}
    try:
        ready_or_fail(a, b)

        def everyone_answers() -> bool:
            # Both answer every customer (forwarding some of them to the other).
            return all(
                worker.get(path.format(c), ADMIN_TOKEN, **month).status_code == 200
                for worker in (a, b)
                for c in customers
            )

        deadline = time.monotonic() + 60
        while not everyone_answers():
            if time.monotonic() > deadline:  # not the bug this test is about: a plain failure
                pytest.fail("the two workers never answered every customer")
            time.sleep(1)
        orphans.update(kill_tree(b))
        answers = Counter(
            f"{r.status_code} {r.json()['error']['code'] if r.status_code != 200 else ''}"
            for r in (a.get(path.format(c), ADMIN_TOKEN, **month) for c in customers)
        )
        assert set(answers) <= {"200 ", "503 unavailable"}, dict(answers)
    finally:
        for worker in (a, b):
            if worker.process is not None:
                orphans.update(descendants(worker.process.pid))
        a.stop()
        b.stop()
        kill_pids(sorted(pid for pid in orphans if alive(pid)))


def ready_or_fail(*workers: WorkerProcess) -> None:
    """wait_ready, failing plainly (not with an AssertionError a strict xfail would take)."""
    for worker in workers:
        try:
            worker.wait_ready()
        except AssertionError as exc:
            pytest.fail(str(exc))


def unchanged_answers_are_304(worker: WorkerProcess, customers: list[str], now: datetime) -> bool:
    start, end = full_range(now)
    for customer in customers:
        url = f"{worker.base_url}/api/v1/customers/{customer}/reports/tech-prefix"
        params = {
            "from": start.isoformat().replace("+00:00", "Z"),
            "to": end.isoformat().replace("+00:00", "Z"),
        }
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        first = http_get(url, params=params, headers=auth, timeout=30)
        assert first.status_code == 200 and "ETag" in first.headers, (customer, first.headers)
        again = http_get(
            url, params=params, headers={**auth, "If-None-Match": first.headers["ETag"]}, timeout=30
        )
        assert again.status_code == 304 and again.content == b"", (customer, again.status_code)
    return True
