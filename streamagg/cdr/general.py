"""The general road of decode_cdr: any message, any spelling the contract allows.

It alone decides rejections and their reasons (one line naming the field); the typical road
(typical.py) hands it every message it is unsure of.
"""

from __future__ import annotations

import math
import re
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from functools import lru_cache

from streamagg.cdr.json_text import float_places, parse_message
from streamagg.cdr.model import (
    CONTROL_CHARACTERS,
    ID_MAX_CHARS,
    MAX_DURATION,
    MAX_MESSAGE_BYTES,
    MAX_PDD_MS,
    NO_PDD,
    NO_SIP_CODE,
    Cdr,
    Rejection,
    TimePolicy,
)
from streamagg.errors import InvalidCdr
from streamagg.numbers import nanp_number, normalise_number

MAX_AMOUNT = Decimal(10) ** 9  # keeps sums of micro-units far inside 64 bits
_MAX_AMOUNT_INT = 10**9
MAX_MICROS = _MAX_AMOUNT_INT * 1_000_000  # the largest amount, in micro-units
_MICRO = Decimal("0.000001")

DT_PATTERN = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(Z|[+-][0-9]{2}(?::?[0-9]{2})?)?"
)
_EPOCH = date(1970, 1, 1)
_PLAIN_AMOUNT = re.compile(r"([0-9]{1,10})(?:\.([0-9]{1,6}))?")
_CONTROL = CONTROL_CHARACTERS
# A decimal string as JSON users write it, in ASCII: spaces around, a sign, digits, a point,
# an exponent (and the spellings of infinity and NaN, refused further on as not finite).
_DECIMAL_STRING = re.compile(
    r"\s*[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*|\s*[+-]?(?i:s?nan|inf(?:inity)?)\s*",
    re.ASCII,
)


def decode_general(raw: bytes, now: float, policy: TimePolicy) -> Cdr | Rejection:
    """The general road: any message, any spelling the contract allows; never raises."""
    try:
        return _decode(raw, now, policy)
    except RecursionError:
        return Rejection("message: JSON nested too deeply")
    except Exception as exc:  # a bug must cost one message, never the stream
        return Rejection(f"message: cannot be decoded ({type(exc).__name__}: {_excerpt(str(exc))})")


def _decode(raw: bytes, now: float, policy: TimePolicy) -> Cdr | Rejection:
    if len(raw) > MAX_MESSAGE_BYTES:
        return Rejection(f"message: larger than 64 KiB ({len(raw)} bytes)")
    try:
        obj = parse_message(raw)
    except ValueError as exc:  # (orjson's JSONDecodeError and UnicodeDecodeError included)
        return Rejection(f"message: not valid UTF-8 JSON ({_first_line(str(exc))})")
    if not isinstance(obj, dict):
        return Rejection(f"message: not a JSON object but {_json_type(obj)}")
    try:
        return _decode_fields(obj, now, policy)
    except InvalidCdr as exc:
        return Rejection(str(exc))


def _decode_fields(obj: dict[str, object], now: float, policy: TimePolicy) -> Cdr:
    callid = obj.get("callid")
    if callid is None:
        raise InvalidCdr("callid: required")
    if not isinstance(callid, str) or not 1 <= len(callid) <= 256:
        raise InvalidCdr("callid: must be a string of 1 to 256 characters")
    if _CONTROL.search(callid):
        raise InvalidCdr("callid: must not contain control characters")
    start = parse_dt(obj.get("dt"))
    _check_time(start, now, policy)
    customer_id = _identifier("customer_id", obj.get("customer_id"), required=True)
    provider_id = _identifier("provider_id", obj.get("provider_id"), required=False)
    tech_prefix = _optional_str(obj, "tech_prefix")
    if len(tech_prefix) > 32:
        raise InvalidCdr("tech_prefix: longer than 32 characters")
    if _CONTROL.search(tech_prefix):
        raise InvalidCdr("tech_prefix: must not contain control characters")
    duration, talked = _duration(obj.get("duration"))
    sip_code = _sip_code(obj.get("sip_code"))
    answered = sip_code == 200 if sip_code is not None else talked
    return Cdr(
        callid=callid,
        customer_id=customer_id,
        start=start,
        provider_id=provider_id,
        customer_charge=_amount("customer_charge", obj.get("customer_charge")),
        provider_charge=_amount("provider_charge", obj.get("provider_charge")),
        tech_prefix=tech_prefix,
        duration=duration,
        answered=answered,
        has_dtmf=bool(_optional_str(obj, "dtmf")),
        nanp_number=nanp_number(_optional_str(obj, "dest_number"), tech_prefix),
        cli=normalise_number(_optional_str(obj, "dest_cli")),
        sip_code=NO_SIP_CODE if sip_code is None else sip_code,
        pdd_ms=_pdd_ms(obj.get("pdd_ms")),
    )


def parse_dt(value: object) -> int:
    """Call start as epoch seconds from any spelling SPEC §1 allows."""
    if value is None:
        raise InvalidCdr("dt: required")
    if isinstance(value, bool):
        raise InvalidCdr("dt: must be an ISO-8601 string or epoch seconds, not a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal):
        if not math.isfinite(value):
            raise InvalidCdr("dt: epoch seconds must be finite")
        return math.floor(value)
    if not isinstance(value, str):
        raise InvalidCdr(
            f"dt: must be an ISO-8601 string or epoch seconds, not {_json_type(value)}"
        )
    match = DT_PATTERN.fullmatch(value.strip())
    if match is None:
        raise InvalidCdr(f"dt: unparseable time {_excerpt(value)}")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    if hour > 23 or minute > 59 or second > 59:
        raise InvalidCdr(f"dt: no such time of day in {_excerpt(value)}")
    try:
        epoch_day = _epoch_day(year, month, day)
    except ValueError as exc:
        raise InvalidCdr(f"dt: {exc} in {_excerpt(value)}") from None
    return epoch_day * 86400 + hour * 3600 + minute * 60 + second - zone_offset(match.group(8))


@lru_cache(maxsize=8192)
def _epoch_day(year: int, month: int, day: int) -> int:
    return (date(year, month, day) - _EPOCH).days


def zone_offset(spelling: str | None) -> int:
    """Seconds east of UTC of a zone spelling."""
    if spelling is None or spelling == "Z":
        return 0
    sign = -1 if spelling[0] == "-" else 1
    digits = spelling[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        raise InvalidCdr(f"dt: bad UTC offset {spelling}")
    return sign * (hours * 3600 + minutes * 60)


def _check_time(start: int, now: float, policy: TimePolicy) -> None:
    if start < now - policy.retention_days * 86400:
        raise InvalidCdr(f"dt: older than the retention of {policy.retention_days} days")
    if start > now + policy.future_tolerance_hours * 3600:
        raise InvalidCdr(f"dt: more than {policy.future_tolerance_hours} hours in the future")


def _identifier(field: str, value: object, *, required: bool) -> str:
    if value is None:
        if required:
            raise InvalidCdr(f"{field}: required")
        return ""
    if isinstance(value, bool):
        raise InvalidCdr(f"{field}: must be a string or an integer, not a boolean")
    if isinstance(value, int):
        value = str(value)
        if len(value) > ID_MAX_CHARS:
            raise InvalidCdr(f"{field}: an integer of more than {ID_MAX_CHARS} digits")
        return value
    if not isinstance(value, str):
        raise InvalidCdr(f"{field}: must be a string or an integer, not {_json_type(value)}")
    if required and not value:
        raise InvalidCdr(f"{field}: must not be empty")
    if len(value) > ID_MAX_CHARS or _CONTROL.search(value):
        raise InvalidCdr(f"{field}: at most {ID_MAX_CHARS} characters, no control characters")
    return value


def _optional_str(obj: dict[str, object], field: str) -> str:
    value = obj.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidCdr(f"{field}: must be a string, not {_json_type(value)}")
    return value


def _amount(field: str, value: object) -> int:
    if value is None:
        return 0
    fast = fast_micros(value)
    if fast is not None:
        return fast
    if isinstance(value, bool):
        raise InvalidCdr(f"{field}: must be a number or a decimal string, not a boolean")
    if isinstance(value, int):
        exact = Decimal(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidCdr(f"{field}: must be finite")
        exact = Decimal(repr(value))
    elif isinstance(value, Decimal):
        exact = value
    elif isinstance(value, str):
        # ASCII digits only: Decimal would also take "١٢", "1_000" and surrounding spaces.
        if not _DECIMAL_STRING.fullmatch(value):
            raise InvalidCdr(f"{field}: not a decimal number: {_excerpt(value)}")
        try:
            exact = Decimal(value)
        except InvalidOperation:
            raise InvalidCdr(f"{field}: not a decimal number: {_excerpt(value)}") from None
        if not exact.is_finite():
            raise InvalidCdr(f"{field}: must be finite")
    else:
        raise InvalidCdr(f"{field}: must be a number or a decimal string, not {_json_type(value)}")
    if exact < 0:
        raise InvalidCdr(f"{field}: must not be negative")
    if exact > MAX_AMOUNT:
        raise InvalidCdr(f"{field}: larger than {MAX_AMOUNT:,}")
    return to_micros(exact)


def fast_micros(value: object) -> int | None:
    """Micro-units of what softswitches usually send, or None for the exact Decimal road."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value * 1_000_000 if 0 <= value <= _MAX_AMOUNT_INT else None
    if isinstance(value, float):
        if 0 <= value <= _MAX_AMOUNT_INT and float_places(value) <= 6:
            # At most 6 decimals and 10^9: value * 10^6 is within half a unit of the integer.
            return round(value * 1_000_000)
        return None
    if isinstance(value, str):
        plain = _PLAIN_AMOUNT.fullmatch(value)
        if plain is not None:
            micros = int(plain.group(1)) * 1_000_000 + int((plain.group(2) or "").ljust(6, "0"))
            return micros if micros <= MAX_MICROS else None
    return None


def _duration(value: object) -> tuple[int, bool]:
    """Billed micro-seconds, and whether the call talked at all (duration > 0, unrounded)."""
    if value is None:
        return 0, False
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise InvalidCdr(f"duration: must be a number of seconds, not {_json_type(value)}")
    if isinstance(value, float | Decimal) and not math.isfinite(value):
        raise InvalidCdr("duration: must be finite")
    if not 0 <= value <= MAX_DURATION:
        raise InvalidCdr(f"duration: must be between 0 and {MAX_DURATION} seconds")
    exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    return to_micros(exact), value > 0


def _sip_code(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidCdr(f"sip_code: must be an integer, not {_json_type(value)}")
    if not 100 <= value <= 699:
        raise InvalidCdr(f"sip_code: {value} is outside 100-699")
    return value


def _pdd_ms(value: object) -> int:
    if value is None:
        return NO_PDD
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidCdr(f"pdd_ms: must be an integer of milliseconds, not {_json_type(value)}")
    if not 0 <= value <= MAX_PDD_MS:
        raise InvalidCdr(f"pdd_ms: {value} is outside 0-{MAX_PDD_MS}")
    return value


def to_micros(exact: Decimal) -> int:
    """Round half-even to 6 places and return the integer count of millionths."""
    return int(exact.quantize(_MICRO, rounding=ROUND_HALF_EVEN).scaleb(6))


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    if value is None:
        return "null"
    return "a number" if isinstance(value, int | float | Decimal) else type(value).__name__


def _excerpt(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "…")


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else "empty"
