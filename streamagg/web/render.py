"""Serialize report rows and errors: SPEC §3's JSON shape, or CSV with a header line."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import logging
import operator
import re
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime

import orjson
from aiohttp import web
from yarl import URL

from streamagg.errors import StreamaggError
from streamagg.reports.base import Row
from streamagg.reports.periods import label
from streamagg.reports.view import Column, csv_cell
from streamagg.web.params import ReportQuery

log = logging.getLogger(__name__)

# Text cells (provider ids, tech prefixes, accounts, rate centers come from CDRs and
# reference data) that start like a formula; numbers such as "-1.500000" stay numbers.
_FORMULA_STARTS = frozenset("=+-@\t\r")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
CSV_CHUNK_ROWS = 200  # rows per write; the event loop serves other requests in between


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


async def report_response(
    request: web.Request, query: ReportQuery, rows: AsyncIterator[Row]
) -> web.StreamResponse:
    """A JSON page of the rows, or every row as CSV, streamed."""
    if query.format == "csv":
        return await stream_csv(request, query, rows)
    page = await json_page(query, rows, str(request.rel_url))
    body = orjson.dumps(page)
    # An ETag per answer: a page that polls (the live report page) sends it back in
    # If-None-Match and gets a 304 without a body while nothing changed.
    etag = f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if etag in _entity_tags(request.headers.get("If-None-Match", "")):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type="application/json", headers=headers)


def _entity_tags(header: str) -> set[str]:
    """The entity tags of an If-None-Match header (weak ones compared as strong: RFC 9110 says
    If-None-Match uses the weak comparison)."""
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


async def json_page(query: ReportQuery, rows: AsyncIterator[Row], url: str) -> dict[str, object]:
    """SPEC §3's JSON body: rows [offset, offset + limit) of the answer, and while rows remain,
    `next`: the URL (path and query) of the next page."""
    page: list[Row] = []
    more = False
    skipped = 0
    async for row in rows:
        if skipped < query.offset:
            skipped += 1
        elif len(page) < query.limit:
            page.append(row)
        else:
            more = True
            break
    body: dict[str, object] = {
        "report": query.report.name,
        "customer_id": query.customer_id,
        "from": label(int(query.start.timestamp()), query.zone),
        "to": label(int(query.end.timestamp()), query.zone),
        "tz": query.zone.name,
        "rows": page,
    }
    if more:
        next_url = URL(url).update_query(offset=query.offset + len(page), limit=query.limit)
        body["next"] = str(next_url)
    return body


async def stream_csv(
    request: web.Request, query: ReportQuery, rows: AsyncIterator[Row]
) -> web.StreamResponse:
    """Every row as CSV, written in chunks as they are read: the answer is never whole in
    memory, and the event loop serves other requests in between. An error before the first
    row is an ordinary error response; one after it (the partition moved away while it was
    read) ends the transfer without its final chunk, so the client sees it incomplete."""
    iterator = aiter(rows)
    first = await anext(iterator, None)  # errors of the first read still get a status
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{_filename(query)}"',
        }
    )
    await response.prepare(request)
    columns = query.report.columns
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([column.key for column in columns])
    cells = csv_cells(columns)
    count = 0
    row = first
    try:
        while row is not None:
            writer.writerow(cells(row))
            count += 1
            if count % CSV_CHUNK_ROWS == 0:
                await response.write(out.getvalue().encode())
                out.seek(0)
                out.truncate()
                await asyncio.sleep(0)  # a write to a fast reader does not yield by itself
            row = await anext(iterator, None)
    except StreamaggError as exc:
        log.warning("CSV of %s cut after %d rows: %s", query.report.name, count, exc)
        response.force_close()
        return response
    await response.write(out.getvalue().encode())
    await response.write_eof()
    return response


def rows_to_csv(columns: Sequence[Column], rows: Sequence[Row]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([column.key for column in columns])
    cells = csv_cells(columns)
    for row in rows:
        writer.writerow(cells(row))
    return out.getvalue()


# Kinds whose values streamagg writes itself (numbers, money, period labels): as they are.
_OWN_KINDS = frozenset({"count", "ratio", "money", "hour"})


def csv_cells(columns: Sequence[Column]) -> Callable[[Row], list[object]]:
    """A row's CSV cells, in column order: every cell as ``csv_cell`` and ``_cell`` make it.
    Built once per answer: a large export converts only the cells that need it (text from
    CDRs, flags, SIP codes), the rest are taken as they are."""
    values = operator.itemgetter(*[column.key for column in columns])
    converted = [
        (index, column) for index, column in enumerate(columns) if column.kind not in _OWN_KINDS
    ]

    def cells(row: Row) -> list[object]:
        found = values(row)
        line = list(found) if isinstance(found, tuple) else [found]
        for index, column in converted:
            line[index] = _cell(csv_cell(column, line[index]))
        return line

    return cells


def _cell(value: object) -> object:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value[:1] in _FORMULA_STARTS and not _NUMBER.fullmatch(value):
        # A spreadsheet would run it as a formula (OWASP "CSV injection"): make it text.
        return "'" + value
    return value


def _filename(query: ReportQuery) -> str:
    safe_customer = "".join(ch if ch.isalnum() else "_" for ch in query.customer_id)[:40]
    zone = query.zone.info  # (the local times of the range: what the user asked for)
    span = f"{query.start.astimezone(zone):%Y%m%dT%H}-{query.end.astimezone(zone):%Y%m%dT%H}"
    return f"{query.report.name}_{safe_customer}_{span}.csv"


def error_response(status: int, code: str, message: str) -> web.Response:
    body = {"error": {"code": code, "message": message}}
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")
