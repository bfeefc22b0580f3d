"""Answer a report for any hour-aligned range from its bucketed state.

A range is covered by the fewest buckets (tables/buckets.py). Each bucket is read whole in one
step; between buckets the query gives the event loop back, so a long answer never holds up
the worker. Reports whose groups carry their hour (dtmf) have each group in exactly one
bucket, and buckets come in time order: their rows stream bucket by bucket, in order, without
the whole answer in memory. The others sum their groups over the buckets first (their groups
are few: prefixes, DIDs).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Iterator

from streamagg.reports.base import Groups, QueryContext, Report, Row, period_start
from streamagg.tables.buckets import cover
from streamagg.tables.fold import add_vector
from streamagg.tables.keys import decode_report_value, report_bucket_prefix

ROWS_PER_STEP = 200  # rows yielded between two returns to the event loop

# Every (key, value) of the state with low <= key < high, in key order.
Scan = Callable[[bytes, bytes], Iterable[tuple[bytes, bytes]]]


def bucket_groups(
    report: Report, customer_id: str, start_hour: int, end_hour: int, scan: Scan
) -> Iterator[Groups]:
    """The groups of each bucket covering [start_hour, end_hour), bucket by bucket in time
    order (groups of hours outside the range left out of the edge buckets)."""
    for grain, bucket in cover(start_hour, end_hour, report.grains):
        prefix = report_bucket_prefix(report.name, grain.code, bucket, customer_id)
        first, last = grain.span(bucket)
        edge = report.hour_in_group and (first < start_hour or last > end_hour)
        groups: Groups = {}
        for key, raw in scan(prefix, _after(prefix)):
            group = key[len(prefix) :].decode()
            if edge and not start_hour <= int(group.split("\x1f", 1)[0]) < end_hour:
                continue
            groups[group] = decode_report_value(raw, report.name, report.fields)
        yield groups


def merged_groups(
    report: Report, customer_id: str, start_hour: int, end_hour: int, scan: Scan
) -> Groups:
    """Sum of every group over [start_hour, end_hour), read from the fewest buckets."""
    merged: Groups = {}
    for groups in bucket_groups(report, customer_id, start_hour, end_hour, scan):
        for group, vector in groups.items():
            add_vector(merged, group, vector)
    return merged


def _by_month(buckets: Iterable[Groups]) -> Iterator[Groups]:
    """Consecutive buckets of groups keyed by hour, joined per calendar month (UTC)."""
    month, joined = None, {}
    for groups in buckets:
        if not groups:
            continue
        first = period_start(int(next(iter(groups)).split("\x1f", 1)[0]), "month")
        if month is not None and first != month:
            yield joined
            joined = {}
        month = first
        joined.update(groups)  # (each hour lives in one bucket: no key repeats)
    if joined:
        yield joined


def _after(prefix: bytes) -> bytes:
    """The smallest key above every key that starts with prefix (which ends with 0x1f)."""
    return prefix[:-1] + bytes([prefix[-1] + 1])


def run_query(
    report: Report, start_hour: int, end_hour: int, scan: Scan, context: QueryContext
) -> list[Row]:
    """The rows of one customer's report for [start_hour, end_hour) (epoch hours, UTC)."""
    groups = merged_groups(report, context.customer_id, start_hour, end_hour, scan)
    return report.rows(groups, context)


async def stream_rows(
    report: Report, start_hour: int, end_hour: int, scan: Scan, context: QueryContext
) -> AsyncIterator[Row]:
    """The rows of run_query, in the same order, giving the event loop back between buckets."""
    buckets = bucket_groups(report, context.customer_id, start_hour, end_hour, scan)
    if report.hour_in_group:
        if context.granularity == "month":  # (a bucket is a day: join a month's buckets)
            buckets = _by_month(buckets)
        for groups in buckets:
            for n, row in enumerate(report.rows(groups, context), 1):
                yield row
                if n % ROWS_PER_STEP == 0:
                    await asyncio.sleep(0)
            await asyncio.sleep(0)
        return
    merged: Groups = {}
    for groups in buckets:
        for group, vector in groups.items():
            add_vector(merged, group, vector)
        await asyncio.sleep(0)
    for row in report.rows(merged, context):
        yield row
