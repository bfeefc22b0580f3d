"""Answer a report for any hour-aligned range from its bucketed state."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from streamagg.reports.base import Groups, QueryContext, Report, Row
from streamagg.tables.buckets import cover
from streamagg.tables.fold import add_vector
from streamagg.tables.keys import decode_vector, report_bucket_prefix

# Every (key, value) of the state with low <= key < high, in key order.
Scan = Callable[[bytes, bytes], Iterable[tuple[bytes, bytes]]]


def merged_groups(
    report: Report, customer_id: str, start_hour: int, end_hour: int, scan: Scan
) -> Groups:
    """Sum of every group over [start_hour, end_hour), read from the fewest buckets."""
    groups: Groups = {}
    for grain, bucket in cover(start_hour, end_hour, report.grains):
        prefix = report_bucket_prefix(report.name, grain.code, bucket, customer_id)
        first, last = grain.span(bucket)
        edge = report.hour_in_group and (first < start_hour or last > end_hour)
        for key, raw in scan(prefix, _after(prefix)):
            group = key[len(prefix) :].decode()
            if edge and not start_hour <= int(group.split("\x1f", 1)[0]) < end_hour:
                continue
            add_vector(groups, group, decode_vector(raw))
    return groups


def _after(prefix: bytes) -> bytes:
    """The smallest key above every key that starts with prefix (which ends with 0x1f)."""
    return prefix[:-1] + bytes([prefix[-1] + 1])


def run_query(
    report: Report, start_hour: int, end_hour: int, scan: Scan, context: QueryContext
) -> list[Row]:
    """The rows of one customer's report for [start_hour, end_hour) (epoch hours, UTC)."""
    groups = merged_groups(report, context.customer_id, start_hour, end_hour, scan)
    return report.rows(groups, context)
