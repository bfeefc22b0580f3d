"""Serialize report rows and errors: SPEC §3's JSON shape, or CSV with a header line."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from datetime import datetime

import orjson
from aiohttp import web

from streamagg.reports.base import Row
from streamagg.web.params import ReportQuery

# Text cells (provider ids, tech prefixes, accounts, rate centers come from CDRs and
# reference data) that start like a formula; numbers such as "-1.500000" stay numbers.
_FORMULA_STARTS = frozenset("=+-@\t\r")
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def report_response(query: ReportQuery, rows: Sequence[Row]) -> web.Response:
    if query.format == "csv":
        return web.Response(
            body=rows_to_csv(query.report.columns, rows).encode(),
            content_type="text/csv",
            charset="utf-8",
            headers={"Content-Disposition": f'attachment; filename="{_filename(query)}"'},
        )
    body = {
        "report": query.report.name,
        "customer_id": query.customer_id,
        "from": iso(query.start),
        "to": iso(query.end),
        "rows": rows,
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def rows_to_csv(columns: Sequence[str], rows: Sequence[Row]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row[column]) for column in columns])
    return out.getvalue()


def _cell(value: object) -> object:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value[:1] in _FORMULA_STARTS and not _NUMBER.fullmatch(value):
        # A spreadsheet would run it as a formula (OWASP "CSV injection"): make it text.
        return "'" + value
    return value


def _filename(query: ReportQuery) -> str:
    safe_customer = "".join(ch if ch.isalnum() else "_" for ch in query.customer_id)[:40]
    span = f"{query.start:%Y%m%dT%H}-{query.end:%Y%m%dT%H}"
    return f"{query.report.name}_{safe_customer}_{span}.csv"


def error_response(status: int, code: str, message: str) -> web.Response:
    body = {"error": {"code": code, "message": message}}
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")
