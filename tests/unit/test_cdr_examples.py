"""Worked examples of the CDR contract (SPEC §1), each expected value written out by hand."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
import pytest

from streamagg.cdr import (
    Cdr,
    Rejection,
    TimePolicy,
    decode_cdr,
    nanp_number,
    normalise_number,
    to_micros,
)

NOW = 1_795_613_400  # 2026-11-25T13:30:00Z
T_2026_11_25_12 = 1_795_608_000  # 2026-11-25T12:00:00Z
RETENTION_S = 400 * 86400
FUTURE_S = 24 * 3600


def decode(raw: bytes, policy: TimePolicy | None = None) -> Cdr | Rejection:
    return decode_cdr(raw, now=NOW, policy=policy or TimePolicy())


def cdr_bytes(**fields: Any) -> bytes:
    """A valid minimal CDR (call c-1 of customer "42" at 2026-11-25T12:00:00Z) plus ``fields``;
    a field set to ... is removed."""
    obj: dict[str, Any] = {"callid": "c-1", "dt": "2026-11-25T12:00:00Z", "customer_id": "42"}
    obj.update(fields)
    return orjson.dumps({k: v for k, v in obj.items() if v is not ...})


def accepted(raw: bytes, policy: TimePolicy | None = None) -> Cdr:
    result = decode(raw, policy)
    assert isinstance(result, Cdr), result
    return result


def rejected(raw: bytes, field: str) -> str:
    result = decode(raw)
    assert isinstance(result, Rejection), result
    assert result.reason.startswith(f"{field}:"), result.reason
    assert "\n" not in result.reason and "\r" not in result.reason
    return result.reason


def with_literal(member: str) -> bytes:
    """The minimal CDR with one member written as raw JSON text (for non-standard literals)."""
    return cdr_bytes()[:-1] + b", " + member.encode() + b"}"


# ---------------------------------------------------------------- the whole record


def test_minimal_cdr_takes_every_default() -> None:
    assert accepted(cdr_bytes()) == Cdr(
        callid="c-1",
        customer_id="42",
        start=T_2026_11_25_12,
        provider_id="",
        customer_charge=0,
        provider_charge=0,
        tech_prefix="",
        duration=0,
        answered=False,
        has_dtmf=False,
        nanp_number="",
        cli="",
        did_owner="",
    )


def test_full_cdr_is_normalised_field_by_field() -> None:
    raw = cdr_bytes(
        customer_id=42,
        provider_id=7,
        customer_charge="0.0123456",  # 7 places: 0.012345|6 rounds up
        provider_charge=0.25,
        dest_number="123#+12125551234",
        dest_cli="+1 (646) 555-0100",
        tech_prefix="123#",
        duration=61.5,
        sip_code=200,
        dtmf="1#",
        something_else={"ignored": True},
    )
    assert accepted(raw) == Cdr(
        callid="c-1",
        customer_id="42",
        start=T_2026_11_25_12,
        provider_id="7",
        customer_charge=12346,
        provider_charge=250000,
        tech_prefix="123#",
        duration=61_500_000,
        answered=True,
        has_dtmf=True,
        nanp_number="2125551234",
        cli="6465550100",
        sip_code=200,
    )


def test_null_optional_fields_are_absent() -> None:
    nulls = dict.fromkeys(
        (
            "provider_id",
            "customer_charge",
            "provider_charge",
            "dest_number",
            "dest_cli",
            "tech_prefix",
            "duration",
            "sip_code",
            "dtmf",
        )
    )
    assert accepted(cdr_bytes(**nulls)) == accepted(cdr_bytes())


# ---------------------------------------------------------------- dt


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        ("2026-11-25T12:00:00Z", T_2026_11_25_12),
        ("2026-11-25 12:00:00", T_2026_11_25_12),
        ("2026-11-25T12:00:00", T_2026_11_25_12),
        ("2026-11-25 12:00:00.999999", T_2026_11_25_12),
        ("2026-11-25T12:00:00.5Z", T_2026_11_25_12),
        ("2026-11-25T12:00:00.123456789Z", T_2026_11_25_12),
        ("2026-11-25T14:00:00+02:00", T_2026_11_25_12),
        ("2026-11-25T14:00:00+0200", T_2026_11_25_12),
        ("2026-11-25T14:00:00+02", T_2026_11_25_12),
        ("2026-11-25T06:30:00-05:30", T_2026_11_25_12),
        ("2026-11-25T06:30:00-0530", T_2026_11_25_12),
        ("2026-11-26T11:59:00+23:59", T_2026_11_25_12),
        ("2026-11-24T12:01:00-23:59", T_2026_11_25_12),
        ("2026-11-25T12:00:00+00:00", T_2026_11_25_12),
        ("2026-11-25T12:00:00-00:00", T_2026_11_25_12),
        ("2026-11-25 13:00:00+01:00", T_2026_11_25_12),
        (T_2026_11_25_12, T_2026_11_25_12),
        (T_2026_11_25_12 + 0.999, T_2026_11_25_12),
        (float(T_2026_11_25_12), T_2026_11_25_12),
        ("2026-11-25T12:59:59Z", T_2026_11_25_12 + 3599),
    ],
)
def test_dt_spellings(spelling: object, expected: int) -> None:
    cdr = accepted(cdr_bytes(dt=spelling))
    assert cdr.start == expected
    assert cdr.hour == T_2026_11_25_12 // 3600


def test_dt_new_year_in_an_offset_lands_in_the_old_utc_year() -> None:
    policy = TimePolicy(retention_days=365 * 10, future_tolerance_hours=24 * 365 * 10)
    cdr = accepted(cdr_bytes(dt="2027-01-01T00:30:00+01:00"), policy)
    assert cdr.start == 1_798_759_800  # 2026-12-31T23:30:00Z
    leap = accepted(cdr_bytes(dt="2028-02-29T23:00:00-02:00"), policy)
    assert leap.start == 1_835_485_200  # 2028-03-01T01:00:00Z


@pytest.mark.parametrize(
    "bad",
    [
        "2026-02-29T00:00:00Z",
        "2026-11-31T00:00:00Z",
        "2026-11-25T24:00:00Z",
        "2026-11-25T23:59:60Z",
        "2026-11-25T12:00:00+24:00",
        "2026-11-25T12:00:00+01:60",
        "2026-11-25",
        "25.11.2026 12:00",
        "1795608000",
        "",
        True,
        False,
        [2026, 11, 25],
        {"iso": "2026-11-25T12:00:00Z"},
        None,
        ...,
    ],
)
def test_bad_dt_is_rejected_naming_dt(bad: object) -> None:
    rejected(cdr_bytes(dt=bad), "dt")


@pytest.mark.parametrize(
    ("dt", "ok"),
    [
        (NOW - RETENTION_S, True),
        (NOW - RETENTION_S - 1, False),
        (NOW + FUTURE_S, True),
        (NOW + FUTURE_S + 1, False),
        (0, False),
        (-1, False),
        (10**15, False),
        (1e300, False),
    ],
)
def test_dt_window_is_retention_back_and_tolerance_forward(dt: float, ok: bool) -> None:
    result = decode(cdr_bytes(dt=dt))
    if ok:
        assert isinstance(result, Cdr) and result.start == dt
    else:
        assert isinstance(result, Rejection) and result.reason.startswith("dt:")


def test_dt_window_follows_the_policy() -> None:
    policy = TimePolicy(retention_days=1, future_tolerance_hours=1)
    assert isinstance(decode(cdr_bytes(dt=NOW - 86400), policy), Cdr)
    assert isinstance(decode(cdr_bytes(dt=NOW - 86401), policy), Rejection)
    assert isinstance(decode(cdr_bytes(dt=NOW + 3600), policy), Cdr)
    assert isinstance(decode(cdr_bytes(dt=NOW + 3601), policy), Rejection)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_standard_json_literals_are_rejected(literal: str) -> None:
    for field in ("dt", "customer_charge", "duration"):
        result = decode(with_literal(f'"{field}": {literal}'))
        assert isinstance(result, Rejection)
        assert result.reason.split(":")[0] in (field, "message")


# ---------------------------------------------------------------- money


@pytest.mark.parametrize(
    ("amount", "micros"),
    [
        (0, 0),
        (3, 3_000_000),
        (1.5, 1_500_000),
        (0.1, 100_000),
        ("0.1", 100_000),
        ("12.345", 12_345_000),
        ("12.3456785", 12_345_678),  # tie, 8 is even: stays
        ("12.3456775", 12_345_678),  # tie, 7 is odd: up
        ("12.34567750001", 12_345_678),
        ("12.34567849999", 12_345_678),
        ("0.0000005", 0),
        ("0.0000015", 2),
        ("0.0000025", 2),
        ("0.00000050000001", 1),
        ("1e3", 1_000_000_000),
        ("1.5E-3", 1_500),
        (" 7 ", 7_000_000),
        ("-0", 0),
        ("0E+12", 0),
        (1_000_000_000, 10**15),
        ("1000000000", 10**15),
        ("1000000000.0000000", 10**15),
        ("999999999.9999995", 10**15),  # rounds up to exactly the limit
        (12.3456785, 12_345_678),
    ],
)
def test_amounts_are_rounded_half_even_to_micros(amount: object, micros: int) -> None:
    cdr = accepted(cdr_bytes(customer_charge=amount, provider_charge=amount))
    assert cdr.customer_charge == micros
    assert cdr.provider_charge == micros


@pytest.mark.parametrize(
    "amount",
    [
        "NaN",
        "nan",
        "sNaN",
        "Infinity",
        "-Infinity",
        "inf",
        -1,
        -0.01,
        "-0.000001",
        "-1e-30",
        "1000000000.000001",
        1000000001,
        1e20,
        "1e400",
        "",
        "abc",
        "12,50",
        "0x1F",
        True,
        [1],
        {"amount": 1},
    ],
)
def test_bad_amounts_are_rejected_naming_the_field(amount: object) -> None:
    rejected(cdr_bytes(customer_charge=amount), "customer_charge")
    rejected(cdr_bytes(provider_charge=amount), "provider_charge")


def test_to_micros_rounds_half_even() -> None:
    assert to_micros(Decimal("0.0000025")) == 2
    assert to_micros(Decimal("0.0000035")) == 4
    assert to_micros(Decimal("-0.0000035")) == -4
    assert to_micros(Decimal("123456789.123456")) == 123_456_789_123_456


@pytest.mark.parametrize(
    ("text", "micros"),
    [
        ("689658324.1048575", 689_658_324_104_858),  # tie at the 7th place, 7 odd: up
        ("0.1234565000000000001", 123_457),  # just above a tie: up
    ],
)
def test_money_in_json_numbers_is_exact(text: str, micros: int) -> None:
    raw = with_literal(f'"customer_charge": {text}')
    assert accepted(raw).customer_charge == micros


# ---------------------------------------------------------------- identifiers


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (42, "42"),
        (0, "0"),
        (-7, "-7"),
        (2**63, str(2**63)),
        ("042", "042"),
        ("acme corp", "acme corp"),
        ("x" * 128, "x" * 128),
        ("Zürich\u00a0☎", "Zürich\u00a0☎"),
    ],
)
def test_customer_id_strings_and_integers(value: object, expected: str) -> None:
    assert accepted(cdr_bytes(customer_id=value)).customer_id == expected
    assert accepted(cdr_bytes(provider_id=value)).provider_id == expected


@pytest.mark.parametrize(
    "bad", ["", "x" * 129, "a\x00", "a\x1f", "a\x7f", "\x85", "a\x9fb", True, 4.2, [42], {}]
)
def test_bad_customer_id_is_rejected(bad: object) -> None:
    rejected(cdr_bytes(customer_id=bad), "customer_id")


@pytest.mark.parametrize("bad", ["x" * 129, "a\x00", "\x85", False, 4.2, ["7"]])
def test_bad_provider_id_is_rejected(bad: object) -> None:
    rejected(cdr_bytes(provider_id=bad), "provider_id")


def test_missing_required_fields_are_named() -> None:
    rejected(cdr_bytes(customer_id=...), "customer_id")
    rejected(cdr_bytes(customer_id=None), "customer_id")
    rejected(cdr_bytes(callid=...), "callid")
    rejected(cdr_bytes(dt=...), "dt")
    assert accepted(cdr_bytes(provider_id="")).provider_id == ""


def test_customer_id_integers_of_any_size_become_their_decimal_string() -> None:
    big = 123456789012345678901234567890
    assert accepted(with_literal(f'"provider_id": {big}')).provider_id == str(big)


@pytest.mark.parametrize(("callid", "ok"), [("x", True), ("y" * 256, True), ("y" * 257, False)])
def test_callid_length(callid: str, ok: bool) -> None:
    if ok:
        assert accepted(cdr_bytes(callid=callid)).callid == callid
    else:
        rejected(cdr_bytes(callid=callid), "callid")


@pytest.mark.parametrize("bad", ["", 17, None, ["c"]])
def test_bad_callid(bad: object) -> None:
    rejected(cdr_bytes(callid=bad), "callid")


def test_tech_prefix_at_most_32_chars_and_a_string() -> None:
    assert accepted(cdr_bytes(tech_prefix="9" * 32)).tech_prefix == "9" * 32
    rejected(cdr_bytes(tech_prefix="9" * 33), "tech_prefix")
    rejected(cdr_bytes(tech_prefix=123), "tech_prefix")


# ---------------------------------------------------------------- duration, sip_code, answered


@pytest.mark.parametrize(
    ("duration", "micros"),
    [(0, 0), (1, 1_000_000), (0.5, 500_000), (184.25, 184_250_000), (86400, 86_400_000_000)],
)
def test_duration_in_micro_seconds(duration: float, micros: int) -> None:
    assert accepted(cdr_bytes(duration=duration)).duration == micros


@pytest.mark.parametrize("bad", [-1, -0.001, 86400.001, 86401, "30", True, [30], {"s": 1}])
def test_bad_duration(bad: object) -> None:
    rejected(cdr_bytes(duration=bad), "duration")


@pytest.mark.parametrize(
    ("sip_code", "duration", "answered"),
    [
        (200, 0, True),
        (200, 12, True),
        (486, 30, False),
        (180, 0, False),
        (..., 30, True),
        (None, 30, True),
        (..., 0, False),
        (None, ..., False),
    ],
)
def test_answered(sip_code: object, duration: object, answered: bool) -> None:
    assert accepted(cdr_bytes(sip_code=sip_code, duration=duration)).answered is answered


@pytest.mark.parametrize("bad", [99, 700, 0, 200.0, "200", True, [200]])
def test_bad_sip_code(bad: object) -> None:
    rejected(cdr_bytes(sip_code=bad), "sip_code")


@pytest.mark.parametrize("code", [100, 699])
def test_sip_code_bounds(code: int) -> None:
    assert accepted(cdr_bytes(sip_code=code)).answered is False


@pytest.mark.parametrize(("pdd", "kept"), [(0, 0), (2350, 2350), (300_000, 300_000), (None, -1)])
def test_pdd_ms(pdd: object, kept: int) -> None:
    assert accepted(cdr_bytes(pdd_ms=pdd)).pdd_ms == kept  # -1: the CDR had none


@pytest.mark.parametrize("bad", [-1, 300_001, 2350.0, "2350", True, [1]])
def test_bad_pdd_ms(bad: object) -> None:
    rejected(cdr_bytes(pdd_ms=bad), "pdd_ms")


def test_the_final_sip_code_is_kept_for_the_routes_report() -> None:
    assert accepted(cdr_bytes(sip_code=486)).sip_code == 486
    assert accepted(cdr_bytes(sip_code=None)).sip_code == 0  # 0: the CDR had none


def test_a_positive_duration_below_half_a_micro_second_is_answered() -> None:
    assert accepted(cdr_bytes(duration=0.0000004)).answered is True


# ---------------------------------------------------------------- dtmf, numbers


@pytest.mark.parametrize(("dtmf", "has"), [("", False), ("1", True), ("*#", True), (None, False)])
def test_dtmf(dtmf: object, has: bool) -> None:
    assert accepted(cdr_bytes(dtmf=dtmf)).has_dtmf is has


@pytest.mark.parametrize("field", ["dtmf", "dest_number", "dest_cli"])
def test_string_fields_reject_other_types(field: str) -> None:
    rejected(cdr_bytes(**{field: 12125551234}), field)
    rejected(cdr_bytes(**{field: True}), field)


@pytest.mark.parametrize(
    ("dest", "tech", "nanp"),
    [
        ("2125551234", "", "2125551234"),
        ("12125551234", "", "2125551234"),
        ("+12125551234", "", "2125551234"),
        ("+2125551234", "", "2125551234"),
        ("123#+12125551234", "123#", "2125551234"),
        ("123#12125551234", "123#", "2125551234"),
        ("123#2125551234", "123#", "2125551234"),
        ("12125551234", "1", "2125551234"),  # "1" stripped as tech prefix: 10 digits remain
        ("77*2125551234", "123#", ""),  # another prefix is not stripped
        ("+123#2125551234", "123#", ""),  # the tech prefix comes first
        ("++12125551234", "", ""),
        ("1212555123", "", ""),  # NPA starting with 1
        ("0125551234", "", ""),
        ("2120551234", "", ""),  # NXX starting with 0
        ("2121551234", "", ""),  # NXX starting with 1
        ("22125551234", "", ""),  # 11 digits not starting with 1
        ("112125551234", "", ""),
        ("212555123", "", ""),
        ("212-555-1234", "", ""),
        ("(212) 5551234", "", ""),
        ("２１２５５５１２３４", "", ""),
        ("", "", ""),
        ("4420794601234", "", ""),
    ],
)
def test_nanp_number(dest: str, tech: str, nanp: str) -> None:
    assert nanp_number(dest, tech) == nanp
    assert accepted(cdr_bytes(dest_number=dest, tech_prefix=tech)).nanp_number == nanp


@pytest.mark.parametrize(
    ("cli", "normalised"),
    [
        ("+1 (646) 555-0100", "6465550100"),
        ("16465550100", "6465550100"),
        ("6465550100", "6465550100"),
        ("116465550100", "116465550100"),
        ("26465550100", "26465550100"),
        ("1", "1"),
        ("anonymous", ""),
        ("", ""),
        ("+44 20 7946 0123", "442079460123"),
    ],
)
def test_cli_normalisation(cli: str, normalised: str) -> None:
    assert normalise_number(cli) == normalised
    assert accepted(cdr_bytes(dest_cli=cli)).cli == normalised


# ---------------------------------------------------------------- the message as a whole


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"\xff\xfe{}",
        b'{"callid": "c-1"',
        b"[]",
        b'"a string"',
        b"42",
        b"null",
        b'[{"callid": "c-1"}]',
        b'{"callid": "\xc3\x28"}',  # invalid UTF-8 inside a string
    ],
)
def test_not_an_object_is_a_message_rejection(raw: bytes) -> None:
    result = decode(raw)
    assert isinstance(result, Rejection)
    assert result.reason.startswith("message:")
    assert "\n" not in result.reason


def padded_to(size: int) -> bytes:
    base = cdr_bytes(pad="")
    return cdr_bytes(pad="p" * (size - len(base)))


def test_64_kib_is_the_limit() -> None:
    assert len(padded_to(65536)) == 65536
    assert isinstance(decode(padded_to(65536)), Cdr)
    result = decode(padded_to(65537))
    assert isinstance(result, Rejection) and result.reason.startswith("message:")
    assert "65537" in result.reason


def test_a_field_value_over_64_kib_is_rejected() -> None:
    result = decode(cdr_bytes(dtmf="1" * 70000))
    assert isinstance(result, Rejection) and result.reason.startswith("message:")


def test_reasons_quote_bad_values_on_one_line() -> None:
    reason = rejected(cdr_bytes(dt="2026\n11\r25\u2028x"), "dt")
    assert len(reason.splitlines()) == 1
    reason = rejected(cdr_bytes(customer_charge="1\n2"), "customer_charge")
    assert len(reason.splitlines()) == 1


@pytest.mark.parametrize("depth", [900, 1_000, 5_000, 30_000])
def test_deep_nesting_beside_an_exact_amount_is_a_rejection_not_a_crash(depth: int) -> None:
    """Issue 14: an amount with more than 6 decimals sends the message to the exact parser,
    which raised RecursionError on a field nested ~1,000 levels deep and stopped ingestion."""
    raw = (
        b'{"callid": "a", "dt": 1795608000, "customer_id": "1", "customer_charge": 1.1234567, '
        b'"x": ' + b"[" * depth + b"]" * depth + b"}"
    )
    result = decode(raw)
    if isinstance(result, Cdr):  # shallow enough for both parsers: an ordinary CDR
        assert result.customer_charge == 1_123_457
    else:
        assert result.reason.startswith("message: ")
        assert "nested" in result.reason or "depth" in result.reason


@pytest.mark.parametrize(
    ("field", "spelling", "reason"),
    [
        ("customer_charge", '"١٢٣"', "customer_charge: not a decimal number"),
        ("provider_charge", '"1_000"', "provider_charge: not a decimal number"),
        ("customer_charge", '"\\u20035"', "customer_charge: not a decimal number"),
        ("callid", '"ab\\u0000c"', "callid: must not contain control characters"),
        ("callid", '"a\\u0085"', "callid: must not contain control characters"),
        ("tech_prefix", '"12\\n#"', "tech_prefix: must not contain control characters"),
        ("customer_id", "1" + "0" * 128, "customer_id: an integer of more than 128 digits"),
        ("provider_id", "9" * 200, "provider_id: an integer of more than 128 digits"),
    ],
)
def test_lenient_spellings_found_by_review_are_rejected_by_name(
    field: str, spelling: str, reason: str
) -> None:
    """Issue 14: ASCII digits only in amounts, no control characters in ids and prefixes,
    integer ids within the 128-character limit."""
    fields = {"callid": '"c1"', "dt": "1795608000", "customer_id": '"42"', field: spelling}
    raw = ("{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}").encode()
    result = decode(raw)
    assert isinstance(result, Rejection), result
    assert result.reason.startswith(reason), result.reason


@pytest.mark.parametrize(
    ("written", "start"),
    [
        (b"1795611599.9999999", T_2026_11_25_12 + 3599),  # (a double reads it as 1795611600.0)
        (b"1795611599.99999999999", T_2026_11_25_12 + 3599),
        (b"1795611600.0", T_2026_11_25_12 + 3600),
        (b"1795611600.0000001", T_2026_11_25_12 + 3600),
        (b"1795611599.9999998", T_2026_11_25_12 + 3599),
    ],
)
def test_dt_epoch_seconds_are_floored_as_written_not_as_a_double_rounds_them(
    written: bytes, start: int
) -> None:
    """A call started a tenth of a microsecond before the hour belongs to the hour before
    (and, at the end of a month, to the month before)."""
    raw = b'{"callid": "c-1", "customer_id": "42", "dt": ' + written + b"}"
    assert accepted(raw).start == start


@pytest.mark.parametrize("huge", [b"1e400", b"-1e999", b"1" + b"0" * 5000])
def test_a_number_past_a_doubles_range_in_an_unknown_field_is_ignored_like_the_field(
    huge: bytes,
) -> None:
    """SPEC §1: unknown fields are ignored. orjson refuses the whole message ("number is
    infinity when parsed as double"), which rejected a valid CDR without naming anything."""
    raw = b'{"callid": "c-1", "dt": 1795608000, "customer_id": "42", "switch_load": ' + huge + b"}"
    assert accepted(raw).start == T_2026_11_25_12


@pytest.mark.parametrize(
    ("field", "reason"),
    [("dt", "dt: "), ("duration", "duration: "), ("customer_charge", "customer_charge: ")],
)
def test_a_number_past_a_doubles_range_in_a_known_field_is_rejected_naming_it(
    field: str, reason: str
) -> None:
    fields = {"callid": b'"c-1"', "dt": b"1795608000", "customer_id": b'"42"', field: b"1e400"}
    raw = b"{" + b", ".join(b'"%s": %s' % (k.encode(), v) for k, v in fields.items()) + b"}"
    result = decode(raw)
    assert isinstance(result, Rejection) and result.reason.startswith(reason), result


def test_the_retry_past_a_doubles_range_keeps_refusing_lone_surrogates() -> None:
    raw = b'{"callid": "c\\ud800", "dt": 1795608000, "customer_id": "42", "x": 1e400}'
    result = decode(raw)
    assert isinstance(result, Rejection) and result.reason.startswith("message: ")
