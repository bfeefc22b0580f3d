"""Answer a report for any hour-aligned range from its bucketed table state."""

from __future__ import annotations

from collections.abc import Callable

from streamagg.reports.base import Groups, QueryContext, Report, Row, merge_into
from streamagg.tables.applier import decode_state
from streamagg.tables.buckets import bucket_key, cover

Reader = Callable[[bytes], bytes | None]


def merged_groups(
    report: Report, customer_id: str, start_hour: int, end_hour: int, read: Reader
) -> Groups:
    """Sum of every group over [start_hour, end_hour), read from the fewest buckets."""
    groups: Groups = {}
    for grain, bucket in cover(start_hour, end_hour, report.grains):
        _, bucket_groups = decode_state(read(bucket_key(customer_id, grain, bucket)))
        first, last = grain.span(bucket)
        if report.hour_in_group and (first < start_hour or last > end_hour):
            bucket_groups = {
                group: vector
                for group, vector in bucket_groups.items()
                if start_hour <= int(group.split("\x1f", 1)[0]) < end_hour
            }
        merge_into(groups, bucket_groups)
    return groups


def run_query(
    report: Report, start_hour: int, end_hour: int, read: Reader, context: QueryContext
) -> list[Row]:
    """The rows of one customer's report for [start_hour, end_hour) (epoch hours, UTC)."""
    groups = merged_groups(report, context.customer_id, start_hour, end_hour, read)
    return report.rows(groups, context)
