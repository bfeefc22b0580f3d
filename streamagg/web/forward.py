"""Forward a report request to the worker that owns the customer's partition."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

if TYPE_CHECKING:
    from streamagg.app import StreamaggApp

FORWARD_TIMEOUT = aiohttp.ClientTimeout(total=15)
_PASSED_HEADERS = ("Authorization", "Accept")


async def forward_request(app: StreamaggApp, request: web.Request, url: str) -> web.Response:
    target = url.rstrip("/") + request.rel_url.path_qs
    headers = {name: request.headers[name] for name in _PASSED_HEADERS if name in request.headers}
    headers["X-Streamagg-Forwarded"] = "1"
    async with (
        aiohttp.ClientSession(timeout=FORWARD_TIMEOUT) as session,
        session.get(target, headers=headers) as upstream,
    ):
        body = await upstream.read()
        passed = {
            name: upstream.headers[name]
            for name in ("Content-Type", "Content-Disposition")
            if name in upstream.headers
        }
        return web.Response(status=upstream.status, body=body, headers=passed)
