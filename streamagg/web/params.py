"""Parse and check the parameters of a report request; every problem names its parameter."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from streamagg.errors import BadQuery
from streamagg.reports import REPORTS, Report
from streamagg.reports.periods import (
    UTC_ZONE,
    Zone,
    find_zone,
    local_wall_time,
    month_range,
    period_start,
)
from streamagg.tables.buckets import QUARTER_SECONDS

MAX_QUERY_STRING = 2048
MAX_PAGE_ROWS = 10_000  # SPEC §3: the default and the most rows of a JSON page
_LAST_YEAR = 9000  # keeps every bucket computation far from datetime's year 9999
QUERY_PARAMETERS = {"from", "to", "month", "format", "limit", "offset", "granularity", "tz"}
_MONTH_RE = re.compile(r"([0-9]{4})-([0-9]{2})")
_SPACE_OFFSET = re.compile(r" ([0-9]{2}:?[0-9]{2})$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class UnknownReport(BadQuery):
    """The report id in the path is not one of SPEC §2's (HTTP 404)."""


@dataclass(frozen=True)
class ReportQuery:
    report: Report
    customer_id: str
    start: datetime
    end: datetime
    format: str  # "json" or "csv"
    limit: int = MAX_PAGE_ROWS  # rows of a JSON page
    offset: int = 0  # rows of the answer before this page
    granularity: str = "hour"  # the period of a row (reports with granularities)
    zone: Zone = UTC_ZONE  # `tz`: the zone of the range and of the periods of rows

    @property
    def start_quarter(self) -> int:
        """The range's first epoch quarter-hour (the state's finest time)."""
        return int(self.start.timestamp()) // QUARTER_SECONDS

    @property
    def end_quarter(self) -> int:
        return int(self.end.timestamp()) // QUARTER_SECONDS


def parse_report_query(
    report_id: str,
    customer_id: str,
    query: Mapping[str, str],
    *,
    query_string: str = "",
    accept: str = "",
    retention_days: int,
    now: datetime | None = None,
) -> ReportQuery:
    if len(query_string) > MAX_QUERY_STRING:
        raise BadQuery("query", f"longer than {MAX_QUERY_STRING} characters")
    report = REPORTS.get(report_id)
    if report is None:
        raise UnknownReport(
            "report", f"unknown report {report_id[:64]!r}; one of {sorted(REPORTS)}"
        )
    if not customer_id or len(customer_id) > 128 or _CONTROL.search(customer_id):
        raise BadQuery("customer_id", "1 to 128 characters, no control characters")
    for name in query:
        if name not in QUERY_PARAMETERS:
            allowed = ", ".join(sorted(QUERY_PARAMETERS))
            raise BadQuery(name[:64], f"unknown parameter; allowed: {allowed}")
    zone = _zone(query)
    start, end = _range(query, report, zone)
    names = ("month", "month") if "month" in query else ("from", "to")
    _check_span(start, end, retention_days, now or datetime.now(UTC), names)
    limit = _count(query, "limit", MAX_PAGE_ROWS, 1, MAX_PAGE_ROWS)
    offset = _count(query, "offset", 0, 0, 10**9)
    return ReportQuery(
        report,
        customer_id,
        start,
        end,
        _format(query, accept),
        limit,
        offset,
        _granularity(query, report),
        zone,
    )


def single_valued(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """A query string's parameters (as name, value pairs) by name; BadQuery naming one given
    more than once (`from=...&from=...`: which one was meant cannot be told)."""
    query: dict[str, str] = {}
    for name, value in pairs:
        if name in query:
            raise BadQuery(name[:64], "given more than once; give it once")
        query[name] = value
    return query


def _zone(query: Mapping[str, str]) -> Zone:
    name = query.get("tz", "UTC")
    zone = find_zone(name)
    if zone is None:
        raise BadQuery(
            "tz", f"unknown time zone {name[:64]!r}: an IANA name such as America/New_York, or UTC"
        )
    return zone


def _granularity(query: Mapping[str, str], report: Report) -> str:
    text = query.get("granularity")
    if text is None:
        return report.granularities[0] if report.granularities else "hour"
    if not report.granularities:
        raise BadQuery("granularity", f"{report.name} has no granularity")
    if text not in report.granularities:
        raise BadQuery(
            "granularity", f"one of {', '.join(report.granularities)}, not {text[:32]!r}"
        )
    return text


def _count(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
        raise BadQuery(name, f"must be a whole number from {low} to {high:,}")
    return int(text)


def _range(query: Mapping[str, str], report: Report, zone: Zone) -> tuple[datetime, datetime]:
    has_month = "month" in query
    if has_month and ("from" in query or "to" in query):
        raise BadQuery("month", "give either month or from and to, not both")
    if has_month:
        return _month(query["month"], zone)
    for name in ("from", "to"):
        if name not in query:
            raise BadQuery(name, "required (or give month=YYYY-MM)")
    wall_times = "tz" in query
    start = _instant("from", query["from"], report, zone, wall_times)
    end = _instant("to", query["to"], report, zone, wall_times)
    if end <= start:
        raise BadQuery("to", "must be after from")
    return start, end


def _month(text: str, zone: Zone) -> tuple[datetime, datetime]:
    match = _MONTH_RE.fullmatch(text)
    if match is None:
        raise BadQuery("month", f"expected YYYY-MM, got {text[:32]!r}")
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12 or not 1970 <= year <= _LAST_YEAR:
        raise BadQuery("month", f"no such month {text!r} (years 1970 to {_LAST_YEAR})")
    start, end = month_range(year, month, zone)
    for moment in (start, end):
        if moment % QUARTER_SECONDS:
            raise BadQuery("month", f"{zone.name} began that month off the quarter-hours of UTC")
    return _utc(start), _utc(end)


def _instant(name: str, text: str, report: Report, zone: Zone, wall_times: bool) -> datetime:
    """A range edge: an ISO-8601 time with an offset, or without one when `tz` is given (a
    wall time there)."""
    # An unencoded "+" of an offset arrives as a space: take it back.
    text = _SPACE_OFFSET.sub(r"+\1", text.strip())
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadQuery(name, f"not an ISO-8601 time: {text[:40]!r}") from None
    if not 1970 <= moment.year <= _LAST_YEAR:
        raise BadQuery(name, f"the year must be between 1970 and {_LAST_YEAR}")
    if moment.tzinfo is not None:
        seconds = moment.timestamp()
    elif wall_times:
        seconds = local_wall_time(moment, zone)
    else:
        raise BadQuery(
            name, "needs a UTC offset or Z, e.g. 2026-11-01T00:00:00Z (or give tz for wall times)"
        )
    if seconds % QUARTER_SECONDS or period_start(int(seconds), zone, "hour") != seconds:
        raise BadQuery(name, f"must fall on a whole {zone.name} hour")
    if report.whole_days and period_start(int(seconds), zone, "day") != seconds:
        raise BadQuery(name, f"must fall on a whole {zone.name} day for {report.name}")
    return _utc(int(seconds))


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _check_span(
    start: datetime, end: datetime, retention_days: int, now: datetime, names: tuple[str, str]
) -> None:
    retention = timedelta(days=retention_days)
    if end - start > retention:
        raise BadQuery(
            names[1], f"the range spans more than the retention of {retention_days} days"
        )
    if end <= now - retention:
        raise BadQuery(names[0], f"the range ends before the retention of {retention_days} days")
    if start >= now + retention:
        raise BadQuery(names[0], f"the range starts more than {retention_days} days from now")


def _format(query: Mapping[str, str], accept: str) -> str:
    chosen = query.get("format")
    if chosen is None:
        return "csv" if "text/csv" in accept else "json"
    if chosen not in ("json", "csv"):
        raise BadQuery("format", "must be json or csv")
    return chosen


def parse_customer_partitions(
    query: Mapping[str, str], partitions: int, forwarded: bool
) -> tuple[list[int], bool]:
    """The partitions a customer list covers (all of them, unless a worker asks another for
    some: ``partitions=1,5``, with the forwarding header), and whether a list without the
    partitions that cannot answer now is wanted (``partial=true``)."""
    allowed = {"partitions", "partial"} if forwarded else {"partial"}
    for name in query:
        if name not in allowed:
            raise BadQuery(name[:64], "unknown parameter; this request takes partial only")
    partial = query.get("partial", "false")
    if partial not in ("true", "false"):
        raise BadQuery("partial", "true or false")
    text = query.get("partitions")
    if text is None:
        return list(range(partitions)), partial == "true"
    try:
        chosen = sorted({int(part) for part in text.split(",")})
    except ValueError:
        raise BadQuery("partitions", "comma-separated partition numbers") from None
    if not chosen or chosen[0] < 0 or chosen[-1] >= partitions:
        raise BadQuery("partitions", f"partition numbers from 0 to {partitions - 1}")
    return chosen, partial == "true"
