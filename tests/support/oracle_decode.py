"""Independent decoder/validator of one CDR message, written from SPEC §1 only.

It is the oracle's second opinion on what a message means: keep it plain.
A message is either rejected (``Rejected`` with a one-line reason naming the
field) or becomes a ``Cdr`` with every field normalised.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from typing import Any

MAX_MESSAGE_BYTES = 65536
SIX_PLACES = Decimal("0.000001")
# DECIMAL(38,6) holds values below 10**32.
MAX_AMOUNT = Decimal(10) ** 32
WIDE = Context(prec=80)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

ISO_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(Z|[+-][0-9]{2}:?[0-9]{2})?"
)
SURROGATE_ESCAPE_RE = re.compile(r"\\u[dD][89abAB]")


class Rejected(Exception):
    """The message must go to the DLQ; str(self) is the reason."""


@dataclass(frozen=True, slots=True)
class Cdr:
    callid: str
    customer_id: str
    provider_id: str
    dt: datetime  # aware, UTC
    customer_charge: Decimal  # 6 places
    provider_charge: Decimal  # 6 places
    duration: Decimal  # seconds, 6 places
    sip_code: int | None
    tech_prefix: str
    dest_number: str | None
    dest_cli: str | None
    dtmf: str | None
    pdd_ms: int | None = None

    @property
    def answered(self) -> bool:
        if self.sip_code is not None:
            return self.sip_code == 200
        return self.duration > 0


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _has_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= ch <= "\udfff" for ch in value)
    if isinstance(value, dict):
        return any(_has_surrogate(k) or _has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_surrogate(v) for v in value)
    return False


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    # JSON numbers arrive as int (no fraction/exponent) or Decimal (parse_float=Decimal).
    return _is_int(value) or isinstance(value, Decimal)


def _six_places(value: Decimal) -> Decimal:
    return value.quantize(SIX_PLACES, rounding=ROUND_HALF_EVEN, context=WIDE)


def _amount(obj: dict[str, Any], field: str) -> Decimal:
    raw = obj.get(field)
    if raw is None:
        return Decimal("0.000000")
    if _is_number(raw):
        value = Decimal(raw)
    elif isinstance(raw, str):
        # ASCII only: "١٢" or "1_000" would pass Decimal, not a billing system's checks.
        if not raw.isascii() or "_" in raw:
            raise Rejected(f"{field}: not a decimal string")
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise Rejected(f"{field}: not a decimal string") from None
    else:
        raise Rejected(f"{field}: wrong type")
    if not value.is_finite():
        raise Rejected(f"{field}: not finite")
    if value < 0:
        raise Rejected(f"{field}: negative")
    if value >= MAX_AMOUNT:
        raise Rejected(f"{field}: too large")
    return _six_places(value)


def _opt_str(obj: dict[str, Any], field: str) -> str | None:
    raw = obj.get(field)
    if raw is None or isinstance(raw, str):
        return raw
    raise Rejected(f"{field}: wrong type")


def _customer_id(obj: dict[str, Any]) -> str:
    raw = obj.get("customer_id")
    if raw is None:
        raise Rejected("customer_id: missing")
    if _is_int(raw):
        value = str(raw)
    elif isinstance(raw, str):
        value = raw
    else:
        raise Rejected("customer_id: wrong type")
    if not value or len(value) > 128:
        raise Rejected("customer_id: length")
    if _has_control(value):
        raise Rejected("customer_id: control character")
    return value


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in text)


def _provider_id(obj: dict[str, Any]) -> str:
    raw = obj.get("provider_id")
    if raw is None:
        return ""
    if _is_int(raw):
        return str(raw)
    if isinstance(raw, str):
        return raw
    raise Rejected("provider_id: wrong type")


def _duration(obj: dict[str, Any]) -> Decimal:
    raw = obj.get("duration")
    if raw is None:
        return Decimal("0.000000")
    if not _is_number(raw):
        raise Rejected("duration: wrong type")
    value = Decimal(raw)
    if not value.is_finite() or value < 0 or value > 86400:
        raise Rejected("duration: out of range")
    return _six_places(value)


def _sip_code(obj: dict[str, Any]) -> int | None:
    raw = obj.get("sip_code")
    if raw is None:
        return None
    if not _is_int(raw):
        raise Rejected("sip_code: wrong type")
    if not 100 <= raw <= 699:
        raise Rejected("sip_code: out of range")
    return int(raw)


def _pdd_ms(obj: dict[str, Any]) -> int | None:
    raw = obj.get("pdd_ms")
    if raw is None:
        return None
    if not _is_int(raw):
        raise Rejected("pdd_ms: wrong type")
    if not 0 <= raw <= 300_000:
        raise Rejected("pdd_ms: out of range")
    return int(raw)


def parse_dt(raw: Any) -> datetime:
    """The call start time as an aware UTC datetime (microsecond precision, truncated)."""
    if _is_number(raw):
        seconds = Decimal(raw)
        if not seconds.is_finite() or abs(seconds) > Decimal(10) ** 11:
            raise Rejected("dt: epoch out of range")
        micros = int((seconds * 1_000_000).to_integral_value(rounding=ROUND_FLOOR, context=WIDE))
        try:
            return EPOCH + timedelta(microseconds=micros)
        except OverflowError:
            raise Rejected("dt: epoch out of range") from None
    if not isinstance(raw, str):
        raise Rejected("dt: wrong type")
    m = ISO_RE.fullmatch(raw)
    if m is None:
        raise Rejected("dt: unparseable")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    frac, zone = m.group(7), m.group(8)
    micro = int((frac or "0")[:6].ljust(6, "0"))
    try:
        naive = datetime(year, month, day, hour, minute, second, micro)
    except ValueError:
        raise Rejected("dt: invalid date or time") from None
    offset = timedelta(0)
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        oh, om = int(digits[:2]), int(digits[2:])
        if oh > 23 or om > 59:
            raise Rejected("dt: bad offset")
        offset = sign * timedelta(hours=oh, minutes=om)
    try:
        return (naive - offset).replace(tzinfo=UTC)
    except OverflowError:
        raise Rejected("dt: out of range") from None


def _json_int(text: str) -> int | Decimal:
    # Valid JSON has integers of any length; Python converts at most 4,300 digits to an int.
    # Past that a Decimal: an unknown field's is ignored, a known field's refused as too large.
    return int(text) if len(text) <= 4_300 else Decimal(text)


_JSON = json.JSONDecoder(parse_float=Decimal, parse_int=_json_int, parse_constant=_reject_constant)


def decode(message: bytes, *, oldest: datetime, newest: datetime) -> Cdr:
    """Decode one message or raise ``Rejected``; ``dt`` must lie in [oldest, newest]."""
    if len(message) > MAX_MESSAGE_BYTES:
        raise Rejected("message: over 64 KiB")
    try:
        text = message.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected("message: not UTF-8") from None
    try:
        obj = _JSON.decode(text)
    except ValueError:  # JSONDecodeError, bad constants
        raise Rejected("message: not JSON") from None
    if not isinstance(obj, dict):
        raise Rejected("message: not a JSON object")
    if SURROGATE_ESCAPE_RE.search(text) and _has_surrogate(obj):
        raise Rejected("message: lone UTF-16 surrogate")

    callid = obj.get("callid")
    if callid is None:
        raise Rejected("callid: missing")
    if not isinstance(callid, str):
        raise Rejected("callid: wrong type")
    if not 1 <= len(callid) <= 256:
        raise Rejected("callid: length")
    if _has_control(callid):
        raise Rejected("callid: control character")
    if obj.get("dt") is None:
        raise Rejected("dt: missing")
    dt = parse_dt(obj["dt"])
    if dt < oldest:
        raise Rejected("dt: older than retention")
    if dt > newest:
        raise Rejected("dt: in the future")
    tech_prefix = _opt_str(obj, "tech_prefix") or ""
    if len(tech_prefix) > 32:
        raise Rejected("tech_prefix: longer than 32")
    if _has_control(tech_prefix):
        raise Rejected("tech_prefix: control character")
    return Cdr(
        callid=callid,
        customer_id=_customer_id(obj),
        provider_id=_provider_id(obj),
        dt=dt,
        customer_charge=_amount(obj, "customer_charge"),
        provider_charge=_amount(obj, "provider_charge"),
        duration=_duration(obj),
        sip_code=_sip_code(obj),
        tech_prefix=tech_prefix,
        dest_number=_opt_str(obj, "dest_number"),
        dest_cli=_opt_str(obj, "dest_cli"),
        dtmf=_opt_str(obj, "dtmf"),
        pdd_ms=_pdd_ms(obj),
    )


NANP_RE = re.compile(r"[2-9][0-9]{2}[2-9][0-9]{6}")
NON_DIGITS_RE = re.compile(r"[^0-9]")


def nanp_number(dest_number: str | None, tech_prefix: str) -> str | None:
    """SPEC §2 rate-center rule: the 10 NANP digits of the dialed number, or None."""
    if dest_number is None:
        return None
    number = dest_number
    if tech_prefix and number.startswith(tech_prefix):
        number = number[len(tech_prefix) :]
    if number.startswith("+"):
        number = number[1:]
    if len(number) == 11 and number.startswith("1"):
        number = number[1:]
    return number if NANP_RE.fullmatch(number) else None


def normalise_did(number: str | None) -> str:
    """SPEC §2 did-cli rule: digits only; 11 digits starting with 1 -> the last 10."""
    if number is None:
        return ""
    digits = NON_DIGITS_RE.sub("", number)
    if len(digits) == 11 and digits.startswith("1"):
        digits = digits[1:]
    return digits
