"""Every report, for many ranges and time zones, equals an independent DuckDB computation from
the raw CDRs.

110,000 messages (40 customers, 13 months with month and year boundaries, every dt spelling,
late and out-of-order CDRs, re-sent duplicates, DIDs as caller ID, rate centers) go through the
real broker into one worker, which is SIGKILLed and restarted in the middle.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.conftest import ADMIN_TOKEN
from tests.support.cdr_mix import CdrMix, rate_center_table, resolver, utc_now_hour
from tests.support.common import REPORT_IDS, iso, month_start
from tests.support.kafka_io import produce, produce_dids
from tests.support.oracle import ReportOracle
from tests.support.worker import WorkerProcess, wait_for

pytestmark = pytest.mark.timeout(900)

REPORTS = REPORT_IDS


def ranges_for(report: str, now: datetime) -> list[tuple[datetime, datetime]]:
    """An hour, a day, months, 13 months, and ranges that cut through days, months and a year."""
    today = now.replace(hour=0)
    this_month = month_start(now)
    new_year = datetime(now.year, 1, 1, tzinfo=UTC)
    spans = [
        (today - timedelta(days=3), today - timedelta(days=2)),
        (this_month, today + timedelta(days=1)),
        (month_start(now, 1), this_month),
        (month_start(now, 11), month_start(now, 10)),
        (month_start(now, 12), today + timedelta(days=1)),  # 13 months
        (new_year - timedelta(days=2), new_year + timedelta(days=33)),
        (today - timedelta(days=389), today - timedelta(days=300)),
    ]
    if report != "did-cli":  # hour-aligned ranges: not allowed for a per-day report
        spans += [
            (now - timedelta(hours=5), now - timedelta(hours=4)),
            (new_year - timedelta(hours=3), new_year + timedelta(hours=2)),
            (month_start(now, 2) - timedelta(hours=7), month_start(now, 1) + timedelta(hours=13)),
            (today - timedelta(days=40, hours=5), today - timedelta(days=3, hours=-7)),
        ]
    return spans


ZONES = ("America/New_York", "Asia/Kathmandu", "Asia/Kolkata", "Australia/Adelaide")


@functools.cache  # (asked again for each customer and report: 37,000 conversions each time)
def clock_changes(zone: str, start: datetime, end: datetime) -> tuple[datetime, ...]:
    """The instants (quarter-hours) in [start, end) where the zone's offset changes."""
    info = ZoneInfo(zone)
    quarters = int((end - start).total_seconds()) // 900
    moments = [start + timedelta(minutes=15 * q) for q in range(quarters)]
    offsets = [moment.astimezone(info).utcoffset() for moment in moments]
    return tuple(moments[i] for i in range(1, quarters) if offsets[i] != offsets[i - 1])


def zone_ranges(report: str, zone: str, now: datetime) -> list[tuple[datetime, datetime]]:
    """Local ranges of the zone (SPEC §6): yesterday, this local month, 13 local months, and
    the local days of each clock change of the last 13 months, with a range across them all;
    for hourly reports also local hours cut around the changes."""
    info = ZoneInfo(zone)
    local_now = now.astimezone(info)
    today = local_now.replace(hour=0, minute=0, second=0, microsecond=0)

    def midnight(moment: datetime) -> datetime:  # (the first instant of its local day)
        local = moment.astimezone(info)
        return datetime(local.year, local.month, local.day, tzinfo=info)

    month = today.replace(day=1)
    spans = [
        (midnight(today - timedelta(days=1)), today),
        (month, midnight(today + timedelta(days=1))),
        (month.replace(year=month.year - 1), midnight(today + timedelta(days=1))),
    ]
    changes = clock_changes(zone, now - timedelta(days=390), now)
    for change in changes:
        day = midnight(change)
        spans.append((day, midnight(day + timedelta(hours=30))))
        if report != "did-cli":
            spans.append((change - timedelta(hours=3), change + timedelta(hours=5)))
    if changes:
        spans.append(
            (midnight(changes[0] - timedelta(days=2)), midnight(changes[-1] + timedelta(days=3)))
        )
    return spans


def api_rows(
    worker: WorkerProcess,
    report: str,
    customer: str,
    start: datetime,
    end: datetime,
    local: bool = False,
    **params: str,
) -> list:  # type: ignore[type-arg]
    """The rows of every page; ``local``: from/to written with the zone's offset."""
    edges = (start.isoformat(), end.isoformat()) if local else (iso(start), iso(end))
    response = worker.get_all_pages(
        f"/api/v1/customers/{customer}/reports/{report}",
        ADMIN_TOKEN,
        **{"from": edges[0], "to": edges[1], **params},
    )
    assert response.status_code == 200, response.text
    return response.json()["rows"]


def processed(worker: WorkerProcess) -> int:
    total = 0
    for line in worker.get("/metrics").text.splitlines():
        if line.startswith("streamagg_cdrs_total{"):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


async def test_reports_equal_independent_computation_through_a_restart(
    worker_factory, kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    now = utc_now_hour()
    mix = CdrMix(seed=20261126, now=now, customers=40)
    first, second = mix.messages(60_000), mix.messages(50_000)
    csv_text, table, outside = rate_center_table()
    rate_file = tmp_path / "ratecenters.csv"
    rate_file.write_text(csv_text)
    await produce_dids(kafka_bootstrap, f"{unique_name}-dids", mix.dids)

    worker = worker_factory(STREAMAGG_RATECENTERS=str(rate_file))
    worker.wait_ready()
    topic = worker.env["STREAMAGG_TOPIC"]

    await produce(kafka_bootstrap, topic, first)
    wait_for(lambda: processed(worker) >= len(first), 300, "the first 60,000 CDRs")
    full = (now.replace(hour=0) - timedelta(days=395), now.replace(hour=0) + timedelta(days=1))
    watched = [c for c in mix.customer_ids[:5]]
    before = {(r, c): api_rows(worker, r, c, *full) for r in REPORTS for c in watched}

    worker.kill()
    worker.start().wait_ready()

    def unchanged() -> bool:
        # Batches not committed before the kill are applied again after recovery.
        after = {(r, c): api_rows(worker, r, c, *full) for r in REPORTS for c in watched}
        return after == before

    wait_for(unchanged, 120, "the reports after the restart to equal those before it")

    await produce(kafka_bootstrap, topic, second)
    oracle = ReportOracle(first + second, did_owner=mix.dids, rate_centers=resolver(table, outside))
    assert oracle.duplicate_count() > 1000 and oracle.accepted_count() > 100_000

    def totals_match() -> bool:
        return all(
            api_rows(worker, "tech-prefix", c, *full) == oracle.report("tech-prefix", c, *full)
            for c in oracle.customers()
        )

    wait_for(totals_match, 300, "all 110,000 CDRs in the reports")

    compared = 0
    for customer in oracle.customers()[:12]:
        for report in REPORTS:
            for start, end in ranges_for(report, now):
                expected = oracle.report(report, customer, start, end)
                assert api_rows(worker, report, customer, start, end) == expected, (
                    f"{report} of customer {customer} for [{iso(start)}, {iso(end)})"
                )
                compared += 1
        # dtmf per day and per month (SPEC §6), over the ranges of its hours.
        for granularity in ("day", "month"):
            for start, end in ranges_for("dtmf", now):
                expected = oracle.report("dtmf", customer, start, end, granularity)
                got = api_rows(worker, "dtmf", customer, start, end, granularity=granularity)
                assert got == expected, f"dtmf by {granularity} of {customer} [{iso(start)}, …)"
                compared += 1
    assert compared > 400

    # Local time (SPEC §6): every report in zones with DST, :45 and :30 offsets.
    for customer in oracle.customers()[:4]:
        for zone in ZONES:
            for report in REPORTS:
                for granularity in ("hour", "day", "month") if report == "dtmf" else ("hour",):
                    for start, end in zone_ranges(report, zone, now):
                        expected = oracle.report(report, customer, start, end, granularity, zone)
                        extra = {"granularity": granularity} if report == "dtmf" else {}
                        got = api_rows(
                            worker, report, customer, start, end, tz=zone, local=True, **extra
                        )
                        assert got == expected, (
                            f"{report} by {granularity} of {customer} in {zone} "
                            f"[{start.isoformat()}, {end.isoformat()})"
                        )
                        compared += 1
    assert compared > 1000
