"""The four report folds of SPEC §2 on hand-made CDRs, and queries over bucketed state."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamagg.batches import Record
from streamagg.cdr import Cdr
from streamagg.reference.ratecenters import RateCenterRow
from streamagg.reports import REPORTS
from streamagg.reports.base import QueryContext, Report, money, ratio
from streamagg.reports.did_cli import DidCliReport
from streamagg.reports.dtmf import DtmfReport
from streamagg.reports.periods import find_zone
from streamagg.reports.query import merged_groups, run_query
from streamagg.reports.rate_center import RateCenterReport
from streamagg.reports.tech_prefix import TechPrefixReport
from streamagg.reports.view import column_keys
from streamagg.tables.fold import fold_records
from streamagg.tables.keys import NEWEST_MS, SWEPT_BEFORE_HOUR, decode_int, encode_int
from streamagg.tables.retention import (
    RetentionSweeper,
    intact_from_quarter,
    oldest_kept_hour,
    partition_intact_from,
)
from streamagg.tables.rollup import OPEN_HOURS
from tests.support.common import without_margin
from tests.support.memstore import MemState

_callids = itertools.count()


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp())


H13 = at(2026, 11, 25, 13)


def call(**fields: Any) -> Cdr:
    """An accepted CDR of customer "42" at 2026-11-25T13:00Z; ``fields`` override."""
    values: dict[str, Any] = {
        "callid": f"call-{next(_callids)}",
        "customer_id": "42",
        "start": H13,
        "provider_id": "",
        "customer_charge": 0,
        "provider_charge": 0,
        "tech_prefix": "",
        "duration": 0,
        "answered": False,
        "has_dtmf": False,
        "nanp_number": "",
        "cli": "",
        "did_owner": "",
    }
    values.update(fields)
    return Cdr(**values)


def add_into(target: dict[str, list[int]], source: dict[str, list[int]]) -> None:
    for group, vector in source.items():
        existing = target.setdefault(group, [0] * len(vector))
        for i, value in enumerate(vector):
            existing[i] += value


def fold(
    report: Report, cdrs: Iterable[Cdr], zone: str = "UTC", granularity: str = "hour"
) -> dict[str, list[int]]:
    """The groups of the calls, summed; a report whose groups carry the hour (dtmf) gets them
    per period of the zone, as its rows() takes them (``{first second}␟{rest}``)."""
    groups: dict[str, list[int]] = {}
    for cdr in cdrs:
        group = report.group(cdr)
        if group is None:
            continue
        if report.hour_in_group:
            group = f"{local_period(cdr.start, zone, granularity)}\x1f{group.split(chr(31), 1)[1]}"
        add_into(groups, {group: report.delta(cdr)})
    return groups


def local_period(moment: int, zone: str, granularity: str) -> int:
    """The first second of the local hour/day/month of an instant, found by walking back
    quarter by quarter while the wall-clock period (and, for hours, the offset) is the same."""
    info = ZoneInfo(zone)

    def period(at: int) -> tuple[object, ...]:
        local = datetime.fromtimestamp(at, info)
        if granularity == "hour":
            return (local.date(), local.hour, local.utcoffset())
        if granularity == "day":
            return (local.date(),)
        return (local.year, local.month)

    first = moment - moment % 900
    while period(first - 900) == period(moment):
        first -= 900
    return first


def rows_of(report: Report, cdrs: Iterable[Cdr], **context: Any) -> list[dict[str, Any]]:
    context.setdefault("customer_id", "42")
    return report.rows(fold(report, cdrs), QueryContext(**context))


def test_registry_holds_the_reports_by_api_id() -> None:
    assert sorted(REPORTS) == ["did-cli", "dtmf", "rate-center", "routes", "tech-prefix"]
    assert all(report.name == name for name, report in REPORTS.items())


def test_money_and_ratio_helpers() -> None:
    assert money(0) == "0.000000"
    assert money(12_345_000) == "12.345000"
    assert money(1) == "0.000001"
    assert money(10**15) == "1000000000.000000"
    assert money(123 * 10**18 + 5) == "123000000000000.000005"
    assert ratio(1, 8, 2) == 0.13  # 0.125 half-up
    assert ratio(1, 3, 2) == 0.33
    assert ratio(2, 3, 1) == 0.7
    assert ratio(5, 0, 2) == 0.0
    assert ratio(-1, 8, 2) == -0.13  # half away from zero
    assert ratio(-1, 1000, 2) == 0.0 and str(ratio(-1, 1000, 2)) == "0.0"  # never "-0.0"


@given(st.integers(min_value=-(10**24), max_value=10**24))
def test_money_is_the_exact_decimal_with_six_places(micros: int) -> None:
    assert money(micros) == f"{Decimal(micros).scaleb(-6):.6f}"


@given(
    numerator=st.integers(min_value=-(10**22), max_value=10**22),
    denominator=st.integers(min_value=-(10**20), max_value=10**20).filter(bool),
    places=st.integers(min_value=0, max_value=3),
)
@settings(max_examples=2000)
def test_ratio_is_the_decimal_rounded_half_up(
    numerator: int, denominator: int, places: int
) -> None:
    """The integer arithmetic of ratio() gives the float of the decimal rounded half away from
    zero, for any sizes (huge ones take the decimal road)."""
    exact = Decimal(numerator) / Decimal(denominator)
    expected = float(exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))
    assert ratio(numerator, denominator, places) == expected


@pytest.mark.parametrize(
    ("numerator", "denominator", "places", "expected"),
    [
        (1, 200, 2, 0.01),
        (-1, 200, 2, -0.01),
        (1, -200, 2, -0.01),
        (5, 2, 0, 3.0),
        (-5, 2, 0, -3.0),
        (3, 8, 2, 0.38),
        (-3, -8, 2, 0.38),
        (1, 2000, 3, 0.001),
    ],
)
def test_ratio_rounds_ties_away_from_zero(
    numerator: int, denominator: int, places: int, expected: float
) -> None:
    assert ratio(numerator, denominator, places) == expected


# ---------------------------------------------------------------- dtmf


def test_dtmf_rows_per_hour_and_provider() -> None:
    cdrs = [
        call(provider_id="7", customer_charge=1_500_000, provider_charge=1_000_000, has_dtmf=True),
        call(provider_id="7", customer_charge=250_000, provider_charge=1),
        call(start=H13 + 3599, provider_id="10", customer_charge=1),
        call(start=H13 + 3600, provider_id="7", has_dtmf=True),
        call(start=H13 - 1, provider_id=""),
        call(start=H13 + 60, provider_id=""),
    ]
    assert without_margin(rows_of(DtmfReport(), cdrs)) == [
        {
            "dt": "2026-11-25T12:00:00Z",
            "provider_id": "",
            "customer_charge": "0.000000",
            "provider_charge": "0.000000",
            "dtmf_count": 0,
            "calls": 1,
        },
        {
            "dt": "2026-11-25T13:00:00Z",
            "provider_id": "",
            "customer_charge": "0.000000",
            "provider_charge": "0.000000",
            "dtmf_count": 0,
            "calls": 1,
        },
        {
            "dt": "2026-11-25T13:00:00Z",
            "provider_id": "10",
            "customer_charge": "0.000001",
            "provider_charge": "0.000000",
            "dtmf_count": 0,
            "calls": 1,
        },
        {
            "dt": "2026-11-25T13:00:00Z",
            "provider_id": "7",
            "customer_charge": "1.750000",
            "provider_charge": "1.000001",
            "dtmf_count": 1,
            "calls": 2,
        },
        {
            "dt": "2026-11-25T14:00:00Z",
            "provider_id": "7",
            "customer_charge": "0.000000",
            "provider_charge": "0.000000",
            "dtmf_count": 1,
            "calls": 1,
        },
    ]


def test_dtmf_columns_match_the_row_keys() -> None:
    (row,) = rows_of(DtmfReport(), [call()])
    assert tuple(row) == column_keys(DtmfReport())


# ---------------------------------------------------------------- rate-center


BLOCKS = {
    # 212-555: the whole NPA-NXX is one rate center; the directory answers per block.
    "2125551": RateCenterRow("212555", "NWYRCYZN01", "NY"),
    "2125552": RateCenterRow("212555", "NWYRCYZN01", "NY"),
    # 201-555-0 has its own rate center; the rest of 201-555 another.
    "2015550": RateCenterRow("2015550", "HACKENSACK", "NJ"),
    "2015551": RateCenterRow("201555", "JERSEYCITY", "NJ"),
}
OUTSIDE_NPAS = {"416", "876"}


def fake_resolve(block: str) -> RateCenterRow | None:
    if block[:3] in OUTSIDE_NPAS:
        return None
    found = BLOCKS.get(block)
    if found is not None:
        return found
    # Like a real directory: a block without data of its own takes its NPA-NXX's rate center.
    for row in BLOCKS.values():
        if row.prefix == block[:6]:
            return row
    return RateCenterRow(block[:6], "UNKNOWN", "UNKNOWN")


def test_rate_center_rows_merge_blocks_and_drop_foreign_prefixes() -> None:
    cdrs = [
        call(nanp_number="2125551000", customer_charge=1_000_000, provider_charge=500_000),
        call(nanp_number="2125552999", customer_charge=2_000_000, provider_charge=250_000),
        call(nanp_number="2125551234", customer_charge=1),
        call(nanp_number="2015550123", customer_charge=3),
        call(nanp_number="2015551123", customer_charge=4),
        call(nanp_number="2015551999", customer_charge=5),
        call(nanp_number="4165550100", customer_charge=999),  # Toronto: outside the US
        call(nanp_number="8765550100", customer_charge=999),  # Jamaica
        call(nanp_number="3055550100", customer_charge=7),  # known to no file
        call(nanp_number="", customer_charge=10**9),  # not NANP: not in this report
    ]
    assert without_margin(rows_of(RateCenterReport(), cdrs, resolve_rate_center=fake_resolve)) == [
        {
            "prefix": "212555",
            "rc": "NWYRCYZN01",
            "state": "NY",
            "customer_charge": "3.000001",
            "provider_charge": "0.750000",
            "call_count": 3,
        },
        {
            "prefix": "201555",
            "rc": "JERSEYCITY",
            "state": "NJ",
            "customer_charge": "0.000009",
            "provider_charge": "0.000000",
            "call_count": 2,
        },
        {
            "prefix": "2015550",
            "rc": "HACKENSACK",
            "state": "NJ",
            "customer_charge": "0.000003",
            "provider_charge": "0.000000",
            "call_count": 1,
        },
        {
            "prefix": "305555",
            "rc": "UNKNOWN",
            "state": "UNKNOWN",
            "customer_charge": "0.000007",
            "provider_charge": "0.000000",
            "call_count": 1,
        },
    ]


def test_rate_center_without_reference_data_is_unknown_per_npa_nxx() -> None:
    cdrs = [call(nanp_number="2125551000"), call(nanp_number="2125559000")]
    assert without_margin(rows_of(RateCenterReport(), cdrs)) == [
        {
            "prefix": "212555",
            "rc": "UNKNOWN",
            "state": "UNKNOWN",
            "customer_charge": "0.000000",
            "provider_charge": "0.000000",
            "call_count": 2,
        }
    ]


def test_rate_center_ties_sort_by_prefix() -> None:
    cdrs = [call(nanp_number=n) for n in ("3055550100", "2125550100", "2125550101", "2015550100")]
    rows = rows_of(RateCenterReport(), cdrs)
    assert [(r["prefix"], r["call_count"]) for r in rows] == [
        ("212555", 2),
        ("201555", 1),
        ("305555", 1),
    ]


# ---------------------------------------------------------------- did-cli


def test_did_cli_counts_per_owner_and_did_with_foreign_flag() -> None:
    cdrs = [
        call(cli="2125550100", did_owner="42"),
        call(cli="2125550100", did_owner="42"),
        call(cli="2125550199", did_owner="42"),
        call(cli="6465550100", did_owner="7"),
        call(cli="6465550100", did_owner="7"),
        call(cli="6465550100", did_owner="7"),
        call(cli="6465550101", did_owner="7"),
        call(cli="6465550102", did_owner="7"),
        call(cli="3055550100", did_owner="100"),
        call(cli="9995550100", did_owner=""),  # not a DID of the inventory
    ]
    assert rows_of(DidCliReport(), cdrs) == [
        {"account": "100", "dest_cli": "3055550100", "count": 1, "foreign": True},
        {"account": "42", "dest_cli": "2125550100", "count": 2, "foreign": False},
        {"account": "42", "dest_cli": "2125550199", "count": 1, "foreign": False},
        {"account": "7", "dest_cli": "6465550100", "count": 3, "foreign": True},
        {"account": "7", "dest_cli": "6465550101", "count": 1, "foreign": True},
        {"account": "7", "dest_cli": "6465550102", "count": 1, "foreign": True},
    ]


def test_did_cli_foreign_is_relative_to_the_queried_customer() -> None:
    cdrs = [call(customer_id="7", cli="6465550100", did_owner="7")]
    assert rows_of(DidCliReport(), cdrs, customer_id="7")[0]["foreign"] is False
    assert rows_of(DidCliReport(), cdrs, customer_id="42")[0]["foreign"] is True


# ---------------------------------------------------------------- tech-prefix


def answered(seconds_micros: int, **fields: Any) -> Cdr:
    return call(answered=True, duration=seconds_micros, **fields)


def test_tech_prefix_asr_and_acd() -> None:
    cdrs = [
        answered(100_250_000, tech_prefix="123#"),
        answered(50_100_000, tech_prefix="123#"),
        call(tech_prefix="123#", duration=40_000_000),  # not answered: its duration is ignored
        call(tech_prefix=""),
        call(tech_prefix=""),
        call(tech_prefix="77*"),
        call(tech_prefix="77*"),
        call(tech_prefix="77*"),
    ]
    assert rows_of(TechPrefixReport(), cdrs) == [
        # 2/3 = 66.666…% → 66.67; (100.25 + 50.1) / 2 = 75.175 s → 75.2
        {"tech_prefix": "123#", "total": 3, "answered_calls": 2, "asr": 66.67, "acd": 75.2},
        {"tech_prefix": "77*", "total": 3, "answered_calls": 0, "asr": 0.0, "acd": 0.0},
        {"tech_prefix": "", "total": 2, "answered_calls": 0, "asr": 0.0, "acd": 0.0},
    ]


def test_tech_prefix_ratios_round_half_up() -> None:
    # ASR 1/32 = 3.125 % → 3.13 (half-even would give 3.12); ACD 0.25 s → 0.3 (not 0.2).
    cdrs = [answered(250_000, tech_prefix="9")] + [call(tech_prefix="9") for _ in range(31)]
    (row,) = rows_of(TechPrefixReport(), cdrs)
    assert row == {"tech_prefix": "9", "total": 32, "answered_calls": 1, "asr": 3.13, "acd": 0.3}
    (full,) = rows_of(TechPrefixReport(), [answered(1_000_000)])
    assert full["asr"] == 100.0 and full["acd"] == 1.0


def test_tech_prefix_ratios_come_from_summed_counts_not_averages() -> None:
    report = TechPrefixReport()
    busy_hour = fold(report, [call(tech_prefix="1")] * 3)  # 0 of 3 answered
    quiet_hour = fold(report, [answered(10_000_000, tech_prefix="1")])  # 1 of 1, 10 s
    merged: dict[str, list[int]] = {}
    add_into(merged, busy_hour)
    add_into(merged, quiet_hour)
    (row,) = report.rows(merged, QueryContext("42"))
    assert row["asr"] == 25.0  # not (0 + 100) / 2
    assert row["acd"] == 10.0
    assert row["total"] == 4 and row["answered_calls"] == 1


def test_tech_prefix_sorted_by_total_then_prefix() -> None:
    cdrs = [call(tech_prefix=p) for p in ("b", "a", "c", "c", "", "b")]
    rows = rows_of(TechPrefixReport(), cdrs)
    assert [(r["tech_prefix"], r["total"]) for r in rows] == [
        ("b", 2),
        ("c", 2),
        ("", 1),
        ("a", 1),
    ]


# ---------------------------------------------------------------- queries over buckets


def build_tables(cdrs: list[Cdr], closed_hours: int = 0) -> MemState:
    """A partition's state as the fold writes it, one batch per 25 CDRs, with message times
    that close ``closed_hours`` of the span by the last batch, hour by hour as they come: some
    calls go to their day and month at once, some when their hour closes, the rest stay in
    open hours (tables/rollup.py)."""
    state = MemState()
    first_ms = (SPAN_START_H + OPEN_HOURS - 1) * 3_600_000
    records = [
        Record(i, first_ms + closed_hours * 3_600_000 * (i + 1) // len(cdrs), cdr)
        for i, cdr in enumerate(cdrs)
    ]
    for first in range(0, len(records), 25):
        outcome = fold_records(state, records[first : first + 25], REPORTS, 48 * 3600)
        assert outcome.duplicates == 0
    return state


def brute_force(
    report: Report, cdrs: list[Cdr], customer: str, start: int, end: int, **periods: str
) -> dict[str, list[int]]:
    """The groups of the customer's calls that started in the epoch quarters [start, end)."""
    chosen = [c for c in cdrs if c.customer_id == customer and start <= c.start // 900 < end]
    return fold(report, chosen, **periods)


SPAN_START_H = at(2026, 11, 20) // 3600  # 20 Nov 2026 … 15 Feb 2027: two month ends, new year
SPAN_HOURS = 24 * 87
# Zones with whole-hour, :30 and :45 offsets and DST; Lord Howe moves its clocks by 30 minutes.
ZONES = [
    "UTC",
    "America/New_York",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Australia/Adelaide",
    "Australia/Lord_Howe",
    "America/St_Johns",
]


@st.composite
def random_cdrs(draw: st.DrawFn, start_h: int = SPAN_START_H, hours: int = SPAN_HOURS) -> list[Cdr]:
    count = draw(st.integers(min_value=0, max_value=60))
    cdrs = []
    for _ in range(count):
        nanp = draw(st.sampled_from(["", "2125551000", "2125559000", "2015550100", "4165550100"]))
        is_answered = draw(st.booleans())
        cdrs.append(
            call(
                customer_id=draw(st.sampled_from(["42", "43"])),
                start=start_h * 3600 + draw(st.integers(0, hours * 3600 - 1)),
                provider_id=draw(st.sampled_from(["", "7", "10"])),
                customer_charge=draw(st.integers(0, 10**15)),
                provider_charge=draw(st.integers(0, 10**9)),
                tech_prefix=draw(st.sampled_from(["", "123#", "77*"])),
                answered=is_answered,
                duration=draw(st.integers(0, 86_400_000_000)) if is_answered else 0,
                has_dtmf=draw(st.booleans()),
                nanp_number=nanp,
                cli=draw(st.sampled_from(["2125550100", "6465550100"])),
                did_owner=draw(st.sampled_from(["", "42", "7"])),
            )
        )
    return cdrs


@st.composite
def local_ranges(
    draw: st.DrawFn, zone: str, whole_days: bool, start_h: int = SPAN_START_H
) -> tuple[int, int]:
    """A range of whole local hours (days) of the zone around the span, in epoch quarters."""
    unit = "day" if whole_days else "hour"
    low, high = (start_h - 30) * 3600, (start_h + SPAN_HOURS + 30) * 3600
    a = local_period(draw(st.integers(low, high)), zone, unit) // 900
    b = local_period(draw(st.integers(low, high)), zone, unit) // 900
    return min(a, b), max(a, b)


@settings(max_examples=100, deadline=None)
@given(random_cdrs(), st.data())
def test_query_over_buckets_equals_the_fold_of_the_range(cdrs: list[Cdr], data: Any) -> None:
    stores = build_tables(cdrs, data.draw(st.integers(0, SPAN_HOURS + 1), label="closed hours"))
    for name, report in REPORTS.items():
        zone = data.draw(st.sampled_from(ZONES), label=f"{name} zone")
        start, end = data.draw(local_ranges(zone, report.whole_days), label=name)
        customer = data.draw(st.sampled_from(["42", "43", "44"]), label=f"{name} customer")
        # (0: every bucket intact, so edges may read a bucket less its part outside the range)
        intact_from = data.draw(st.sampled_from([None, 0]), label=f"{name} intact from")
        context = QueryContext(
            customer,
            resolve_rate_center=fake_resolve,
            zone=find_zone(zone),
            intact_from=intact_from,
        )
        expected = brute_force(report, cdrs, customer, start, end, zone=zone)
        assert merged_groups(report, start, end, stores.scan, context) == expected, name
        expected_rows = report.rows(expected, context)
        assert run_query(report, start, end, stores.scan, context) == expected_rows


# Around New York's two DST changes of 2026 (8 March, 1 November) and Lord Howe's (5 April).
DST_SPANS = [at(2026, 3, 6) // 3600, at(2026, 10, 30) // 3600, at(2026, 4, 3) // 3600]


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(DST_SPANS), st.data())
def test_dtmf_periods_across_clock_changes_equal_the_wall_clock_of_each_call(
    span_start_h: int, data: Any
) -> None:
    """Around DST changes: every call in the period of its own wall-clock hour (two rows for a
    repeated hour, told apart by offset), day (23 or 25 hours) and month."""
    cdrs = data.draw(random_cdrs(span_start_h, 96))
    stores = build_tables(cdrs)
    dtmf = REPORTS["dtmf"]
    for granularity in ("hour", "day", "month"):
        zone = data.draw(st.sampled_from(ZONES), label=granularity)
        start, end = data.draw(local_ranges(zone, False, span_start_h), label=f"{zone} range")
        context = QueryContext("42", granularity=granularity, zone=find_zone(zone))
        expected = brute_force(dtmf, cdrs, "42", start, end, zone=zone, granularity=granularity)
        assert run_query(dtmf, start, end, stores.scan, context) == dtmf.rows(expected, context)


def test_dtmf_rows_in_new_york_on_the_fall_back_day() -> None:
    """1 November 2026: 01:00-04:00 and 01:00-05:00 are two rows; the day has 25 hours."""
    first = at(2026, 11, 1, 5)  # 01:00 EDT
    cdrs = [call(start=first + 60), call(start=first + 3600 + 60), call(start=first + 7200 + 60)]
    stores = build_tables(cdrs)
    new_york = find_zone("America/New_York")
    day = at(2026, 11, 1, 4) // 900, at(2026, 11, 2, 5) // 900
    hourly = run_query(DtmfReport(), *day, stores.scan, QueryContext("42", zone=new_york))
    assert [r["dt"] for r in hourly] == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:00:00-05:00",
        "2026-11-01T02:00:00-05:00",
    ]
    daily = run_query(
        DtmfReport(), *day, stores.scan, QueryContext("42", granularity="day", zone=new_york)
    )
    assert [(r["dt"], r["calls"]) for r in daily] == [("2026-11-01T00:00:00-04:00", 3)]


def test_dtmf_rows_in_kathmandu_hours_cut_utc_hours_at_a_quarter() -> None:
    """Asia/Kathmandu is UTC+05:45: its 06:00 hour is 00:15 to 01:15 UTC."""
    cdrs = [call(start=at(2026, 11, 25, 0, 14)), call(start=at(2026, 11, 25, 0, 15))]
    cdrs += [call(start=at(2026, 11, 25, 1, 14)), call(start=at(2026, 11, 25, 1, 15))]
    stores = build_tables(cdrs)
    kathmandu = find_zone("Asia/Kathmandu")
    day = at(2026, 11, 24, 18, 15) // 900, at(2026, 11, 25, 18, 15) // 900
    rows = run_query(DtmfReport(), *day, stores.scan, QueryContext("42", zone=kathmandu))
    assert [(r["dt"], r["calls"]) for r in rows] == [
        ("2026-11-25T05:00:00+05:45", 1),
        ("2026-11-25T06:00:00+05:45", 2),
        ("2026-11-25T07:00:00+05:45", 1),
    ]


def test_dtmf_query_filters_the_hours_of_its_edge_days() -> None:
    day_start = at(2026, 11, 25)
    cdrs = [call(start=day_start + h * 3600, customer_charge=1) for h in range(48)]
    stores = build_tables(cdrs)
    first = day_start // 900
    rows = run_query(DtmfReport(), first + 20, first + 116, stores.scan, QueryContext("42"))
    assert [r["dt"] for r in rows] == [
        f"2026-11-{25 + (5 + i) // 24}T{(5 + i) % 24:02d}:00:00Z" for i in range(24)
    ]


def test_query_of_a_customer_without_data_is_empty() -> None:
    stores = build_tables([call()])
    for report in REPORTS.values():
        assert run_query(report, 0, 4 * 10**6, stores.scan, QueryContext("43")) == []


@settings(max_examples=60, deadline=None)
@given(random_cdrs(), st.data())
async def test_streamed_rows_are_the_rows_of_the_whole_answer_in_order(
    cdrs: list[Cdr], data: Any
) -> None:
    """stream_rows gives back the event loop between buckets and keeps dtmf's answer out of
    memory, but its rows are exactly run_query's, in the same order."""
    from streamagg.reports.query import stream_rows

    state = build_tables(cdrs)
    for name, report in REPORTS.items():
        zone = data.draw(st.sampled_from(ZONES), label=f"{name} zone")
        start, end = data.draw(local_ranges(zone, report.whole_days), label=name)
        context = QueryContext("42", resolve_rate_center=fake_resolve, zone=find_zone(zone))
        streamed = [row async for row in stream_rows(report, start, end, state.scan, context)]
        assert streamed == run_query(report, start, end, state.scan, context), name
    for granularity in ("day", "month"):  # dtmf's periods, joined across its day buckets
        zone = data.draw(st.sampled_from(ZONES), label=f"{granularity} zone")
        start, end = data.draw(local_ranges(zone, False), label=granularity)
        context = QueryContext("42", granularity=granularity, zone=find_zone(zone))
        dtmf = REPORTS["dtmf"]
        streamed = [row async for row in stream_rows(dtmf, start, end, state.scan, context)]
        assert streamed == run_query(dtmf, start, end, state.scan, context), granularity


@settings(max_examples=60, deadline=None)
@given(random_cdrs(), st.data())
def test_dtmf_by_day_and_month_sums_its_hourly_rows(cdrs: list[Cdr], data: Any) -> None:
    """A dtmf row per day (month) is the sum of the hourly rows of that UTC day (month), with
    the period's start as dt: checked against the hourly answer, rolled up here by date text."""
    state = build_tables(cdrs)
    dtmf = REPORTS["dtmf"]
    start, end = data.draw(local_ranges("UTC", False))
    hourly = run_query(dtmf, start, end, state.scan, QueryContext("42"))
    for granularity, cut in (("day", 10), ("month", 7)):
        expected: dict[tuple[str, str], list[int]] = {}
        for row in hourly:
            first = row["dt"][:cut] + ("T00:00:00Z" if cut == 10 else "-01T00:00:00Z")
            sums = expected.setdefault((first, row["provider_id"]), [0, 0, 0, 0])
            sums[0] += round(Decimal(row["customer_charge"]) * 10**6)
            sums[1] += round(Decimal(row["provider_charge"]) * 10**6)
            sums[2] += row["dtmf_count"]
            sums[3] += row["calls"]
        got = run_query(dtmf, start, end, state.scan, QueryContext("42", granularity=granularity))
        assert [(r["dt"], r["provider_id"]) for r in got] == sorted(expected)
        for row in got:
            cc, pc, dtmf_calls, calls = expected[(row["dt"], row["provider_id"])]
            assert Decimal(row["customer_charge"]) * 10**6 == cc
            assert Decimal(row["provider_charge"]) * 10**6 == pc
            assert (row["dtmf_count"], row["calls"]) == (dtmf_calls, calls)


# ---------------------------------------------------------------- margin (SPEC §6)


def test_margin_is_exact_and_may_be_negative_with_its_share_of_the_charge() -> None:
    cdrs = [
        call(provider_id="P1", customer_charge=1_000_000, provider_charge=400_000),
        call(provider_id="P1", customer_charge=500_000, provider_charge=1_200_000),
        call(provider_id="P2", customer_charge=3_000_000, provider_charge=1_000_000),
        call(provider_id="P3", customer_charge=0, provider_charge=10),  # a free call, a cost
    ]
    rows = {r["provider_id"]: r for r in rows_of(DtmfReport(), cdrs)}
    # P1: 1.5 charged, 1.6 paid: -0.1, -0.1 / 1.5 = -6.666…% → -6.67 (half away from zero)
    assert (rows["P1"]["margin"], rows["P1"]["margin_pct"]) == ("-0.100000", -6.67)
    assert (rows["P2"]["margin"], rows["P2"]["margin_pct"]) == ("2.000000", 66.67)
    # Nothing charged: the share means nothing (null), the loss is still there.
    assert (rows["P3"]["margin"], rows["P3"]["margin_pct"]) == ("-0.000010", None)


def test_margin_share_rounds_half_away_from_zero_both_ways() -> None:
    # 0.01 of 8.00 is 0.125 % exactly: a half at 2 decimals, in both directions.
    number = "2125551234"
    (up,) = rows_of(
        RateCenterReport(),
        [call(customer_charge=8_000_000, provider_charge=7_990_000, nanp_number=number)],
    )
    (down,) = rows_of(
        RateCenterReport(),
        [call(customer_charge=8_000_000, provider_charge=8_010_000, nanp_number=number)],
    )
    assert (up["margin"], up["margin_pct"]) == ("0.010000", 0.13)
    assert (down["margin"], down["margin_pct"]) == ("-0.010000", -0.13)


def test_a_range_at_the_retention_edge_never_counts_calls_outside_it() -> None:
    """Retention deletes each grain's buckets before the one holding its oldest kept hour, so
    the day and month holding that hour keep calls of hours that are gone on their own. A range
    in that month must not be read as the month less those hours (the month would bring their
    calls back): intact_from_quarter keeps such buckets out of any subtraction."""
    retention_days = 30
    now = at(2026, 10, 31, 12)
    assert oldest_kept_hour(now, retention_days) == at(2026, 10, 1, 12) // 3600
    early, late = at(2026, 10, 1, 5), at(2026, 10, 20, 9)  # its hour deleted / in range
    state = build_tables([call(start=early), call(start=late)])
    RetentionSweeper(REPORTS, retention_days, 48 * 3600).sweep(state, now)
    report = REPORTS["tech-prefix"]
    start, end = at(2026, 10, 1, 13) // 900, at(2026, 10, 31, 18) // 900
    newest_ms = decode_int(state.get(NEWEST_MS), 0)
    safe = QueryContext("42", intact_from=intact_from_quarter(now, newest_ms, retention_days))
    assert merged_groups(report, start, end, state.scan, safe) == fold(report, [call(start=late)])
    # (October less its first 13 hours, read with every bucket deemed intact, brings back the
    # call of the deleted 05:00 hour: the guard is what keeps the answer exact)
    unsafe = QueryContext("42", intact_from=0)
    assert merged_groups(report, start, end, state.scan, unsafe)[""][0] == 2


def test_the_retention_edge_stays_where_sweeps_left_it_after_retention_grows() -> None:
    """Swept with 30 days kept, then STREAMAGG_RETENTION_DAYS raised to 400: the hours before
    the 30-day edge are gone for good, and the guard stays at that edge (recorded by the
    sweep), not at the new setting's."""
    now = at(2026, 10, 31, 12)
    early, late = at(2026, 10, 1, 5), at(2026, 10, 20, 9)
    state = build_tables([call(start=early), call(start=late)])
    state.set(NEWEST_MS, encode_int(now * 1000))
    RetentionSweeper(REPORTS, 30, 48 * 3600).sweep(state, now)
    RetentionSweeper(REPORTS, 400, 48 * 3600).sweep(state, now + 60)
    report = REPORTS["tech-prefix"]
    start, end = at(2026, 10, 1, 13) // 900, at(2026, 10, 31, 18) // 900
    # (as a query reads it: the partition's newest message time and swept hour, from its state)
    guard = partition_intact_from(state.get, now, 400)
    assert guard == intact_from_quarter(
        now, now * 1000, 400, decode_int(state.get(SWEPT_BEFORE_HOUR), 0)
    )
    exact = QueryContext("42", intact_from=guard)
    assert merged_groups(report, start, end, state.scan, exact) == fold(report, [call(start=late)])
    # (by the new setting alone, October less its first 13 hours brings the 05:00 call back)
    by_setting = QueryContext("42", intact_from=intact_from_quarter(now, now * 1000, 400))
    assert merged_groups(report, start, end, state.scan, by_setting)[""][0] == 2


def test_a_worker_whose_clock_is_days_behind_answers_the_retention_edge_exactly() -> None:
    """The partition was swept by a worker whose clock ran days ahead (held to its newest
    message time and a day), then moved to one whose clock is days behind: the guard follows
    the newest message time, not only the answering worker's clock."""
    retention_days = 30
    newest = at(2026, 10, 31, 12)
    early, late = at(2026, 10, 2, 5), at(2026, 10, 20, 9)  # its hour deleted / in range
    state = build_tables([call(start=early), call(start=late)])
    state.set(NEWEST_MS, encode_int(newest * 1000))
    RetentionSweeper(REPORTS, retention_days, 48 * 3600).sweep(state, newest + 3 * 86400)
    report = REPORTS["tech-prefix"]
    hour = at(2026, 10, 2, 5) // 900
    assert merged_groups(report, hour, hour + 4, state.scan, QueryContext("42")) == {}  # swept
    start, end = at(2026, 10, 2, 13) // 900, at(2026, 10, 31, 18) // 900
    behind = newest - 3 * 86400
    intact_from = intact_from_quarter(behind, newest * 1000, retention_days)
    safe = QueryContext("42", intact_from=intact_from)
    assert merged_groups(report, start, end, state.scan, safe) == fold(report, [call(start=late)])
    # (by the answering clock alone the guard would sit 3 days early, and October less its
    # first 37 hours would bring back the call of the deleted 2 October 05:00 hour)
    by_clock = QueryContext("42", intact_from=intact_from_quarter(behind, 0, retention_days))
    assert merged_groups(report, start, end, state.scan, by_clock)[""][0] == 2
