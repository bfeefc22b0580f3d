"""Answer a report for any range of whole quarter-hours from its bucketed state.

A range is covered by the fewest buckets (tables/buckets.py). Each bucket is read whole in one
step (a day or month bucket with the hours it spans that are not in it yet: tables/rollup.py;
at an edge of the range, a bucket less its part outside the range); between steps the query
gives the event loop back, so a long answer never holds up the worker. The finest grain keeps
each group per quarter-hour: its quarters outside the range are left out, and for reports
whose rows are periods (dtmf), each quarter goes to the local hour, day or month that holds
it (reports/periods.py). Such rows stream period by period, in
order, without the whole answer in memory. The other reports sum their groups over the
buckets first (their groups are few: prefixes, DIDs), in reports/range_sums.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator

from streamagg.reports.base import Groups, QueryContext, Report, Row
from streamagg.reports.periods import hour_periods, period_start
from streamagg.reports.range_sums import (
    RangeSums,
    Scan,
    after,
    merge_groups,
    quarters_in_range,
    range_steps,
)
from streamagg.tables.buckets import QUARTER_SECONDS, cached_cover, finest
from streamagg.tables.keys import SEP, decode_split_value, report_bucket_prefix
from streamagg.tables.rollup import hour_total
from streamagg.tables.sums import add_vector

ROWS_PER_STEP = 200  # rows yielded between two returns to the event loop


def period_groups(
    report: Report, start: int, end: int, scan: Scan, context: QueryContext
) -> Iterator[tuple[int, Groups]]:
    """For a report whose groups carry their hour (dtmf): the groups of each bucket of its
    finest grain covering the epoch quarters [start, end), per period of the context's zone
    and granularity (``{period start}␟{rest of the group}``), bucket by bucket in time order,
    each with the quarter where its part of the range ends. (Coarser buckets no longer know
    the hours of their calls: periods are read from the finest grain only.)"""
    fine = finest(report.grains)
    for grain, bucket in cached_cover(start, end, (fine,)):
        prefix = report_bucket_prefix(report.name, grain.code, bucket, context.customer_id)
        groups: Groups = {}
        _add_periods(groups, scan(prefix, after(prefix)), len(prefix), report, start, end, context)
        yield min(grain.quarters(bucket)[1], end), groups


def _add_periods(
    groups: Groups,
    rows: Iterable[tuple[bytes, bytes]],
    cut: int,
    report: Report,
    start: int,
    end: int,
    context: QueryContext,
) -> None:
    """Add each key's quarters in the range (``{hour}␟{rest}`` after ``cut`` bytes) to the
    periods (of the context's zone and granularity) that hold them. An hour's keys come
    together (key order): what depends on the hour alone is worked out once per hour."""
    name, fields = report.name, report.fields
    last_hour = -1
    periods: tuple[int, int, int, int] = (0, 0, 0, 0)
    quarters = range(0)
    whole = ""  # the hour's one period, when its quarters all fall in one (always in UTC)
    for key, raw in rows:
        hour_text, rest = key[cut:].decode().split(SEP, 1)
        hour = int(hour_text)
        if hour != last_hour:
            last_hour = hour
            periods = hour_periods(hour, context.zone, context.granularity)
            quarters = quarters_in_range(hour, start, end)
            whole = f"{periods[0]}{SEP}" if periods[0] == periods[-1] else ""
        parts = decode_split_value(raw, name, fields)
        if whole:
            total = hour_total(parts, quarters)
            if total is not None:
                add_vector(groups, whole + rest, total)
            continue
        for quarter in quarters:
            vector = parts[quarter]
            if vector is not None:
                add_vector(groups, f"{periods[quarter]}{SEP}{rest}", vector)


def merged_groups(
    report: Report, start: int, end: int, scan: Scan, context: QueryContext
) -> Groups:
    """Sum of every group over the epoch quarters [start, end), read from the fewest buckets."""
    merged: Groups = {}
    if report.hour_in_group:
        for _, groups in period_groups(report, start, end, scan, context):
            merge_groups(merged, groups)
        return merged
    sums = RangeSums(report, context.customer_id, scan)
    for step in range_steps(report, start, end, context):
        sums.read(step)
    return _with_calls(sums.total())


def _with_calls(groups: Groups) -> Groups:
    """The groups with calls in the range: a bucket less its part outside the range leaves
    a group whose calls were all outside at zero (a group with a call has a count above 0)."""
    return {group: vector for group, vector in groups.items() if any(vector)}


def run_query(report: Report, start: int, end: int, scan: Scan, context: QueryContext) -> list[Row]:
    """The rows of one customer's report for the epoch quarters [start, end)."""
    return report.rows(merged_groups(report, start, end, scan, context), context)


async def stream_rows(
    report: Report, start: int, end: int, scan: Scan, context: QueryContext
) -> AsyncIterator[Row]:
    """The rows of run_query, in the same order, giving the event loop back between buckets."""
    if report.hour_in_group:
        buckets = period_groups(report, start, end, scan, context)
        async for row in _stream_periods(report, end, buckets, context):
            yield row
        return
    sums = RangeSums(report, context.customer_id, scan)
    for step in range_steps(report, start, end, context):
        sums.read(step)
        await asyncio.sleep(0)
    for row in report.rows(_with_calls(sums.total()), context):
        yield row


async def _stream_periods(
    report: Report, end: int, buckets: Iterator[tuple[int, Groups]], context: QueryContext
) -> AsyncIterator[Row]:
    """Rows of the periods that no later bucket can add to, after each bucket: buckets and
    periods both follow time, so a period that starts before the one holding a bucket's end
    is complete."""
    zone, granularity = context.zone, context.granularity
    pending: Groups = {}
    for reached, groups in buckets:
        if pending:
            merge_groups(pending, groups)
        else:  # (the usual case: a bucket's periods were all complete at its end)
            pending = groups
        boundary = period_start(reached * QUARTER_SECONDS, zone, granularity)
        # (every pending period starts at or before the one holding the last quarter read)
        if (
            reached >= end
            or period_start((reached - 1) * QUARTER_SECONDS, zone, granularity) < boundary
        ):
            done, pending = pending, {}
        else:
            done = {}
            later: Groups = {}
            for group, vector in pending.items():
                (done if int(group.split(SEP, 1)[0]) < boundary else later)[group] = vector
            pending = later
        for n, row in enumerate(report.rows(done, context), 1):
            yield row
            if n % ROWS_PER_STEP == 0:
                await asyncio.sleep(0)
        await asyncio.sleep(0)
