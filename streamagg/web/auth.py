"""API access: bearer tokens checked against the SHA-256 hashes of the tokens file (SPEC §3)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson

from streamagg.errors import AccessDenied

log = logging.getLogger(__name__)
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class Grant:
    customers: frozenset[str]

    def allows(self, customer_id: str) -> bool:
        return "*" in self.customers or customer_id in self.customers


class TokenStore:
    """The tokens file, reloaded when its content changes; tokens are never kept or logged.

    A deleted file revokes every token. A file that cannot be read or parsed keeps the tokens
    of the last good one — refusing every customer's control panel for a typo would be an
    outage — but says so at every check: an error in the log and ``valid`` False (the metric
    `streamagg_tokens_file_valid` and its alert), until the file is fixed.
    """

    def __init__(
        self, path: Path | None, on_validity: Callable[[bool], None] | None = None
    ) -> None:
        self.path = path
        self._grants: dict[str, Grant] = {}
        self._digest: bytes | None = None
        self._on_validity = on_validity or (lambda valid: None)
        self._said_missing = False
        self.valid = True
        self.maybe_reload()

    def maybe_reload(self) -> None:
        if self.path is None:
            return
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            if self._grants or self._digest is not None:
                log.error("tokens file %s deleted: every token is revoked", self.path)
            elif not self._said_missing:  # (once: it is checked every few seconds)
                log.error(
                    "tokens file %s does not exist: every API call is refused (401) until it "
                    "does (STREAMAGG_TOKENS_FILE)",
                    self.path,
                )
            self._said_missing = True
            self._grants, self._digest = {}, None
            self._set_valid(False)
            return
        except OSError as exc:
            log.error(
                "tokens file %s unreadable (%s); still using the %d tokens loaded before",
                self.path,
                exc.strerror,
                len(self._grants),
            )
            self._set_valid(False)
            return
        digest = hashlib.sha256(raw).digest()
        if digest == self._digest:
            return
        try:
            grants = parse_tokens(raw)
        except ValueError as exc:
            log.error(
                "tokens file %s not used (%s); still using the %d tokens loaded before",
                self.path,
                exc,
                len(self._grants),
            )
            self._set_valid(False)
            return
        self._grants, self._digest = grants, digest
        self._said_missing = False
        log.info("tokens file %s loaded: %d tokens", self.path, len(grants))
        self._set_valid(True)

    def _set_valid(self, valid: bool) -> None:
        self.valid = valid
        self._on_validity(valid)

    def authenticate(self, authorization: str | None) -> Grant:
        """The grant of the bearer token in an Authorization header, or AccessDenied (401)."""
        if self.path is None:
            raise AccessDenied(401, "this worker has no tokens file (STREAMAGG_TOKENS_FILE)")
        digest = bearer_token_sha256(authorization or "")
        if digest is None:
            raise AccessDenied(401, "send the header Authorization: Bearer <token>")
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
        if digest.lower() in grants:  # (which grant was meant cannot be told)
            first = next(i for i, known in enumerate(grants) if known == digest.lower())
            raise ValueError(f"tokens[{index}] is the token of tokens[{first}] again")
        grants[digest.lower()] = Grant(frozenset(str(c) for c in customers))
    return grants


def bearer_token_sha256(authorization: str) -> str | None:
    """The SHA-256 (hex) of the bearer token of an Authorization header, None without one.
    A header's bytes that are not UTF-8 reach here as surrogates (aiohttp); they are hashed as
    they came, so such a token is merely unknown (401), never a server error."""
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()
