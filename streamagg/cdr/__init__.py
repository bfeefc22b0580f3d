"""The CDR input contract (SPEC §1): decode one message's bytes into a Cdr or a Rejection.

Two roads, one contract: the typical message (typical.py) is decoded and typed by msgspec in
C; anything else — and every message the typical road is unsure of — takes the general road
(general.py), which alone decides rejections and their reasons.
"""

from __future__ import annotations

from streamagg.cdr.general import MAX_AMOUNT, decode_general, parse_dt, to_micros
from streamagg.cdr.model import (
    DEFAULT_POLICY,
    MAX_DURATION,
    MAX_MESSAGE_BYTES,
    NO_PDD,
    NO_SIP_CODE,
    Cdr,
    Rejection,
    TimePolicy,
)
from streamagg.cdr.typical import decode_typical
from streamagg.numbers import nanp_number, normalise_number

__all__ = [
    "MAX_AMOUNT",
    "MAX_DURATION",
    "MAX_MESSAGE_BYTES",
    "NO_PDD",
    "NO_SIP_CODE",
    "Cdr",
    "Rejection",
    "TimePolicy",
    "decode_cdr",
    "decode_general",
    "decode_typical",
    "nanp_number",
    "normalise_number",
    "parse_dt",
    "to_micros",
]


def decode_cdr(raw: bytes, *, now: float, policy: TimePolicy | None = None) -> Cdr | Rejection:
    """Validate and normalise one message; never raises, whatever the bytes. The typical road
    only ever accepts what the general road accepts, with the same result
    (tests/unit/test_cdr_roads.py)."""
    policy = policy or DEFAULT_POLICY
    try:
        typical = decode_typical(raw, now, policy)
    except Exception:  # (a bug of the fast road: the general road decides)
        typical = None
    return typical if typical is not None else decode_general(raw, now, policy)
