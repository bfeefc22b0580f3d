"""Run a parsed report query against this worker's state, if it owns the customer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from streamagg.batches import customer_partition
from streamagg.reports.base import QueryContext, Row
from streamagg.reports.query import run_query
from streamagg.web.params import ReportQuery

if TYPE_CHECKING:
    from streamagg.app import StreamaggApp


def run_local_query(app: StreamaggApp, query: ReportQuery) -> list[Row]:
    """Rows of the query from local state; NotOwner when another worker holds the customer,
    Unavailable when this one does but cannot answer yet (both from tables/state.py)."""
    runtime = app.runtime
    partition = customer_partition(query.customer_id, runtime.settings.partitions)
    store = runtime.state.store_for_query(partition)
    context = QueryContext(
        customer_id=query.customer_id,
        resolve_rate_center=runtime.rate_centers.current.resolve,
    )
    return run_query(query.report, query.start_hour, query.end_hour, store.scan, context)
