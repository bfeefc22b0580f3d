"""`streamagg check`: a probe that exits 0 only when the worker answers /readyz with 200."""

from __future__ import annotations

import argparse
import contextlib
import sys
import urllib.parse

import httpx

from streamagg.settings import Settings


def run(args: argparse.Namespace, settings: Settings) -> int:
    base = f"http://127.0.0.1:{settings.web_port}" if args.url is None else args.url
    problem = _not_a_worker_url(base)
    if problem:
        print(f"streamagg check: --url {base!r} is not a URL ({problem})", file=sys.stderr)
        return 2
    url = base.rstrip("/") + "/readyz"
    try:
        response = httpx.get(url, timeout=args.timeout)
    except httpx.InvalidURL as exc:
        print(f"streamagg check: --url {base!r} is not a URL ({exc})", file=sys.stderr)
        return 2
    except httpx.HTTPError as exc:
        print(f"streamagg check: no answer from {url} ({exc.__class__.__name__})", file=sys.stderr)
        return 1
    reason = response.text
    with contextlib.suppress(ValueError):
        reason = response.json().get("reason", reason)
    if response.status_code == 200:
        print(f"ready: {url}")
        return 0
    print(f"streamagg check: not ready ({response.status_code}): {reason}", file=sys.stderr)
    return 1


def _not_a_worker_url(text: str) -> str | None:
    """Why ``text`` cannot be a worker's base URL, or None. A script's typo (`localhost:6066`,
    `http//host`) must fail as a usage error at once, not wait out its timeout as "not ready"."""
    try:
        parts = urllib.parse.urlsplit(text)
        parts.port  # noqa: B018 (raises on a port that is not a number from 0 to 65535)
    except ValueError as exc:
        return str(exc)
    if parts.scheme not in ("http", "https"):
        return "it must start with http:// or https://"
    if not parts.hostname:
        return "it names no host"
    return None
