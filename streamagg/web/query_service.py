"""Run a parsed query against this worker's state: a report (if it owns the customer), or the
customer list (its partitions, and the other workers' asked for theirs)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import aiohttp
import orjson

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


@dataclass
class CustomerLatest:
    """customer → start of its latest call, and the partitions that could not answer."""

    latest: dict[str, int] = field(default_factory=dict)
    unavailable: dict[int, str] = field(default_factory=dict)  # partition → why

    def add(self, customer: str, start: int) -> None:
        self.latest[customer] = max(self.latest.get(customer, start), start)


async def customer_latest_calls(
    app: StreamaggApp, partitions: list[int], authorization: str, forwarded: bool, partial: bool
) -> CustomerLatest:
    """The latest call of each customer of ``partitions``: this worker's own from its state,
    the others' from their owners (one request each). A partition without an answer now
    (stopped, moving, its owner away) makes the list Unavailable, naming it: a partial list
    would mislead a client that takes it for all. With ``partial`` the others are listed and it
    is named in ``unavailable`` instead (the page's suggestions)."""
    state = app.runtime.state
    found = CustomerLatest()
    remote: dict[str, list[int]] = {}
    for partition in partitions:
        try:
            for customer, start in latest_calls(state.reader(partition).scan).items():
                found.add(customer, start)
        except NotOwner:
            url = state.owner_url(partition)
            if url is not None and not forwarded:
                remote.setdefault(url, []).append(partition)
            else:
                _missing(found, [partition], "is moving between workers", partial)
        except Unavailable as exc:
            _missing(found, [partition], _without_subject(str(exc)), partial)
    for url, owned in remote.items():
        await _ask_owner(app, url, owned, authorization, partial, found)
    return found


async def _ask_owner(
    app: StreamaggApp,
    url: str,
    owned: list[int],
    authorization: str,
    partial: bool,
    found: CustomerLatest,
) -> None:
    """Add the customers of the partitions another worker owns, asked of it."""
    path = "/api/v1/customers?partitions=" + ",".join(map(str, owned))
    try:
        try:
            answer = await fetch_json(app, url, path + ("&partial=true" * partial), authorization)
        except aiohttp.ClientResponseError as exc:
            if not (partial and exc.status == 400):
                raise
            # A worker of the version before knows no partial (a rolling upgrade): ask it for
            # the whole of its partitions.
            answer = await fetch_json(app, url, path, authorization)
    except (aiohttp.ClientError, TimeoutError) as exc:
        _missing(found, owned, _peer_failure(url, exc), partial)
        return
    for entry in answer["customers"]:
        start = datetime.fromisoformat(entry["latest_call"]).timestamp()
        found.add(entry["customer_id"], int(start))
    for entry in answer.get("unavailable_partitions", ()):
        found.unavailable[int(entry["partition"])] = str(entry["reason"])


def _missing(found: CustomerLatest, partitions: list[int], why: str, partial: bool) -> None:
    """Note ``partitions`` as unavailable (``why``: "is …"), or refuse the whole list."""
    if not partial:
        if len(partitions) == 1:
            subject = f"partition {partitions[0]}: it"
        else:
            subject = f"partitions {', '.join(map(str, partitions))}: they"
            why = "are " + why.removeprefix("is ") if why.startswith("is ") else why
        raise Unavailable(f"the customer list lacks {subject} {why}; retry shortly")
    for partition in partitions:
        found.unavailable[partition] = f"it {why}"


def _without_subject(message: str) -> str:
    """A state refusal ("this customer's partition is stopped (…); retry shortly") said of a
    partition: "is stopped (…)"."""
    for subject in ("this customer's partition ", "partitions "):
        message = message.removeprefix(subject)
    if message.startswith("are "):  # ("partitions are being rebalanced")
        message = "is " + message.removeprefix("are ")
    return message.removesuffix("; retry shortly").removesuffix("; retry")


def _peer_failure(url: str, exc: BaseException) -> str:
    """Why another worker gave no list: its own refusal when it answered one, else that it did
    not answer."""
    if isinstance(exc, aiohttp.ClientResponseError):
        try:
            said = str(orjson.loads(exc.message)["error"]["message"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            said = exc.message[:200]
        return f"is held by {url}, which answered {exc.status}: {said}"
    return f"is held by {url}, which does not answer ({exc.__class__.__name__})"
