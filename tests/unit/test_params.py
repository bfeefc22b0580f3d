"""Report query parameters (web/params.py, SPEC §3) and rendering the answer (web/render.py)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from streamagg.errors import BadQuery
from streamagg.reports import REPORTS
from streamagg.reports.base import money
from streamagg.reports.periods import UTC_ZONE, label
from streamagg.reports.view import csv_cell
from streamagg.web.params import (
    MAX_QUERY_STRING,
    ReportQuery,
    UnknownReport,
    parse_customer_partitions,
    parse_report_query,
    single_valued,
)
from streamagg.web.render import (
    CSV_CHUNK_ROWS,
    _cell,
    csv_cells,
    error_response,
    json_page,
    report_response,
    rows_to_csv,
)

NOW = datetime(2026, 11, 25, 13, 30, tzinfo=UTC)
NOV = {"from": "2026-11-01T00:00:00Z", "to": "2026-12-01T00:00:00Z"}


def utc(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def parse(
    report: str = "tech-prefix", query: dict[str, str] | None = None, **kw: Any
) -> ReportQuery:
    kw.setdefault("retention_days", 400)
    kw.setdefault("now", NOW)
    customer = kw.pop("customer_id", "42")
    return parse_report_query(report, customer, NOV if query is None else query, **kw)


def bad(
    parameter: str, report: str = "tech-prefix", query: dict[str, str] | None = None, **kw: Any
) -> str:
    with pytest.raises(BadQuery) as caught:
        parse(report, query, **kw)
    assert not isinstance(caught.value, UnknownReport)
    assert caught.value.parameter == parameter, str(caught.value)
    assert str(caught.value).startswith(f"{parameter}:")
    return caught.value.message


# ---------------------------------------------------------------- the range


def test_from_to_in_utc() -> None:
    q = parse()
    assert (q.start, q.end) == (utc(2026, 11, 1), utc(2026, 12, 1))
    assert q.report is REPORTS["tech-prefix"] and q.customer_id == "42" and q.format == "json"
    assert q.start_quarter == int(utc(2026, 11, 1).timestamp()) // 900
    assert q.end_quarter - q.start_quarter == 30 * 96
    assert q.zone.name == "UTC"


@pytest.mark.parametrize(
    ("month", "start", "end"),
    [
        ("2026-11", utc(2026, 11, 1), utc(2026, 12, 1)),
        ("2026-12", utc(2026, 12, 1), utc(2027, 1, 1)),
        ("2026-01", utc(2026, 1, 1), utc(2026, 2, 1)),
        ("2026-02", utc(2026, 2, 1), utc(2026, 3, 1)),
    ],
)
@pytest.mark.parametrize("report", sorted(REPORTS))
def test_month(report: str, month: str, start: datetime, end: datetime) -> None:
    q = parse(report, {"month": month})
    assert (q.start, q.end) == (start, end)


def test_leap_february() -> None:
    q = parse(query={"month": "2028-02"}, now=utc(2028, 3, 15))
    assert q.end - q.start == timedelta(days=29)


@pytest.mark.parametrize(
    "month", ["2026-13", "2026-00", "2026-1", "26-11", "2026-11-01", "", "2026/11", "1969-12"]
)
def test_bad_month(month: str) -> None:
    bad("month", query={"month": month})


def test_month_and_from_to_exclude_each_other() -> None:
    bad("month", query={"month": "2026-11", "from": NOV["from"]})
    bad("month", query={"month": "2026-11", **NOV})


def test_from_and_to_are_required_without_month() -> None:
    bad("from", query={})
    bad("from", query={"to": NOV["to"]})
    bad("to", query={"from": NOV["from"]})
    bad("from", query={"format": "csv"})


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("2026-11-01T00:00:00Z", utc(2026, 11, 1)),
        ("2026-11-01T00:00:00+00:00", utc(2026, 11, 1)),
        ("2026-11-01T02:00:00+02:00", utc(2026, 11, 1)),
        ("2026-11-01T05:30:00+05:30", utc(2026, 11, 1)),
        ("2026-10-31T19:00:00-05:00", utc(2026, 11, 1)),
        ("2026-11-01T02:00:00 02:00", utc(2026, 11, 1)),  # '+' decoded as a space
        ("2026-11-01T05:30:00 0530", utc(2026, 11, 1)),
        ("2026-11-01T00:00:00.000Z", utc(2026, 11, 1)),
        ("2026-11-01T13:00:00Z", utc(2026, 11, 1, 13)),
    ],
)
def test_from_spellings(spelling: str, expected: datetime) -> None:
    q = parse(query={"from": spelling, "to": NOV["to"]})
    assert q.start == expected and q.start.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "spelling",
    [
        "2026-11-01T00:30:00Z",
        "2026-11-01T00:00:01Z",
        "2026-11-01T00:00:00.5Z",
        "2026-11-01T00:00:00+05:30",  # 18:30 UTC
        "2026-11-01T00:00:00",  # no offset
        "2026-11-01",
        "yesterday",
        "",
        "2026-11-01T00:00:00ZZ",
        "1969-12-31T00:00:00Z",
    ],
)
@pytest.mark.parametrize("parameter", ["from", "to"])
def test_bad_instants_name_their_parameter(spelling: str, parameter: str) -> None:
    query = {**NOV, parameter: spelling}
    bad(parameter, query=query)


def test_did_cli_needs_whole_days_other_reports_whole_hours() -> None:
    hourly = {"from": "2026-11-01T05:00:00Z", "to": "2026-11-02T00:00:00Z"}
    bad("from", "did-cli", hourly)
    bad("to", "did-cli", {"from": "2026-11-01T00:00:00Z", "to": "2026-11-02T05:00:00Z"})
    for report in ("dtmf", "rate-center", "tech-prefix"):
        assert parse(report, hourly).start == utc(2026, 11, 1, 5)
    daily = parse("did-cli", {"from": "2026-11-01T01:00:00+01:00", "to": "2026-11-03T00:00:00Z"})
    assert (daily.start, daily.end) == (utc(2026, 11, 1), utc(2026, 11, 3))


def test_inverted_or_empty_range_names_to() -> None:
    bad("to", query={"from": NOV["to"], "to": NOV["from"]})
    bad("to", query={"from": NOV["from"], "to": NOV["from"]})


def test_span_at_most_the_retention() -> None:
    end = utc(2026, 11, 25)
    ok = parse(query={"from": "2025-10-21T00:00:00Z", "to": "2026-11-25T00:00:00Z"})
    assert ok.end - ok.start == timedelta(days=400) and ok.end == end
    message = bad("to", query={"from": "2025-10-20T23:00:00Z", "to": "2026-11-25T00:00:00Z"})
    assert "400" in message
    bad(
        "to", query={"from": "2026-11-01T00:00:00Z", "to": "2026-11-03T01:00:00Z"}, retention_days=2
    )


def test_a_range_that_ended_before_the_retention_is_refused() -> None:
    # retention reaches back to 2025-10-21T13:30Z
    bad("from", query={"from": "2025-09-01T00:00:00Z", "to": "2025-10-01T00:00:00Z"})
    bad("from", query={"from": "2025-10-20T00:00:00Z", "to": "2025-10-21T13:00:00Z"})
    partly = parse(query={"from": "2025-10-20T00:00:00Z", "to": "2025-10-22T00:00:00Z"})
    assert partly.start == utc(2025, 10, 20)


def test_month_past_the_retention_is_refused_naming_month() -> None:
    bad("month", query={"month": "2020-01"})


@pytest.mark.parametrize(
    ("parameter", "query"),
    [
        ("from", {"from": "9999-12-31T22:00:00-05:00", "to": "9999-12-31T23:00:00Z"}),
        ("from", {"from": "0001-01-01T00:00:00+01:00", "to": "2026-11-01T00:00:00Z"}),
        ("month", {"month": "9999-12"}),
    ],
)
def test_extreme_years_are_a_bad_parameter(parameter: str, query: dict[str, str]) -> None:
    bad(parameter, query=query)


# ---------------------------------------------------------------- the rest of the request


def test_granularity_is_dtmf_only_and_names_itself_when_wrong() -> None:
    assert parse("dtmf").granularity == "hour"
    assert parse("dtmf", {**NOV, "granularity": "month"}).granularity == "month"
    assert parse("dtmf", {**NOV, "granularity": "day"}).granularity == "day"
    bad("granularity", "dtmf", {**NOV, "granularity": "week"})
    bad("granularity", "dtmf", {**NOV, "granularity": ""})
    bad("granularity", "tech-prefix", {**NOV, "granularity": "day"})


def test_the_customer_list_takes_partitions_only_from_another_worker() -> None:
    assert parse_customer_partitions({}, 8, forwarded=False) == (list(range(8)), False)
    assert parse_customer_partitions({"partitions": "5,1,5"}, 8, forwarded=True) == ([1, 5], False)
    assert parse_customer_partitions({"partial": "true"}, 8, forwarded=False) == (
        list(range(8)),
        True,
    )
    with pytest.raises(BadQuery, match=r"^partial: true or false"):
        parse_customer_partitions({"partial": "yes"}, 8, forwarded=False)
    for query in (
        {"partitions": "8"},
        {"partitions": "-1"},
        {"partitions": "a"},
        {"partitions": ""},
    ):
        with pytest.raises(BadQuery, match=r"^partitions:"):
            parse_customer_partitions(query, 8, forwarded=True)
    with pytest.raises(BadQuery, match=r"^partitions:"):
        parse_customer_partitions({"partitions": "1"}, 8, forwarded=False)
    with pytest.raises(BadQuery, match=r"^limit:"):
        parse_customer_partitions({"limit": "1"}, 8, forwarded=False)


def test_unknown_parameter_is_named() -> None:
    message = bad("foo", query={**NOV, "foo": "1"})
    assert "month" in message and "format" in message
    bad("From", query={**NOV, "From": "x"})
    bad("x" * 64, query={**NOV, "x" * 500: "1"})


def test_query_string_length_limit() -> None:
    parse(query_string="a" * MAX_QUERY_STRING)
    bad("query", query_string="a" * (MAX_QUERY_STRING + 1))


def test_unknown_report_is_its_own_error() -> None:
    with pytest.raises(UnknownReport) as caught:
        parse("tech_prefix")
    assert caught.value.parameter == "report"
    assert isinstance(caught.value, BadQuery)
    with pytest.raises(UnknownReport):
        parse("nope", {"foo": "bar"})


@pytest.mark.parametrize("customer", ["", "x" * 129, "4\x002", "a\nb", "a\x7f"])
def test_bad_customer_id(customer: str) -> None:
    bad("customer_id", customer_id=customer)


def test_customer_id_kept_as_given() -> None:
    assert parse(customer_id="x" * 128).customer_id == "x" * 128
    assert parse(customer_id="acme corp").customer_id == "acme corp"


@pytest.mark.parametrize(
    ("fmt", "accept", "chosen"),
    [
        (None, "", "json"),
        (None, "application/json", "json"),
        (None, "text/csv", "csv"),
        (None, "text/csv; charset=utf-8", "csv"),
        ("csv", "", "csv"),
        ("json", "text/csv", "json"),
        ("csv", "application/json", "csv"),
    ],
)
def test_format_and_accept(fmt: str | None, accept: str, chosen: str) -> None:
    query = dict(NOV) if fmt is None else {**NOV, "format": fmt}
    assert parse(query=query, accept=accept).format == chosen


@pytest.mark.parametrize("fmt", ["xml", "CSV", "", "text/csv"])
def test_bad_format(fmt: str) -> None:
    bad("format", query={**NOV, "format": fmt})


# ---------------------------------------------------------------- render


def body_of(response: web.Response) -> bytes:
    assert isinstance(response.body, bytes)
    return response.body


def test_csv_has_a_header_line_and_quotes_what_needs_it() -> None:
    rows = [
        {"account": "7", "dest_cli": "2125550100", "count": 3, "foreign": True},
        {"account": 'a,"b"', "dest_cli": "line\nbreak", "count": 0, "foreign": False},
    ]
    text = rows_to_csv(REPORTS["did-cli"].columns, rows)
    assert text == (
        "account,dest_cli,count,foreign\r\n"
        "7,2125550100,3,true\r\n"
        '"a,""b""","line\nbreak",0,false\r\n'
    )
    assert list(csv.reader(io.StringIO(text, newline=""))) == [
        ["account", "dest_cli", "count", "foreign"],
        ["7", "2125550100", "3", "true"],
        ['a,"b"', "line\nbreak", "0", "false"],
    ]


def test_csv_of_no_rows_is_the_header_alone() -> None:
    assert rows_to_csv(REPORTS["tech-prefix"].columns, []) == (
        "tech_prefix,total,answered_calls,asr,acd\r\n"
    )


def test_csv_keeps_money_strings_and_ratios() -> None:
    row = {"tech_prefix": "", "total": 4, "answered_calls": 1, "asr": 25.0, "acd": 184.3}
    text = rows_to_csv(REPORTS["tech-prefix"].columns, [row])
    assert text.splitlines()[1] == ",4,1,25.0,184.3"


@pytest.mark.parametrize(
    "text",
    ['=HYPERLINK("http://x","y")', "@SUM(1+1)", "+1-2", "-2+3+cmd|' /C calc'!A0", "\tx", "\rx"],
)
def test_csv_text_cells_that_start_like_a_formula_open_as_text(text: str) -> None:
    """OWASP CSV injection: provider ids, tech prefixes, accounts and rate centers come from
    CDRs and reference data; a spreadsheet must show them, not run them."""
    columns = REPORTS["dtmf"].columns
    row = {
        "dt": "2026-11-25T13:00:00Z",
        "provider_id": text,
        "customer_charge": "-1.500000",  # a number (a negative margin, one day): left alone
        "provider_charge": "0.000000",
        "dtmf_count": 0,
        "calls": 1,
        "margin": "-1.500000",  # a negative margin: a number, left alone
        "margin_pct": None,
    }
    (cells,) = list(csv.reader(io.StringIO(rows_to_csv(columns, [row]), newline="")))[1:]
    assert cells[1] == "'" + text
    assert cells[2] == "-1.500000"
    assert cells[6] == "-1.500000"
    for cell in cells:
        assert cell[:1] not in "=+@\t\r" or cell == "", cell


async def rows_of(rows: list[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    for row in rows:
        yield row


async def test_json_page_shape() -> None:
    q = parse()
    rows = [{"tech_prefix": "123#", "total": 2, "answered_calls": 1, "asr": 50.0, "acd": 3.0}]
    assert await json_page(q, rows_of(rows), "/x?month=2026-11") == {
        "report": "tech-prefix",
        "customer_id": "42",
        "from": "2026-11-01T00:00:00Z",
        "to": "2026-12-01T00:00:00Z",
        "tz": "UTC",
        "rows": rows,
    }


async def test_json_pages_link_the_next_until_the_last() -> None:
    rows = [{"n": n} for n in range(25)]
    url = "/api/v1/customers/42/reports/tech-prefix?month=2026-11&limit=10"
    seen, pages = [], 0
    query: dict[str, str] = {**NOV, "limit": "10"}
    while True:
        body = await json_page(parse(query=query), rows_of(rows), url)
        seen += body["rows"]  # type: ignore[operator]
        pages += 1
        if "next" not in body:
            break
        url = str(body["next"])
        query = dict(URL(url).query)
    assert seen == rows and pages == 3
    assert url.endswith("offset=20&limit=10") or "offset=20" in url


def test_limit_and_offset_are_checked_by_name() -> None:
    for name, value in (("limit", "0"), ("limit", "10001"), ("limit", "x"), ("offset", "-1")):
        with pytest.raises(BadQuery) as caught:
            parse(query={**NOV, name: value})
        assert caught.value.parameter == name
    assert parse(query={**NOV, "limit": "5", "offset": "7"}).limit == 5


async def test_json_response_from_an_offset_query_is_in_utc() -> None:
    q = parse(query={"from": "2026-11-01T02:00:00+02:00", "to": "2026-11-01T05:00:00+02:00"})
    body = await json_page(q, rows_of([]), "/x")
    assert (body["from"], body["to"]) == ("2026-11-01T00:00:00Z", "2026-11-01T03:00:00Z")


async def test_csv_streams_every_row_with_a_safe_file_name() -> None:
    from aiohttp.test_utils import TestClient, TestServer

    q = parse("tech-prefix", {**NOV, "format": "csv"}, customer_id="acme/../x")
    rows = [
        {"tech_prefix": f"{n}#", "total": n, "answered_calls": 0, "asr": 0.0, "acd": 0.0}
        for n in range(CSV_CHUNK_ROWS * 2 + 5)
    ]

    async def handler(request: web.Request) -> web.StreamResponse:
        return await report_response(request, q, rows_of(rows))

    app = web.Application()
    app.router.add_get("/csv", handler)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/csv")
        text = await response.text()
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert text == rows_to_csv(REPORTS["tech-prefix"].columns, rows)
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "/" not in disposition and ".." not in disposition.removesuffix('.csv"')


async def test_a_json_answer_has_an_etag_and_an_unchanged_one_is_a_304_without_body() -> None:
    from aiohttp.test_utils import TestClient, TestServer

    q = parse("tech-prefix")
    answer = [{"tech_prefix": "1#", "total": 2, "answered_calls": 1, "asr": 50.0, "acd": 3.0}]

    async def handler(request: web.Request) -> web.StreamResponse:
        return await report_response(request, q, rows_of(answer))

    app = web.Application()
    app.router.add_get("/r", handler)
    async with TestClient(TestServer(app)) as client:
        first = await client.get("/r")
        etag = first.headers["ETag"]
        assert first.status == 200 and (await first.json())["rows"] == answer
        same = await client.get("/r", headers={"If-None-Match": etag})
        assert (same.status, await same.read(), same.headers["ETag"]) == (304, b"", etag)
        weak = await client.get("/r", headers={"If-None-Match": f'"other", W/{etag}'})
        assert weak.status == 304
        answer[0]["total"] = 3  # the data changed: a new tag, the whole answer
        changed = await client.get("/r", headers={"If-None-Match": etag})
        assert changed.status == 200 and changed.headers["ETag"] != etag


def test_error_response_shape() -> None:
    response = error_response(400, "bad_request", "from: must fall on a whole UTC hour")
    assert response.status == 400
    assert orjson.loads(body_of(response)) == {
        "error": {"code": "bad_request", "message": "from: must fall on a whole UTC hour"}
    }


# ---------------------------------------------------------------- local time (SPEC §6)


def test_tz_takes_ranges_on_whole_hours_of_that_zone() -> None:
    q = parse(
        query={
            "from": "2026-11-25T00:00:00+05:30",
            "to": "2026-11-26T00:00:00+05:30",
            "tz": "Asia/Kolkata",
        }
    )
    assert (q.start, q.end) == (
        datetime(2026, 11, 24, 18, 30, tzinfo=UTC),
        datetime(2026, 11, 25, 18, 30, tzinfo=UTC),
    )
    assert q.zone.name == "Asia/Kolkata"
    assert q.end_quarter - q.start_quarter == 96
    message = bad("from", query={**NOV, "tz": "Asia/Kolkata"})
    assert message == "must fall on a whole Asia/Kolkata hour"


def test_tz_reads_times_without_offset_as_its_wall_time() -> None:
    q = parse(
        query={"from": "2026-11-01T00:00:00", "to": "2026-11-02T00:00:00", "tz": "America/New_York"}
    )
    # 1 November 2026 in New York: 00:00 EDT to 00:00 EST, 25 hours.
    assert (q.start, q.end) == (utc(2026, 11, 1, 4), utc(2026, 11, 2, 5))
    assert "give tz" in bad("from", query={"from": "2026-11-01T00:00:00", "to": "2026-11-02"})


def test_tz_month_is_the_local_month() -> None:
    q = parse(query={"month": "2026-11", "tz": "America/New_York"})
    assert (q.start, q.end) == (utc(2026, 11, 1, 4), utc(2026, 12, 1, 5))
    q = parse(query={"month": "2026-11", "tz": "Asia/Kathmandu"})
    assert q.start == datetime(2026, 10, 31, 18, 15, tzinfo=UTC)


def test_tz_whole_days_for_did_cli_are_local_days() -> None:
    kolkata = {"from": "2026-11-25T00:00:00", "to": "2026-11-27T00:00:00", "tz": "Asia/Kolkata"}
    q = parse("did-cli", query=kolkata)
    assert q.start == datetime(2026, 11, 24, 18, 30, tzinfo=UTC)
    message = bad("to", "did-cli", query={**kolkata, "to": "2026-11-27T05:00:00"})
    assert message == "must fall on a whole Asia/Kolkata day for did-cli"


@pytest.mark.parametrize("name", ["Mars/Olympus", "../etc/passwd", "", "x" * 70, "/usr/share"])
def test_unknown_tz_is_refused_by_name(name: str) -> None:
    assert bad("tz", query={**NOV, "tz": name}).startswith("unknown time zone")


async def test_json_page_writes_the_range_in_the_zone() -> None:
    q = parse(query={"month": "2026-11", "tz": "America/New_York"})
    body = await json_page(q, rows_of([]), "/x")
    assert (body["from"], body["to"], body["tz"]) == (
        "2026-11-01T00:00:00-04:00",
        "2026-12-01T00:00:00-05:00",
        "America/New_York",
    )


def _cell_value(kind: str) -> st.SearchStrategy[object]:
    """Values of a column kind as the reports make them; text kinds come from CDRs: any."""
    own: dict[str, st.SearchStrategy[object]] = {
        "count": st.integers(min_value=0, max_value=10**12),
        "ratio": st.none() | st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
        "money": st.integers(min_value=-(10**15), max_value=10**15).map(money),
        "hour": st.integers(min_value=0, max_value=4 * 10**9).map(lambda s: label(s, UTC_ZONE)),
        "flag": st.booleans(),
        "codes": st.lists(
            st.fixed_dictionaries({"code": st.integers(100, 699), "count": st.integers(1, 99)}),
            max_size=5,
        ),
    }
    return own.get(kind, st.text(alphabet="=+-@\t\r0123456789.,\"' abcxyz", max_size=8))


@given(st.data())
def test_csv_cells_convert_each_row_as_cell_by_cell(data: st.DataObject) -> None:
    """csv_cells (built once per answer, converting only text, flags and codes) gives every
    report's rows the cells that converting each cell on its own gives: the kinds it takes
    as they are are the ones streamagg writes itself (numbers, money, period labels)."""
    for report in REPORTS.values():
        columns = report.columns
        row = {
            c.key: data.draw(_cell_value(c.kind), label=f"{report.name}.{c.key}") for c in columns
        }
        expected = [_cell(csv_cell(column, row[column.key])) for column in columns]
        assert csv_cells(columns)(row) == expected


@pytest.mark.parametrize(
    ("pairs", "parameter"),
    [
        ([("from", "2026-11-01T00:00:00Z"), ("from", "garbage"), ("to", "x")], "from"),
        ([("month", "2026-11"), ("tz", "UTC"), ("tz", "Mars/Base")], "tz"),
        ([("limit", "10"), ("limit", "10")], "limit"),  # (even the same value: a client's bug)
    ],
)
def test_a_parameter_given_twice_is_named(pairs: list[tuple[str, str]], parameter: str) -> None:
    with pytest.raises(BadQuery) as caught:
        single_valued(pairs)
    assert caught.value.parameter == parameter
    assert str(caught.value) == f"{parameter}: given more than once; give it once"


def test_parameters_given_once_pass_as_they_are() -> None:
    pairs = [("month", "2026-11"), ("tz", "America/New_York"), ("format", "csv")]
    assert single_valued(pairs) == dict(pairs)
