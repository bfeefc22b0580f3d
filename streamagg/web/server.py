"""How the worker's HTTP server meets the network: TLS, limits on slow and many clients,
security headers and the access log.

aiohttp closes a connection whose request headers have not all arrived `web_idle_seconds`
after it opened (or after the previous answer on a kept-alive connection), which also ends
slow-header clients (slowloris); connections past `web_max_connections` are closed at once.

Faust builds the aiohttp runner; this module replaces it. Private names used, checked against
faust-streaming 0.15.3 and aiohttp 3.14: faust's `Web._runner` (the runner Faust starts), and
aiohttp's `AppRunner._make_server` (overridden, to bound the connections of the server it
makes).
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from streamagg.settings import Settings
from streamagg.web.auth import bearer_token_sha256

access_log = logging.getLogger("streamagg.access")
log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # The page loads its scripts, styles and charts from this worker only, inline nothing.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
}


class BoundedRunner(web.AppRunner):
    """An AppRunner whose server closes connections beyond a maximum at once."""

    def __init__(self, app: web.Application, *, max_connections: int, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.max_connections = max_connections

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        register = server.connection_made

        def connection_made(handler: Any, transport: Any) -> None:
            register(handler, transport)
            if len(server.connections) > self.max_connections:
                log.warning("refused a connection: %d open", len(server.connections) - 1)
                handler.force_close()
                transport.close()

        server.connection_made = connection_made  # type: ignore[method-assign]
        return server


def make_runner(app: web.Application, settings: Settings) -> web.AppRunner:
    return BoundedRunner(
        app,
        access_log=None,
        max_connections=settings.web_max_connections,
        keepalive_timeout=settings.web_idle_seconds,
    )


def server_tls(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context of the HTTP API, when a certificate and key are configured."""
    if settings.web_tls_certfile is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(settings.web_tls_certfile), str(settings.web_tls_keyfile))
    return context


def peer_tls(settings: Settings) -> ssl.SSLContext | bool:
    """How this worker checks the other workers it forwards to (the system's CAs, or
    STREAMAGG_WEB_TLS_CAFILE)."""
    if settings.web_tls_cafile is None:
        return True
    return ssl.create_default_context(cafile=str(settings.web_tls_cafile))


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


@web.middleware
async def access_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One line per API request: status, path, the token's hash prefix (never the token),
    customer, report, duration."""
    if not request.path.startswith("/api/"):
        return await handler(request)
    began = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        access_log.info(
            "%s %d %s token=%s customer=%s report=%s %.1f ms",
            request.method,
            status,
            request.rel_url.raw_path,  # (as sent, encoded: a %0A in it cannot start a line)
            token_hash_prefix(request.headers.get("Authorization", "")),
            _one_line(request.match_info.get("customer_id", "-")),
            _one_line(request.match_info.get("report", "-")),
            (time.perf_counter() - began) * 1e3,
        )


def token_hash_prefix(authorization: str) -> str:
    """The first 8 hex digits of the SHA-256 of the bearer token (what the tokens file holds),
    or "-" without a token."""
    digest = bearer_token_sha256(authorization)
    return "-" if digest is None else digest[:8]


def _one_line(text: str) -> str:
    """Text for a log line: control characters (a decoded %0A) escaped."""
    return (
        text if text.isprintable() else text.encode("unicode_escape", "backslashreplace").decode()
    )
