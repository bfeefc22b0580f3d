"""The typical road of decode_cdr: the usual message shape, decoded and typed by msgspec in C.

Only ever accepts what the general road (general.py) accepts, with the same result; on any
doubt it returns None and the general road decides (tests/unit/test_cdr_roads.py).
"""

from __future__ import annotations

import math
from typing import Annotated

import msgspec
from msgspec import Meta

from streamagg.cdr.general import (
    DT_PATTERN,
    MAX_MICROS,
    fast_micros,
    parse_dt,
    zone_offset,
)
from streamagg.cdr.json_text import float_places
from streamagg.cdr.model import (
    ID_MAX_CHARS,
    MAX_DURATION,
    MAX_MESSAGE_BYTES,
    MAX_PDD_MS,
    NO_PDD,
    NO_SIP_CODE,
    Cdr,
    TimePolicy,
)
from streamagg.errors import InvalidCdr
from streamagg.numbers import nanp_number, normalise_number


class _Typical(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """The message as softswitches usually send it: only contract fields, each of a type and
    within the bounds the contract allows (msgspec checks both, in C). A message of any other
    shape fails to decode here, cheaply, and takes the general road."""

    callid: Annotated[str, Meta(min_length=1, max_length=256)]
    dt: str | int | float
    customer_id: str | int
    provider_id: str | int | None = None
    customer_charge: str | int | float | None = None
    provider_charge: str | int | float | None = None
    tech_prefix: Annotated[str, Meta(max_length=32)] | None = None
    duration: (
        Annotated[int, Meta(ge=0, le=MAX_DURATION)]
        | Annotated[float, Meta(ge=0, le=MAX_DURATION)]
        | None
    ) = None
    sip_code: Annotated[int, Meta(ge=100, le=699)] | None = None
    pdd_ms: Annotated[int, Meta(ge=0, le=MAX_PDD_MS)] | None = None
    dtmf: str | None = None
    dest_number: str | None = None
    dest_cli: str | None = None


_TYPICAL = msgspec.json.Decoder(_Typical)

# Values a stream repeats millions of times (customer and provider ids, zero charges), each
# with what it decoded to. Only valid values are kept; bounded (cleared when full).
_IDS: dict[str | int, str] = {}
_AMOUNTS: dict[str | int | float, int] = {}
_MAX_CACHED = 100_000


def decode_typical(raw: bytes, now: float, policy: TimePolicy) -> Cdr | None:
    """The Cdr of a typical valid message, or None to leave the message to the general road.

    ASCII only and no \\u escapes: what JSON text decodes to is then the same for every
    parser. Every check below is the general road's, or stricter (then None)."""
    if len(raw) > MAX_MESSAGE_BYTES or not raw.isascii() or b"\\u" in raw:
        return None
    try:
        m = _TYPICAL.decode(raw)
    except msgspec.MsgspecError:
        return None
    # JSON text holds no raw control character (msgspec refuses one) and DEL is the only
    # non-printable ASCII it may hold raw: without an escape and a DEL, every string of the
    # message is printable.
    printable = b"\\" not in raw and b"\x7f" not in raw
    callid = m.callid
    tech_prefix = m.tech_prefix or ""
    if not printable and not (callid.isprintable() and tech_prefix.isprintable()):
        return None
    start = _typical_start(m.dt)
    if start is None:
        return None
    if (
        not now - policy.retention_days * 86400
        <= start
        <= now + policy.future_tolerance_hours * 3600
    ):
        return None
    customer = _IDS.get(m.customer_id) or _typical_id(m.customer_id, printable)
    provider_id = m.provider_id
    provider = (
        "" if provider_id is None else _IDS.get(provider_id) or _typical_id(provider_id, printable)
    )
    duration = _typical_duration(m.duration)
    customer_charge = _typical_charge(m.customer_charge)
    provider_charge = _typical_charge(m.provider_charge)
    if (
        not customer
        or provider is None
        or duration is None
        or customer_charge is None
        or provider_charge is None
    ):
        return None
    sip_code = m.sip_code
    pdd_ms = m.pdd_ms
    return Cdr(
        callid,
        customer,
        start,
        provider,
        customer_charge,
        provider_charge,
        tech_prefix,
        duration,
        sip_code == 200 if sip_code is not None else duration > 0,
        bool(m.dtmf),
        nanp_number(m.dest_number or "", tech_prefix),
        normalise_number(m.dest_cli or ""),
        "",
        NO_SIP_CODE if sip_code is None else sip_code,
        NO_PDD if pdd_ms is None else pdd_ms,
    )


def _typical_start(dt: str | int | float) -> int | None:
    """Epoch seconds of a call start, or None to leave the message to the general road."""
    if type(dt) is str:
        return _typical_dt(dt)
    if type(dt) is int:
        return dt
    if isinstance(dt, float) and math.isfinite(dt) and not dt.is_integer():
        return math.floor(dt)  # (a whole float may be 59.9999999 rounded up: the general road)
    return None


def _typical_charge(value: str | int | float | None) -> int | None:
    """Micro-units of a charge (0 without one), or None."""
    if value is None:
        return 0
    micros = _AMOUNTS.get(value, -1)
    return micros if micros >= 0 else _typical_micros(value)


def _typical_id(value: str | int, printable: bool) -> str | None:
    """An id of the typical road ("" for an empty string), or None to leave it to the other.
    ``printable``: the message's strings are known to be printable."""
    text = str(value) if type(value) is int else value
    assert isinstance(text, str)
    # (ASCII here, so isprintable() is "no control characters")
    if len(text) > ID_MAX_CHARS or not (printable or text.isprintable()):
        return None
    if text:
        if len(_IDS) >= _MAX_CACHED:
            _IDS.clear()
        _IDS[value] = text
    return text


def _typical_duration(value: int | float | None) -> int | None:
    """Billed micro-seconds of a duration (0 to MAX_DURATION, checked by msgspec) of at most 6
    decimals, or None."""
    if value is None:
        return 0
    if type(value) is int:
        return value * 1_000_000
    if float_places(value) > 6:
        return None
    # At most 6 decimals and 86,400: value * 10^6 is within half a unit of the integer.
    return round(value * 1_000_000)


# Epoch seconds of the hours and offsets seen in `dt` strings ("2026-11-25T13" → …): a stream
# repeats a few of them millions of times. Only valid spellings are kept; bounded.
_HOURS: dict[str, int] = {}
_OFFSETS: dict[str | None, int] = {None: 0, "Z": 0}


def _typical_dt(text: str) -> int | None:
    """parse_dt of a string, or None (then the general road decides)."""
    match = DT_PATTERN.fullmatch(text)
    if match is None:
        return None
    # The pattern fixes the positions: YYYY-MM-DD?HH:MM:SS, then a fraction and a zone.
    hour = text[:13]
    hour_start = _HOURS.get(hour)
    if hour_start is None:
        try:
            hour_start = parse_dt(hour + ":00:00")
        except InvalidCdr:
            return None
        if len(_HOURS) >= _MAX_CACHED:
            _HOURS.clear()
        _HOURS[hour] = hour_start
    minute, second = int(text[14:16]), int(text[17:19])
    if minute > 59 or second > 59:
        return None
    zone = match.group(8)
    offset = _OFFSETS.get(zone)
    if offset is None:
        try:
            offset = zone_offset(zone)
        except InvalidCdr:
            return None
        if len(_OFFSETS) < _MAX_CACHED:
            _OFFSETS[zone] = offset
    return hour_start + minute * 60 + second - offset


def _typical_micros(value: str | int | float) -> int | None:
    """Micro-units of an amount, or None. A string here is ASCII, where isdigit() means 0-9:
    the general road's plain pattern, `[0-9]{1,10}(.[0-9]{1,6})?`, without a regex. A valid
    amount is kept in _AMOUNTS (a float equal to an int, or to -0.0, has the same micro-units)."""
    if type(value) is not str:
        micros = fast_micros(value)
    else:
        whole, dot, fraction = value.partition(".")
        if not (0 < len(whole) <= 10 and whole.isdigit()):
            return None
        micros = int(whole) * 1_000_000
        if dot:
            if not (0 < len(fraction) <= 6 and fraction.isdigit()):
                return None
            micros += int(fraction.ljust(6, "0"))
        if micros > MAX_MICROS:
            return None
    if micros is not None:
        if len(_AMOUNTS) >= _MAX_CACHED:
            _AMOUNTS.clear()
        _AMOUNTS[value] = micros
    return micros
