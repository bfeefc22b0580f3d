"""Big answers come in pages (JSON) or as a stream (CSV), and the two agree (SPEC §3, issue 14).

One customer with 2,500 dtmf rows (one call in each of 2,500 hours): JSON pages of 1,000 rows
linked by `next`, and the CSV export of the same range, hold exactly the same rows.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from tests.e2e.conftest import ADMIN_TOKEN
from tests.support.kafka_io import produce
from tests.support.worker import WorkerProcess, http_get, wait_for

pytestmark = pytest.mark.timeout(240)

HOURS = 2_500
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
FIRST = NOW - timedelta(hours=HOURS + 24)
RANGE = {
    "from": (FIRST - timedelta(hours=1)).strftime("%Y-%m-%dT%H:00:00Z"),
    "to": NOW.strftime("%Y-%m-%dT%H:00:00Z"),
}
PATH = "/api/v1/customers/77/reports/dtmf"


async def test_json_pages_and_the_csv_export_hold_the_same_rows(
    worker_factory: Callable[..., WorkerProcess], kafka_bootstrap: str
) -> None:
    worker = worker_factory()
    worker.wait_ready()
    calls = [
        orjson.dumps(
            {
                "callid": f"big-{h}",
                "dt": (FIRST + timedelta(hours=h)).isoformat(),
                "customer_id": "77",
                "provider_id": "p1",
                "customer_charge": f"{h}.5",
            }
        )
        for h in range(HOURS)
    ]
    await produce(kafka_bootstrap, worker.env["STREAMAGG_TOPIC"], calls)

    def first_page() -> dict[str, object]:
        response = worker.get(PATH, ADMIN_TOKEN, **RANGE, limit="1000")
        return response.json() if response.status_code == 200 else {}

    wait_for(lambda: "next" in first_page(), 90, "the calls")

    def total_rows() -> int:
        response = worker.get_all_pages(PATH, ADMIN_TOKEN, **RANGE, limit="1000")
        return len(response.json()["rows"]) if response.status_code == 200 else -1

    wait_for(lambda: total_rows() == HOURS, 90, f"{HOURS} rows")

    pages, url, rows = 0, None, []
    body = first_page()
    while True:
        pages += 1
        rows += body["rows"]  # type: ignore[operator]
        assert len(body["rows"]) == (1000 if "next" in body else HOURS % 1000)  # type: ignore[arg-type]
        if "next" not in body:
            break
        url = str(body["next"])
        assert url.startswith(PATH + "?") and "offset=" in url
        body = httpx_get(worker, url)
    assert pages == 3

    export = worker.get(PATH, ADMIN_TOKEN, **RANGE, format="csv")
    assert export.status_code == 200
    assert "chunked" in export.headers.get("Transfer-Encoding", "")
    table = list(csv.DictReader(io.StringIO(export.text, newline="")))
    assert len(table) == HOURS
    assert [{k: str(v) for k, v in row.items()} for row in rows] == table, (
        "the CSV export and the JSON pages differ"
    )
    assert [row["dt"] for row in rows] == sorted(row["dt"] for row in rows)  # type: ignore[type-var]


def httpx_get(worker: WorkerProcess, url: str) -> dict[str, object]:
    response = http_get(
        worker.base_url + url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body
