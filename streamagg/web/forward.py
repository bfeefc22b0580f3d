"""Forward a request to the worker that owns a customer's partition, or ask one for JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp
import yarl
from aiohttp import web

from streamagg.web.server import peer_tls

if TYPE_CHECKING:
    from streamagg.app import StreamaggApp

# The owner must start answering within 15 s; a long export may take longer in all.
FORWARD_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=5, sock_read=15)
FORWARD_CHUNK_BYTES = 64 * 1024
_PASSED_HEADERS = ("Authorization", "Accept", "If-None-Match")
# (ETag and Cache-Control: a page polling a worker that does not own its customer gets the
# owner's 304s too, instead of the whole answer every time)
_RETURNED_HEADERS = ("Content-Type", "Content-Disposition", "ETag", "Cache-Control")


async def forward_request(app: StreamaggApp, request: web.Request, url: str) -> web.StreamResponse:
    """The owner's answer, streamed through as it arrives (a CSV export is never whole in
    this worker's memory). The path goes on as the client encoded it."""
    target = url.rstrip("/") + request.raw_path
    headers = {name: request.headers[name] for name in _PASSED_HEADERS if name in request.headers}
    headers["X-Streamagg-Forwarded"] = "1"
    tls = peer_tls(app.runtime.settings) if target.startswith("https:") else True
    async with (
        aiohttp.ClientSession(timeout=FORWARD_TIMEOUT) as session,
        session.get(yarl.URL(target, encoded=True), headers=headers, ssl=tls) as upstream,
    ):
        passed = {
            name: upstream.headers[name] for name in _RETURNED_HEADERS if name in upstream.headers
        }
        response = web.StreamResponse(status=upstream.status, headers=passed)
        await response.prepare(request)
        async for chunk in upstream.content.iter_chunked(FORWARD_CHUNK_BYTES):
            await response.write(chunk)
        await response.write_eof()
        return response


async def fetch_json(app: StreamaggApp, url: str, path_and_query: str, authorization: str) -> Any:
    """Another worker's JSON answer to a GET of ``path_and_query`` (forwarded: it answers from
    its own partitions only); raises aiohttp.ClientError or TimeoutError when it does not."""
    target = url.rstrip("/") + path_and_query
    headers = {"Authorization": authorization, "X-Streamagg-Forwarded": "1"}
    tls = peer_tls(app.runtime.settings) if target.startswith("https:") else True
    async with (
        aiohttp.ClientSession(timeout=FORWARD_TIMEOUT) as session,
        session.get(target, headers=headers, ssl=tls) as upstream,
    ):
        if upstream.status != 200:
            raise aiohttp.ClientResponseError(
                upstream.request_info, (), status=upstream.status, message=await upstream.text()
            )
        return await upstream.json()
