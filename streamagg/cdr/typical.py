"""The typical road of decode_cdr: the usual message shape, decoded and typed by msgspec in C.

Only ever accepts what the general road (general.py) accepts, with the same result; on any
doubt it returns None and the general road decides (tests/unit/test_cdr_roads.py).
"""

from __future__ import annotations

import math

import msgspec

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
    """The message as softswitches usually send it: only contract fields, each of a type the
    contract allows. A message of any other shape fails to decode here (in C, cheaply) and
    takes the general road."""

    callid: str
    dt: str | int | float
    customer_id: str | int
    provider_id: str | int | None = None
    customer_charge: str | int | float | None = None
    provider_charge: str | int | float | None = None
    tech_prefix: str | None = None
    duration: int | float | None = None
    sip_code: int | None = None
    pdd_ms: int | None = None
    dtmf: str | None = None
    dest_number: str | None = None
    dest_cli: str | None = None


_TYPICAL = msgspec.json.Decoder(_Typical)


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
    callid = m.callid
    if not 1 <= len(callid) <= 256 or not callid.isprintable():
        return None
    dt = m.dt
    if type(dt) is str:
        start = _typical_dt(dt)
        if start is None:
            return None
    elif type(dt) is int:
        start = dt
    elif isinstance(dt, float) and math.isfinite(dt) and not dt.is_integer():
        start = math.floor(dt)  # (a whole float may be 59.9999999 rounded up: the general road)
    else:
        return None
    if (
        not now - policy.retention_days * 86400
        <= start
        <= now + policy.future_tolerance_hours * 3600
    ):
        return None
    customer = _typical_id(m.customer_id)
    provider = "" if m.provider_id is None else _typical_id(m.provider_id)
    tech_prefix = m.tech_prefix or ""
    duration = _typical_duration(m.duration)
    customer_charge = 0 if m.customer_charge is None else _typical_micros(m.customer_charge)
    provider_charge = 0 if m.provider_charge is None else _typical_micros(m.provider_charge)
    sip_code = m.sip_code
    pdd_ms = m.pdd_ms
    if (
        not customer
        or provider is None
        or len(tech_prefix) > 32
        or not tech_prefix.isprintable()
        or duration is None
        or customer_charge is None
        or provider_charge is None
        or (sip_code is not None and not 100 <= sip_code <= 699)
        or (pdd_ms is not None and not 0 <= pdd_ms <= MAX_PDD_MS)
    ):
        return None
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
        sip_code=NO_SIP_CODE if sip_code is None else sip_code,
        pdd_ms=NO_PDD if pdd_ms is None else pdd_ms,
    )


def _typical_id(value: str | int) -> str | None:
    """An id of the typical road ("" for an empty string), or None to leave it to the other."""
    text = str(value) if type(value) is int else value
    assert isinstance(text, str)
    # (ASCII here, so isprintable() is "no control characters")
    return text if len(text) <= ID_MAX_CHARS and text.isprintable() else None


def _typical_duration(value: int | float | None) -> int | None:
    """Billed micro-seconds of a duration of at most 6 decimals, or None."""
    if value is None:
        return 0
    if not 0 <= value <= MAX_DURATION:  # (False for NaN too)
        return None
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
_MAX_CACHED = 100_000


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
    the general road's plain pattern, `[0-9]{1,10}(.[0-9]{1,6})?`, without a regex."""
    if type(value) is not str:
        return fast_micros(value)
    whole, dot, fraction = value.partition(".")
    if not (0 < len(whole) <= 10 and whole.isdigit()):
        return None
    micros = int(whole) * 1_000_000
    if dot:
        if not (0 < len(fraction) <= 6 and fraction.isdigit()):
            return None
        micros += int(fraction.ljust(6, "0"))
    return micros if micros <= MAX_MICROS else None
