"""A CDR message's JSON, read exactly: orjson first (fast, 64-bit numbers), the standard
parser with exact decimals when a number may not be what was written, or lies past a double's
range."""

from __future__ import annotations

import json
import math
import re
import sys
from decimal import Decimal

import orjson

_EXACT_PARSE_RECURSION = 5_000


def parse_message(raw: bytes) -> object:
    """The message's JSON value; ValueError when it is not UTF-8 JSON."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "number is infinity" not in str(exc) or _SURROGATE_ESCAPE.search(raw):
            raise
        # A number past a double's range (1e400) is valid JSON: in an unknown field it is
        # ignored like the field, in a known one that field's check names it.
        return _exact_loads(raw.decode("utf-8"))
    if isinstance(obj, dict) and _needs_exact_numbers(obj):
        # orjson reads numbers as 64-bit values; this message has one that only the exact
        # (slower) parser keeps whole: a long decimal or an integer past 64 bits.
        return _exact_loads(raw)
    return obj


# \ud800-\udfff escapes: orjson refuses lone ones, the standard parser (the retry) would not.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_EXACT_FIELDS = ("customer_charge", "provider_charge", "duration", "customer_id", "provider_id")


def _needs_exact_numbers(obj: dict[str, object]) -> bool:
    """Whether a float may differ from the exact number written: one with more than 6
    decimals (rounding it to 6 can depend on digits the float lost), an id that was an
    integer too long for 64 bits, or a whole `dt` float (the seconds floored: a float reads
    1795615199.9999999 as 1795615200.0, a call in the next hour, day or month)."""
    dt = obj.get("dt")
    if type(dt) is float and dt.is_integer():
        return True
    for name in _EXACT_FIELDS:
        value = obj.get(name)
        if (
            type(value) is float
            and math.isfinite(value)
            and (name.endswith("_id") or float_places(value) > 6)
        ):
            return True
    return False


def float_places(value: float) -> int:
    """Decimal places of a float's shortest spelling (99 for exponent notation)."""
    text = repr(value)
    if "e" in text:
        return 99
    return len(text) - text.index(".") - 1


def _exact_loads(raw: bytes | str) -> object:
    """json.loads with exact decimals. orjson has read the message (or all of it up to a
    number past a double's range), so its nesting is mostly within orjson's 1,024 levels; the
    standard parser recurses once or twice a level, more than Python's default limit allows:
    raise it for this call (decoding is synchronous; deeper still is a RecursionError)."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, _EXACT_PARSE_RECURSION))
    try:
        return json.loads(
            raw, parse_float=Decimal, parse_int=_exact_int, parse_constant=_no_constant
        )
    finally:
        sys.setrecursionlimit(limit)


def _exact_int(text: str) -> int | Decimal:
    """An integer; one past Python's int conversion limit (4,300 digits) as a Decimal, which a
    known field's check refuses by name and an unknown field's never reads."""
    return int(text) if len(text) < 4000 else Decimal(text)


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")
