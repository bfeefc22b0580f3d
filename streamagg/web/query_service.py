"""Run a parsed report query against this worker's state, if it owns the customer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from streamagg.batches import customer_partition
from streamagg.reports.base import QueryContext, Row
from streamagg.reports.query import stream_rows
from streamagg.web.params import ReportQuery

if TYPE_CHECKING:
    from streamagg.app import StreamaggApp


def local_rows(app: StreamaggApp, query: ReportQuery) -> AsyncIterator[Row]:
    """The rows of the query from local state; NotOwner when another worker holds the customer,
    Unavailable when this one does but cannot answer (both from tables/state.py), raised here
    before any row, or from the iterator when the partition moves while it is read."""
    runtime = app.runtime
    partition = customer_partition(query.customer_id, runtime.settings.partitions)
    reader = runtime.state.reader(partition)
    context = QueryContext(
        customer_id=query.customer_id,
        resolve_rate_center=runtime.rate_centers.current.resolve,
        granularity=query.granularity,
    )
    return stream_rows(query.report, query.start_hour, query.end_hour, reader.scan, context)
