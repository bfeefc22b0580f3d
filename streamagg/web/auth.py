"""API access: bearer tokens checked against the SHA-256 hashes of the tokens file (SPEC §3)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import orjson

from streamagg.errors import StreamaggError

log = logging.getLogger(__name__)
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


class AccessDenied(StreamaggError, PermissionError):
    """A request may not read a report; status is 401 (who are you) or 403 (not yours)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Grant:
    customers: frozenset[str]

    def allows(self, customer_id: str) -> bool:
        return "*" in self.customers or customer_id in self.customers


class TokenStore:
    """The tokens file, reloaded when it changes; tokens themselves are never kept or logged."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._grants: dict[str, Grant] = {}
        self._stamp: tuple[float, int] | None = None
        self.maybe_reload()

    def maybe_reload(self) -> None:
        if self.path is None:
            return
        try:
            stat = self.path.stat()
        except OSError as exc:
            log.warning(
                "tokens file %s unreadable (%s); keeping %d tokens",
                self.path,
                exc.strerror,
                len(self._grants),
            )
            return
        stamp = (stat.st_mtime, stat.st_size)
        if stamp == self._stamp:
            return
        self._stamp = stamp
        try:
            self._grants = parse_tokens(self.path.read_bytes())
            log.info("tokens file %s loaded: %d tokens", self.path, len(self._grants))
        except (OSError, ValueError) as exc:
            log.warning("tokens file %s not used: %s", self.path, exc)

    def authenticate(self, authorization: str | None) -> Grant:
        """The grant of the bearer token in an Authorization header, or AccessDenied (401)."""
        if self.path is None:
            raise AccessDenied(401, "this worker has no tokens file (STREAMAGG_TOKENS_FILE)")
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AccessDenied(401, "send the header Authorization: Bearer <token>")
        digest = hashlib.sha256(token.encode()).hexdigest()
        grant = None
        for known, candidate in self._grants.items():
            if hmac.compare_digest(known, digest):
                grant = candidate
        if grant is None:
            raise AccessDenied(401, "unknown token")
        return grant

    def authorize(self, authorization: str | None, customer_id: str) -> None:
        """Raise AccessDenied unless the Authorization header grants this customer."""
        check_customer(self.authenticate(authorization), customer_id)


def check_customer(grant: Grant, customer_id: str) -> None:
    if not grant.allows(customer_id):
        raise AccessDenied(403, f"this token may not read customer {customer_id}")


def parse_tokens(raw: bytes) -> dict[str, Grant]:
    """{"tokens": [{"sha256": hex, "customers": [...]}]} → hash → grant; names what is wrong."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    entries = body.get("tokens") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        raise ValueError('expected an object {"tokens": [...]}')
    grants: dict[str, Grant] = {}
    for index, entry in enumerate(entries):
        digest = entry.get("sha256") if isinstance(entry, dict) else None
        customers = entry.get("customers") if isinstance(entry, dict) else None
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
            raise ValueError(f"tokens[{index}].sha256 must be 64 hex digits")
        if not isinstance(customers, list) or not all(
            isinstance(c, str | int) and not isinstance(c, bool) for c in customers
        ):
            raise ValueError(f"tokens[{index}].customers must be a list of customer ids")
        grants[digest.lower()] = Grant(frozenset(str(c) for c in customers))
    return grants
