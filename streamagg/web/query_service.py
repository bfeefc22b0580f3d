"""Run a parsed report query against this worker's tables, if it owns the customer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from faust.types import TP

from streamagg.batches import customer_partition
from streamagg.reports.base import QueryContext, Row
from streamagg.reports.query import run_query
from streamagg.tables.faust_tables import partition_db
from streamagg.web.forward import NotOwner
from streamagg.web.params import ReportQuery

if TYPE_CHECKING:
    from streamagg.app import StreamaggApp


def run_local_query(app: StreamaggApp, query: ReportQuery) -> list[Row]:
    """Rows of the query from local state; NotOwner when another worker holds the customer."""
    runtime = app.runtime
    table = runtime.tables.reports[query.report.name]
    partition = customer_partition(query.customer_id, runtime.settings.partitions)
    tp = TP(table.changelog_topic.get_topic_name(), partition)
    if not app.assignor.is_active(tp):
        raise NotOwner(partition)
    db = partition_db(table, partition)
    context = QueryContext(
        customer_id=query.customer_id,
        resolve_rate_center=runtime.rate_centers.current.resolve,
    )
    return run_query(query.report, query.start_hour, query.end_hour, db.get, context)
