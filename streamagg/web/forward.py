"""Forward a report request to the worker that owns the customer's partition."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from streamagg.errors import StreamaggError

if TYPE_CHECKING:
    from streamagg.app import StreamaggApp

FORWARD_TIMEOUT = aiohttp.ClientTimeout(total=15)
_PASSED_HEADERS = ("Authorization", "Accept")


class NotOwner(StreamaggError):
    """This worker is not the active owner of the partition."""

    def __init__(self, partition: int) -> None:
        super().__init__(f"partition {partition} is owned by another worker")
        self.partition = partition


def owner_url(app: StreamaggApp, partition: int) -> str | None:
    """URL of the worker the group assigned this partition to, from the assignor's metadata."""
    table = next(iter(app.runtime.tables.reports.values()))
    topic = table.changelog_topic.get_topic_name()
    metadata: Any = app.router.table_metadata(table.name)
    for url, topics in metadata.items():
        if partition in topics.get(topic, ()):
            return str(url)
    return None


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
