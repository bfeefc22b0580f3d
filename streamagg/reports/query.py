"""Answer a report for any range of whole quarter-hours from its bucketed state.

A range is covered by the fewest buckets (tables/buckets.py). Each bucket is read whole in one
step (a day or month bucket with the hours it spans that are not in it yet: tables/rollup.py;
at an edge of the range, a bucket less its part outside the range); between steps the query
gives the event loop back, so a long answer never holds up the worker. The finest grain keeps
each group per quarter-hour: its quarters outside the range are left out, and for reports
whose rows are periods (dtmf), each quarter goes to the local hour, day or month that holds
it (reports/periods.py). Such rows stream period by period, in
order, without the whole answer in memory. The other reports sum their groups over the
buckets first (their groups are few: prefixes, DIDs).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from operator import add, sub

from streamagg.reports.base import Groups, QueryContext, Report, Row
from streamagg.reports.periods import hour_periods, period_start
from streamagg.tables.buckets import (
    HOUR,
    QUARTER_SECONDS,
    QUARTERS_PER_HOUR,
    Grain,
    Tile,
    cached_cover,
    finest,
    signed_cover,
)
from streamagg.tables.keys import (
    ROLLED_UP_TO,
    SEP,
    SplitValue,
    customer_key,
    decode_int,
    decode_report_value,
    decode_split_value,
    report_bucket_prefix,
)
from streamagg.tables.rollup import hour_total
from streamagg.tables.sums import add_vector

ROWS_PER_STEP = 200  # rows yielded between two returns to the event loop

# Every (key, value) of the state with low <= key < high, in key order.
Scan = Callable[[bytes, bytes], Iterable[tuple[bytes, bytes]]]


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
        _add_periods(groups, scan(prefix, _after(prefix)), len(prefix), report, start, end, context)
        yield min(grain.quarters(bucket)[1], end), groups


def range_groups(
    report: Report, start: int, end: int, scan: Scan, context: QueryContext
) -> Iterator[Groups]:
    """What each step of the range's signed cover adds (a report without periods in its
    groups): a bucket read whole, or a bucket less its part outside the range, read at one
    moment. A group may come out at zero (its calls all outside the range)."""
    safe_from = end if context.intact_from is None else context.intact_from
    for step in signed_cover(start, end, report.grains, safe_from):
        net: Groups = {}
        for tile in step:
            merge_groups(net, _tile_groups(report, tile, scan, context), tile[0])
        yield net


def _tile_groups(report: Report, tile: Tile, scan: Scan, context: QueryContext) -> Groups:
    """The groups of one bucket: a coarser one whole (with the open hours it spans), one of the
    finest grain (an hour) for its quarters in the tile's [first, end) only."""
    _, grain, bucket, first, end = tile
    name, fields, customer = report.name, report.fields, context.customer_id
    prefix = report_bucket_prefix(name, grain.code, bucket, customer)
    cut = len(prefix)
    groups: Groups = {}
    rows = scan(prefix, _after(prefix))
    if grain != finest(report.grains):
        for key, raw in rows:
            groups[key[cut:].decode()] = decode_report_value(raw, name, fields)
        _add_open_hours(groups, report, grain, bucket, customer, scan)
    else:  # (the finest grain of the reports without periods is the hour: the bucket is one)
        for key, raw in rows:
            total = _sum_in_range(decode_split_value(raw, name, fields), bucket, first, end)
            if total is not None:
                groups[key[cut:].decode()] = total
    return groups


def _add_open_hours(
    groups: Groups, report: Report, grain: Grain, bucket: int, customer: str, scan: Scan
) -> None:
    """A day or month bucket holds its closed hours only (tables/rollup.py): add the hours it
    spans from the partition's first open hour on, read in the same step as the bucket (no
    commit can close an hour in between).

    The hours end at the customer's latest call (``C␟customer``, raised by the fold that
    accepts a call, in the same transaction): early in a month, "this month" would otherwise
    look up every empty hour to its end, ~700 of them. An open hour holds only calls folded by
    a version that keeps that key (state of older versions has every hour closed)."""
    found = _one(scan, ROLLED_UP_TO)
    if found is None:  # (every hour is closed)
        return
    latest = _one(scan, customer_key(customer))
    if latest is None:  # (no call of this customer)
        return
    first, end = grain.span(bucket)
    end = min(end, decode_int(latest, 0) // 3600 + 1)  # (the hour of that call, included)
    name, fields = report.name, report.fields
    for hour in range(max(first, decode_int(found, 0)), end):
        prefix = report_bucket_prefix(name, HOUR.code, hour, customer)
        for key, raw in scan(prefix, _after(prefix)):
            total = hour_total(decode_split_value(raw, name, fields))
            if total is not None:
                add_vector(groups, key[len(prefix) :].decode(), total)


def _one(scan: Scan, key: bytes) -> bytes | None:
    """The value of one key, through the scan (a query reads nothing else)."""
    found = next(iter(scan(key, key + b"\x00")), None)
    return None if found is None else found[1]


def _quarters_in_range(hour: int, start: int, end: int) -> range:
    """The quarters (0–3) of an epoch hour inside the epoch quarters [start, end)."""
    first = hour * QUARTERS_PER_HOUR
    return range(max(0, start - first), min(QUARTERS_PER_HOUR, end - first))


def _sum_in_range(parts: SplitValue, hour: int, start: int, end: int) -> list[int] | None:
    return hour_total(parts, _quarters_in_range(hour, start, end))


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
            quarters = _quarters_in_range(hour, start, end)
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
    for groups in range_groups(report, start, end, scan, context):
        merge_groups(merged, groups)
    return _with_calls(merged)


def _with_calls(groups: Groups) -> Groups:
    """The groups with calls in the range: a bucket less its part outside the range leaves
    a group whose calls were all outside at zero (a group with a call has a count above 0)."""
    return {group: vector for group, vector in groups.items() if any(vector)}


def merge_groups(merged: Groups, groups: Groups, sign: int = 1) -> None:
    """merged += groups (or -= when sign is -1), group by group. Takes the vectors of
    ``groups`` (new lists, one bucket's, used once) into ``merged`` without copying them; a sum
    is a new list."""
    get = merged.get
    combine = add if sign > 0 else sub
    for group, vector in groups.items():
        existing = get(group)
        if existing is not None:
            merged[group] = list(map(combine, existing, vector))
        else:
            merged[group] = vector if sign > 0 else [-value for value in vector]


def _after(prefix: bytes) -> bytes:
    """The smallest key above every key that starts with prefix (which ends with 0x1f)."""
    return prefix[:-1] + bytes([prefix[-1] + 1])


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
    merged: Groups = {}
    for groups in range_groups(report, start, end, scan, context):
        merge_groups(merged, groups)
        await asyncio.sleep(0)
    for row in report.rows(_with_calls(merged), context):
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
