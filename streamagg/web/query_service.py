"""Run a parsed query against this worker's state: a report (if it owns the customer), or the
customer list (its partitions, and the other workers' asked for theirs)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import TYPE_CHECKING

import aiohttp

from streamagg.batches import customer_partition
from streamagg.errors import NotOwner, Unavailable
from streamagg.reports.base import QueryContext, Row
from streamagg.reports.customers import latest_calls
from streamagg.reports.query import stream_rows
from streamagg.tables.retention import partition_intact_from
from streamagg.web.forward import fetch_json
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
        zone=query.zone,
        intact_from=partition_intact_from(reader.get, time.time(), runtime.settings.retention_days),
    )
    return stream_rows(query.report, query.start_quarter, query.end_quarter, reader.scan, context)


async def customer_latest_calls(
    app: StreamaggApp, partitions: list[int], authorization: str, forwarded: bool
) -> dict[str, int]:
    """customer → start of its latest call, over ``partitions``: this worker's own from its
    state, the others' from their owners (one request each). Unavailable when a partition has
    no answer now (moving, recovering, its owner away): a partial list would mislead."""
    state = app.runtime.state
    latest: dict[str, int] = {}
    remote: dict[str, list[int]] = {}
    for partition in partitions:
        try:
            latest |= latest_calls(state.reader(partition).scan)
        except NotOwner:
            url = state.owner_url(partition)
            if url is None or forwarded:
                raise Unavailable("partitions are moving between workers; retry shortly") from None
            remote.setdefault(url, []).append(partition)
    for url, owned in remote.items():
        path = "/api/v1/customers?partitions=" + ",".join(map(str, owned))
        try:
            answer = await fetch_json(app, url, path, authorization)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Unavailable(
                f"the worker {url} does not answer ({exc.__class__.__name__}); retry shortly"
            ) from None
        for entry in answer["customers"]:
            start = int(datetime.fromisoformat(entry["latest_call"]).timestamp())
            latest[entry["customer_id"]] = max(latest.get(entry["customer_id"], start), start)
    return latest
