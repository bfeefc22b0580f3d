"""`streamagg check`: a probe that exits 0 only when the worker answers /readyz with 200."""

from __future__ import annotations

import argparse
import contextlib
import sys

import httpx

from streamagg.settings import Settings


def run(args: argparse.Namespace, settings: Settings) -> int:
    base = args.url or f"http://127.0.0.1:{settings.web_port}"
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
