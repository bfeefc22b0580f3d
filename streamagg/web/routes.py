"""HTTP surface of a worker: the report API, health, readiness, the page and the OpenAPI document.

Handlers only parse, call a query and serialize; errors become SPEC §3's JSON in one middleware.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streamagg.errors import AccessDenied, BadQuery, NotOwner, Unavailable
from streamagg.reports import REPORTS
from streamagg.reports.view import catalogue
from streamagg.web.auth import check_customer
from streamagg.web.forward import forward_request
from streamagg.web.params import (
    UnknownReport,
    parse_customer_partitions,
    parse_report_query,
    single_valued,
)
from streamagg.web.query_service import customer_latest_calls, local_rows
from streamagg.web.render import error_response, iso, report_response
from streamagg.web.server import access_log_middleware, add_security_headers

if TYPE_CHECKING:
    from streamagg.app import StreamaggApp

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
OPENAPI_FILE = Path(__file__).parent / "openapi.yaml"
APP_KEY: web.AppKey[Any] = web.AppKey("streamagg_app", object)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def install_routes(web_app: web.Application, app: StreamaggApp) -> None:
    web_app[APP_KEY] = app
    if app.runtime.settings.web_access_log == "on":
        web_app.middlewares.append(access_log_middleware)  # outermost: sees the final status
    web_app.middlewares.append(error_middleware)
    web_app.on_response_prepare.append(add_security_headers)
    router = web_app.router
    router.add_get("/", index)
    router.add_get("/healthz", healthz)
    router.add_get("/readyz", readyz)
    router.add_get("/metrics", metrics)
    router.add_get("/api/v1/openapi.yaml", openapi)
    router.add_get("/api/v1/reports", report_catalogue)
    router.add_get("/api/v1/customers", customers)
    router.add_get("/api/v1/customers/{customer_id}/reports/{report}", report)
    if STATIC_DIR.is_dir():
        router.add_static("/static/", STATIC_DIR)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except UnknownReport as exc:
        return error_response(404, "unknown_report", str(exc))
    except BadQuery as exc:
        return error_response(400, "bad_parameter", str(exc))
    except AccessDenied as exc:
        code = "unauthorized" if exc.status == 401 else "forbidden"
        return error_response(exc.status, code, exc.message)
    except Unavailable as exc:
        return error_response(503, "unavailable", str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "http_error")
        return error_response(exc.status, code, exc.reason)
    except Exception:
        log.exception("unexpected error serving %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal error; see the worker log")


async def index(request: web.Request) -> web.StreamResponse:
    page = STATIC_DIR / "index.html"
    if not page.is_file():
        raise web.HTTPNotFound(reason="the report page is not installed")
    return web.FileResponse(page)


async def openapi(request: web.Request) -> web.StreamResponse:
    if not OPENAPI_FILE.is_file():
        raise web.HTTPNotFound(reason="the OpenAPI document is not installed")
    return web.FileResponse(OPENAPI_FILE, headers={"Content-Type": "application/yaml"})


async def report_catalogue(request: web.Request) -> web.Response:
    """The reports, their columns and charts: what the page builds its tabs and tables from."""
    body = orjson.dumps(catalogue(REPORTS.values()))
    return web.Response(body=body, content_type="application/json")


async def customers(request: web.Request) -> web.Response:
    """The customers the token may read that have data, with their latest call (SPEC §6)."""
    app = request.app[APP_KEY]
    runtime = app.runtime
    authorization = request.headers.get("Authorization")
    grant = runtime.tokens.authenticate(authorization)
    forwarded = bool(request.headers.get("X-Streamagg-Forwarded"))
    query = single_valued(request.query.items())
    partitions, partial = parse_customer_partitions(query, runtime.settings.partitions, forwarded)
    found = await customer_latest_calls(app, partitions, authorization or "", forwarded, partial)
    oldest = time.time() - runtime.settings.retention_days * 86400  # (older data has expired)
    body: dict[str, object] = {
        "customers": [
            {"customer_id": customer, "latest_call": iso(datetime.fromtimestamp(start, UTC))}
            for customer, start in sorted(found.latest.items())
            if start >= oldest and grant.allows(customer)
        ]
    }
    if found.unavailable:
        body["unavailable_partitions"] = [
            {"partition": partition, "reason": why}
            for partition, why in sorted(found.unavailable.items())
        ]
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    app = request.app[APP_KEY]
    body = generate_latest(app.runtime.registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def readyz(request: web.Request) -> web.Response:
    app = request.app[APP_KEY]
    ready, reason = app.runtime.readiness(app)
    body = orjson.dumps({"ready": ready, "reason": reason})
    return web.Response(status=200 if ready else 503, body=body, content_type="application/json")


async def report(request: web.Request) -> web.StreamResponse:
    app = request.app[APP_KEY]
    runtime = app.runtime
    grant = runtime.tokens.authenticate(request.headers.get("Authorization"))
    query = parse_report_query(
        request.match_info["report"],
        request.match_info["customer_id"],
        single_valued(request.query.items()),
        query_string=request.query_string,
        accept=request.headers.get("Accept", ""),
        retention_days=runtime.settings.retention_days,
    )
    check_customer(grant, query.customer_id)
    try:
        rows = local_rows(app, query)
    except NotOwner as not_owner:
        url = runtime.state.owner_url(not_owner.partition)
        if url is None or request.headers.get("X-Streamagg-Forwarded"):
            raise Unavailable(
                "the owner of this customer's data is moving; retry shortly"
            ) from None
        try:
            return await forward_request(app, request, url)
        except (aiohttp.ClientError, TimeoutError) as exc:
            # The owner is down and the group has not noticed yet (its session timeout).
            raise Unavailable(
                f"the worker that owns this customer's data ({url}) does not answer "
                f"({exc.__class__.__name__}); retry shortly"
            ) from None
    return await report_response(request, query, rows)
