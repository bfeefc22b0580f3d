"""The report page in a real browser: four reports read off the table, CSV download, errors.

Expected numbers are worked out by hand from the handful of CDRs below (see the comments),
not taken from the API.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from tests.e2e.conftest import ADMIN_TOKEN, LIMITED_TOKEN
from tests.support.common import iso
from tests.support.worker import WorkerProcess, http_get, wait_for, worker_env

sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RATECENTERS = Path(__file__).resolve().parents[1] / "data" / "ratecenters" / "allutlzd.txt"
# Where the test leaves screenshots (docs/img/ holds copies taken this way).
SCREENSHOT = Path("/tmp/streamagg-page.png")
ROUTES_SCREENSHOT = Path("/tmp/streamagg-page-routes.png")
CUSTOMER, OTHER_CUSTOMER = "7001", "7002"
OWN_DID, FOREIGN_DID = "2125550101", "2125550102"
DATA_WAIT_S = 90.0

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)"
)


def base_day() -> datetime:
    """Midnight UTC two days ago: well inside retention, never in the future."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=2)


def sample_cdrs(day: datetime) -> list[dict[str, Any]]:
    """Six calls of CUSTOMER in hours 10 and 11 of `day`, one of OTHER_CUSTOMER."""

    def at(hour: int, minute: int) -> str:
        return (day + timedelta(hours=hour, minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")

    c = CUSTOMER
    return [
        # 10:xx P1: answered 60 s, DTMF, 201-200 (JERSEY CITY), own DID as CLI.
        {
            "callid": "c1",
            "dt": at(10, 5),
            "customer_id": c,
            "provider_id": "P1",
            "customer_charge": "0.010000",
            "provider_charge": "0.006000",
            "dest_number": "12012005555",
            "dest_cli": OWN_DID,
            "tech_prefix": "11#",
            "duration": 60,
            "sip_code": 200,
            "dtmf": "12",
            "pdd_ms": 1200,
        },
        # 10:xx P1: busy, 201-204 (HACKENSACK), foreign DID as CLI.
        {
            "callid": "c2",
            "dt": at(10, 20),
            "customer_id": c,
            "provider_id": "P1",
            "customer_charge": 0.02,
            "provider_charge": "0.0125",
            "dest_number": "+12012045555",
            "dest_cli": FOREIGN_DID,
            "tech_prefix": "11#",
            "duration": 0,
            "sip_code": 486,
            "pdd_ms": 3000,
        },
        # 10:xx P2: answered 30 s, DTMF, tech prefix on the number, own DID written loosely.
        {
            "callid": "c3",
            "dt": at(10, 40),
            "customer_id": c,
            "provider_id": "P2",
            "customer_charge": "1.5",
            "provider_charge": 1,
            "dest_number": "11#2012005556",
            "dest_cli": "+1 (212) 555-0101",
            "tech_prefix": "11#",
            "duration": 30,
            "sip_code": 200,
            "dtmf": "5",
        },
        # 11:xx P1: answered 90 s, 415-555 (not in the rate-center data: UNKNOWN).
        {
            "callid": "c4",
            "dt": at(11, 0),
            "customer_id": c,
            "provider_id": "P1",
            "customer_charge": "0.25",
            "provider_charge": "0.125",
            "dest_number": "4155550000",
            "dest_cli": "3105550199",
            "tech_prefix": "22*",
            "duration": 90,
            "sip_code": 200,
            "pdd_ms": 2500,
        },
        # 11:xx no provider: not NANP, no tech prefix, no SIP code and 0 s: not answered.
        {
            "callid": "c5",
            "dt": at(11, 59),
            "customer_id": c,
            "provider_id": None,
            "dest_number": "12345",
            "dtmf": "",
        },
        # 11:xx P2: no SIP code but 45 s: answered; DTMF; foreign DID.
        {
            "callid": "c6",
            "dt": at(11, 30),
            "customer_id": int(c),
            "provider_id": "P2",
            "customer_charge": "0.333333",
            "provider_charge": "0.111111",
            "dest_number": "2012005557",
            "dest_cli": FOREIGN_DID,
            "tech_prefix": "22*",
            "duration": 45,
            "dtmf": "9",
        },
        # Another customer's call: must appear in none of CUSTOMER's reports.
        {
            "callid": "x1",
            "dt": at(10, 10),
            "customer_id": OTHER_CUSTOMER,
            "provider_id": "P1",
            "customer_charge": "9.000000",
            "provider_charge": "9.500000",  # sold at a loss: a negative margin
            "dest_number": "2012005555",
            "dest_cli": OWN_DID,
            "tech_prefix": "11#",
            "duration": 10,
            "sip_code": 200,
            "dtmf": "1",
        },
    ]


# ---------- the worker and its data ----------


def load_dids(env: dict[str, str], folder: Path) -> None:
    inventory = folder / "dids.csv"
    inventory.write_text(f"did,account\n{OWN_DID},{CUSTOMER}\n{FOREIGN_DID},8800\n")
    done = subprocess.run(
        [sys.executable, "-m", "streamagg.cli", "dids", "load", str(inventory)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


async def produce(bootstrap: str, topic: str, cdrs: list[dict[str, Any]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for cdr in cdrs:
            key = str(cdr["customer_id"]).encode()
            await producer.send_and_wait(topic, json.dumps(cdr).encode(), key=key)
    finally:
        await producer.stop()


def attempts(worker: WorkerProcess, customer: str, day: datetime) -> int:
    response = worker.get(
        f"/api/v1/customers/{customer}/reports/tech-prefix",
        ADMIN_TOKEN,
        **{"from": iso(day), "to": iso(day + timedelta(days=1))},
    )
    if response.status_code != 200:
        return -1
    return sum(row["total"] for row in response.json()["rows"])


def wait_for_calls(worker: WorkerProcess, day: datetime, expected: dict[str, int]) -> None:
    deadline = time.monotonic() + DATA_WAIT_S
    seen: dict[str, int] = {}
    while time.monotonic() < deadline:
        seen = {customer: attempts(worker, customer, day) for customer in expected}
        if seen == expected:
            return
        time.sleep(0.5)
    raise AssertionError(f"API shows {seen}, expected {expected}:\n{worker.tail()}")


@pytest.fixture
def loaded_worker(
    worker_factory: Any, kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> tuple[WorkerProcess, datetime]:
    """A worker with the DID inventory and sample_cdrs() of base_day() ingested."""
    # worker_factory derives its topics from unique_name the same way: load the DIDs first, so
    # that the worker knows them before it processes a CDR.
    load_dids(worker_env(kafka_bootstrap, unique_name, tmp_path, 1), tmp_path)
    worker = worker_factory(STREAMAGG_RATECENTERS=str(RATECENTERS))
    worker.wait_ready()
    day = base_day()
    asyncio.run(produce(kafka_bootstrap, worker.env["STREAMAGG_TOPIC"], sample_cdrs(day)))
    wait_for_calls(worker, day, {CUSTOMER: 6, OTHER_CUSTOMER: 1})
    return worker, day


# ---------- the browser ----------


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        # (a browser in New York: the page's zone defaults to it, SPEC §6)
        context = browser.new_context(
            viewport={"width": 1360, "height": 900},
            accept_downloads=True,
            timezone_id="America/New_York",
        )
        page = context.new_page()
        page.set_default_timeout(15_000)
        violations: list[str] = []
        page.on(
            "console",
            lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
        )
        try:
            yield page
            assert not violations, f"the page breaks its own CSP: {violations[:3]}"
        finally:
            context.close()
            browser.close()


def choose(page: Any, report: str, start: datetime, end: datetime, tz: str = "UTC") -> None:
    """Pick the report and the range: start's and end's wall-clock dates and hours in tz."""
    page.select_option("#tz", tz)
    page.check(f"#report-{report}")
    page.check("#mode-range")
    for name, moment in (("from", start), ("to", end)):
        page.fill(f"#{name}-date", moment.strftime("%Y-%m-%d"))
        if report != "did-cli":
            page.select_option(f"#{name}-hour", moment.strftime("%H"))


def generate(page: Any) -> None:
    """Click Generate Report and wait until the answer (table or message) is shown."""
    page.evaluate("document.getElementById('row-count').textContent = ''")
    page.evaluate("document.getElementById('message').hidden = true")
    page.click("#generate")
    # Polled from here: the page's Content-Security-Policy forbids the eval that
    # wait_for_function would run inside it.
    deadline = time.monotonic() + 15
    shown = (
        "document.getElementById('row-count').textContent !== ''"
        " || !document.getElementById('message').hidden"
    )
    while not page.evaluate(shown):
        assert time.monotonic() < deadline, "no answer shown within 15 s"
        time.sleep(0.05)
    page.wait_for_selector("#generate:not([disabled])")


def table(page: Any) -> tuple[list[str], list[list[str]], list[str]]:
    """Header labels, body cells and totals cells of the result table, as shown."""
    cells = "rows => rows.map(r => [...r.cells].map(c => c.textContent.trim()))"
    head = page.eval_on_selector_all("#result-table thead tr", cells)
    body = page.eval_on_selector_all("#result-table tbody tr", cells)
    foot = page.eval_on_selector_all("#result-table tfoot tr", cells)
    return head[0], body, (foot[0] if foot else [])


def message(page: Any) -> str:
    return str(page.inner_text("#message"))


def test_report_page_shows_the_four_reports(loaded_worker: Any, browser_page: Any) -> None:
    worker, day = loaded_worker
    page = browser_page
    page.goto(worker.base_url + "/")
    page.wait_for_selector("body[data-ready=true]")
    # The time zone defaults to the browser's; the checks below read UTC first.
    assert page.input_value("#tz") == "America/New_York"
    page.select_option("#tz", "UTC")

    # No token yet: the page asks for one instead of calling the API.
    page.fill("#customer", CUSTOMER)
    choose(page, "tech-prefix", day, day + timedelta(days=1))
    generate(page)
    assert "API token needed" in message(page)

    # A refused token shows the API's own message.
    page.fill("#token", "not-a-token")
    generate(page)
    assert "401" in message(page) and "unknown token" in message(page)
    page.fill("#token", LIMITED_TOKEN)
    generate(page)
    assert "403" in message(page) and f"may not read customer {CUSTOMER}" in message(page)

    page.fill("#token", ADMIN_TOKEN)
    assert page.evaluate("sessionStorage.getItem('streamagg.token')") == ADMIN_TOKEN
    # The customer field suggests the customers this token may read that have data.
    options = "list => [...list.options].map(o => o.value)"
    wait_for(
        lambda: page.eval_on_selector("#customer-list", options) == [CUSTOMER, OTHER_CUSTOMER],
        15,
        "the customer list on the page",
    )
    assert ADMIN_TOKEN not in page.url
    check_tech_prefix(page)
    check_csv_download(page)
    check_dtmf(page, day)
    check_local_time(page, day)
    check_rate_center(page, day)
    check_did_cli(page, day)
    check_routes(page, day)
    check_negative_margin(page, day)
    check_empty_range(page, day)
    check_bad_range_message(page, day)

    # Last choices are remembered, the token is not.
    assert ADMIN_TOKEN not in page.evaluate("JSON.stringify(localStorage)")
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    assert page.input_value("#customer") == CUSTOMER
    assert page.is_checked("#report-did-cli")


def check_tech_prefix(page: Any) -> None:
    generate(page)
    head, body, foot = table(page)
    assert head == ["Tech prefix", "Attempts", "Answered", "ASR %", "ACD (s)"]
    # 11#: c1 (200, 60 s), c2 (486), c3 (200, 30 s) → 2/3 = 66.67 %, (60+30)/2 = 45.0 s
    # 22*: c4 (200, 90 s), c6 (no code, 45 s) → 2/2 = 100 %, (90+45)/2 = 67.5 s
    # "":  c5 (no code, 0 s) → not answered
    assert body == [
        ["11#", "3", "2", "66.67", "45.0"],
        ["22*", "2", "2", "100.00", "67.5"],
        ["(none)", "1", "0", "0.00", "0.0"],
    ]
    # Overall: 4/6 = 66.67 %, (60+30+90+45)/4 = 56.25 → 56.3 s
    assert foot == ["Total (3 rows)", "6", "4", "66.67", "56.3"]
    assert page.inner_text("#row-count") == "3"
    assert page.locator("#chart-body svg .hbar").count() == 3


def check_routes(page: Any, day: datetime) -> None:
    choose(page, "routes", day, day + timedelta(days=1))
    generate(page)
    head, body, foot = table(page)
    assert head == [
        "Provider",
        "Tech prefix",
        "Attempts",
        "Answered",
        "ASR %",
        "ACD (s)",
        "NER %",
        "Short calls %",
        "PDD (ms)",
        "SIP codes",
    ]
    assert body == [
        # c1 (200, 60 s, PDD 1200) and c2 (486 busy: effective, PDD 3000)
        ["P1", "11#", "2", "1", "50.00", "60.0", "100.00", "0.00", "2100", "200 (1), 486 (1)"],
        # c5: no provider, no prefix, no SIP code, 0 s: not answered, not effective
        ["(none)", "(none)", "1", "0", "0.00", "0.0", "0.00", "0.00", "", ""],
        ["P1", "22*", "1", "1", "100.00", "90.0", "100.00", "0.00", "2500", "200 (1)"],  # c4
        ["P2", "11#", "1", "1", "100.00", "30.0", "100.00", "0.00", "", "200 (1)"],  # c3
        # c6: no SIP code, 45 s: answered (and effective) by the duration rule
        ["P2", "22*", "1", "1", "100.00", "45.0", "100.00", "0.00", "", ""],
    ]
    # 4 of 6 answered; ACD (60 + 90 + 30 + 45) / 4 = 56.25 → 56.3; NER 5 of 6 effective.
    assert foot == ["Total (5 rows)", "", "6", "4", "66.67", "56.3", "83.33", "0.00", "", ""]
    assert page.locator("#chart-body svg .hbar").count() == 5
    page.screenshot(path=str(ROUTES_SCREENSHOT), full_page=True)


def check_negative_margin(page: Any, day: datetime) -> None:
    page.fill("#customer", OTHER_CUSTOMER)
    choose(page, "dtmf", day, day + timedelta(days=1))
    generate(page)
    _, body, _ = table(page)
    # x1: 9.00 charged, 9.50 paid: -0.50, -0.5 / 9 = -5.555…% → -5.56
    assert [row[6:] for row in body] == [["-0.500000", "-5.56"]]
    negative = page.eval_on_selector_all(
        "#result-table tbody td.negative", "cells => cells.map(c => c.textContent.trim())"
    )
    assert negative == ["-0.500000", "-5.56"]
    page.fill("#customer", CUSTOMER)


def check_csv_download(page: Any) -> None:
    with page.expect_download() as download_info:
        page.click("#download-csv")
    download = download_info.value
    assert download.suggested_filename.startswith(f"tech-prefix_{CUSTOMER}_")
    text = Path(download.path()).read_text(encoding="utf-8")
    assert list(csv.reader(io.StringIO(text))) == [
        ["tech_prefix", "total", "answered_calls", "asr", "acd"],
        ["11#", "3", "2", "66.67", "45.0"],
        ["22*", "2", "2", "100.0", "67.5"],
        ["", "1", "0", "0.0", "0.0"],
    ]


def check_dtmf(page: Any, day: datetime) -> None:
    choose(page, "dtmf", day, day + timedelta(days=1))
    generate(page)
    head, body, foot = table(page)
    assert head == [
        "Period start",
        "Provider",
        "Customer charge",
        "Provider charge",
        "DTMF calls",
        "Calls",
        "Margin",
        "Margin %",
    ]
    date = day.strftime("%Y-%m-%d")
    # Margin = customer - provider charge; its % of the customer charge (none when 0 charged).
    assert body == [
        # c1 + c2 (0.0115 / 0.03 = 38.33 %); c3
        [f"{date} 10:00", "P1", "0.030000", "0.018500", "1", "2", "0.011500", "38.33"],
        [f"{date} 10:00", "P2", "1.500000", "1.000000", "1", "1", "0.500000", "33.33"],
        # c5 (no provider, empty dtmf, nothing charged); c4; c6
        [f"{date} 11:00", "(none)", "0.000000", "0.000000", "0", "1", "0.000000", ""],
        [f"{date} 11:00", "P1", "0.250000", "0.125000", "0", "1", "0.125000", "50.00"],
        [f"{date} 11:00", "P2", "0.333333", "0.111111", "1", "1", "0.222222", "66.67"],
    ]
    # 0.858722 / 2.113333 = 40.6335 %
    assert foot == ["Total (5 rows)", "", "2.113333", "1.254611", "3", "6", "0.858722", "40.63"]
    # One bar group per hour with calls: 10:00 and 11:00.
    assert page.locator("#chart-body svg .bar-group").count() == 2

    # One row per day and provider (SPEC §6 granularity).
    page.select_option("#granularity", "day")
    generate(page)
    _, by_day, _ = table(page)
    assert by_day == [
        [f"{date} 00:00", "(none)", "0.000000", "0.000000", "0", "1", "0.000000", ""],
        # c1 + c2 + c4: 0.1365 / 0.28 = 48.75 %
        [f"{date} 00:00", "P1", "0.280000", "0.143500", "1", "3", "0.136500", "48.75"],
        # c3 + c6: 0.722222 / 1.833333 = 39.394 %
        [f"{date} 00:00", "P2", "1.833333", "1.111111", "2", "2", "0.722222", "39.39"],
    ]
    page.select_option("#granularity", "hour")


def check_local_time(page: Any, day: datetime) -> None:
    """The same calls in Asia/Kathmandu (UTC+05:45), the local day of the same date: c1 10:05Z
    is 15:50 there; c2, c3, c4 (10:20, 10:40, 11:00Z) 16:05, 16:25, 16:45; c6, c5 (11:30,
    11:59Z) 17:15, 17:44."""
    choose(page, "dtmf", day, day + timedelta(days=1), tz="Asia/Kathmandu")
    generate(page)
    _, body, foot = table(page)
    date = day.strftime("%Y-%m-%d")
    assert [[row[0], row[1], row[4], row[5]] for row in body] == [
        [f"{date} 15:00 +05:45", "P1", "1", "1"],  # c1
        [f"{date} 16:00 +05:45", "P1", "0", "2"],  # c2, c4
        [f"{date} 16:00 +05:45", "P2", "1", "1"],  # c3
        [f"{date} 17:00 +05:45", "(none)", "0", "1"],  # c5
        [f"{date} 17:00 +05:45", "P2", "1", "1"],  # c6
    ]
    assert foot[4:8] == ["3", "6", "0.858722", "40.63"]  # (the day's calls and margin, whole)
    next_day = (day + timedelta(days=1)).strftime("%Y-%m-%d")
    assert page.inner_text("#result-range") == f"{date} → {next_day} Asia/Kathmandu"
    assert page.locator("#chart-body svg .bar-group").count() == 3  # local hours 15, 16, 17
    page.screenshot(path=str(SCREENSHOT), full_page=True)


def check_rate_center(page: Any, day: datetime) -> None:
    choose(page, "rate-center", day + timedelta(hours=10), day + timedelta(hours=12))
    generate(page)
    head, body, foot = table(page)
    assert head == [
        "Prefix",
        "Rate center",
        "State",
        "Customer charge",
        "Provider charge",
        "Calls",
        "Margin",
        "Margin %",
    ]
    assert body == [
        # c1, c3 (tech prefix stripped), c6: 0.726222 / 1.843333 = 39.397 %
        ["201200", "JERSEY CITY", "NJ", "1.843333", "1.117111", "3", "0.726222", "39.40"],
        ["201204", "HACKENSACK", "NJ", "0.020000", "0.012500", "1", "0.007500", "37.50"],  # c2
        ["415555", "UNKNOWN", "UNKNOWN", "0.250000", "0.125000", "1", "0.125000", "50.00"],  # c4
    ]
    assert foot == [
        "Total (3 rows)",
        "",
        "",
        "2.113333",
        "1.254611",
        "5",
        "0.858722",
        "40.63",
    ]
    # Sorting by a column is a click on its header.
    page.click("#result-table thead th[data-key=prefix] button")
    _, sorted_body, _ = table(page)
    assert [row[0] for row in sorted_body] == ["201200", "201204", "415555"]
    page.click("#result-table thead th[data-key=prefix] button")
    _, sorted_body, _ = table(page)
    assert [row[0] for row in sorted_body] == ["415555", "201204", "201200"]


def check_did_cli(page: Any, day: datetime) -> None:
    choose(page, "did-cli", day, day + timedelta(days=1))
    generate(page)
    head, body, foot = table(page)
    assert head == ["Owner account", "DID", "Calls", "Foreign"]
    assert body == [
        [CUSTOMER, OWN_DID, "2", "no"],  # c1, c3
        ["8800", FOREIGN_DID, "2", "yes"],  # c2, c6
    ]
    assert foot == ["Total (2 rows)", "", "4", ""]


def check_empty_range(page: Any, day: datetime) -> None:
    choose(page, "did-cli", day - timedelta(days=1), day)
    generate(page)
    assert "No calls in this range." in message(page)
    assert page.is_hidden("#result-table")
    assert page.inner_text("#row-count") == "0"


def check_bad_range_message(page: Any, day: datetime) -> None:
    # The page refuses an end before the start without asking the API.
    choose(page, "did-cli", day, day - timedelta(days=1))
    generate(page)
    assert "To must be after from." in message(page)


def test_api_errors_reach_the_page_verbatim(worker_factory: Any, browser_page: Any) -> None:
    """The page shows the API's own message for a rejected request (here a too-long range)."""
    worker = worker_factory(STREAMAGG_RETENTION_DAYS="30")
    worker.wait_ready()
    page = browser_page
    page.goto(worker.base_url + "/")
    page.wait_for_selector("body[data-ready=true]")
    page.fill("#token", ADMIN_TOKEN)
    page.fill("#customer", CUSTOMER)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    choose(page, "tech-prefix", today - timedelta(days=40), today)
    generate(page)
    api = http_get(
        f"{worker.base_url}/api/v1/customers/{CUSTOMER}/reports/tech-prefix",
        params={"from": iso(today - timedelta(days=40)), "to": iso(today)},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert api.status_code == 400
    shown = message(page)
    assert "Request rejected (400)" in shown
    assert api.json()["error"]["message"] in shown
    assert "retention of 30 days" in shown


def test_the_page_refreshes_itself_while_the_range_includes_now(
    loaded_worker: Any, browser_page: Any, kafka_bootstrap: str
) -> None:
    """SPEC §6 live page: a range that includes the present is asked again every 5 s with its
    ETag (a 304 while nothing changed), and a new call shows up without a click."""
    worker, _ = loaded_worker
    live_customer = "7003"
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)

    def live_call(callid: str) -> dict[str, Any]:
        moment = datetime.now(UTC) - timedelta(minutes=1)
        return {
            "callid": callid,
            "dt": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "customer_id": live_customer,
            "provider_id": "P1",
            "tech_prefix": "33#",
            "duration": 20,
            "sip_code": 200,
        }

    topic = worker.env["STREAMAGG_TOPIC"]

    def send(cdr: dict[str, Any]) -> None:
        # (Playwright's sync API runs an event loop in this thread: produce from another.)
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, produce(kafka_bootstrap, topic, [cdr])).result()

    send(live_call("live-1"))
    wait_for_calls(worker, today, {live_customer: 1})

    page = browser_page
    statuses: list[int] = []
    page.on(
        "response",
        lambda r: statuses.append(r.status) if "/reports/tech-prefix" in r.url else None,
    )
    page.goto(worker.base_url + "/")
    page.wait_for_selector("body[data-ready=true]")
    page.fill("#token", ADMIN_TOKEN)
    page.fill("#customer", live_customer)
    choose(page, "tech-prefix", today, today + timedelta(days=1))
    generate(page)
    assert table(page)[1] == [["33#", "1", "1", "100.00", "20.0"]]
    assert page.inner_text("#live").startswith("live · updated")

    send(live_call("live-2"))
    wait_for(
        lambda: table(page)[1] == [["33#", "2", "2", "100.00", "20.0"]] and 304 in statuses,
        60,
        "the page to show the new call by itself (after a 304 of an unchanged answer)",
    )
    assert page.inner_text("#live").startswith("live · updated")

    # A range in the past is not live.
    choose(page, "tech-prefix", today - timedelta(days=2), today - timedelta(days=1))
    generate(page)
    assert page.is_hidden("#live")
