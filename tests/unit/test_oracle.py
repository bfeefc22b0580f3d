"""Tests of the oracle itself: small hand-made streams, expected rows worked out by hand."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from tests.support.common import without_margin
from tests.support.oracle import ReportOracle
from tests.support.oracle_decode import Rejected, decode

NOW = datetime(2026, 3, 1, tzinfo=UTC)
_ids = itertools.count()


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def cdr(**fields: Any) -> bytes:
    """A valid CDR (customer "42", 2026-02-10 13:00Z) with ``fields`` set on top."""
    obj: dict[str, Any] = {
        "callid": f"call-{next(_ids)}",
        "customer_id": "42",
        "dt": "2026-02-10T13:00:00Z",
    }
    obj.update(fields)
    return json.dumps(obj).encode()


def oracle(messages: list[bytes], **kwargs: Any) -> ReportOracle:
    kwargs.setdefault("now", NOW)
    return ReportOracle(messages, **kwargs)


FEB = (utc(2026, 2, 1), utc(2026, 3, 1))


# -- dtmf ---------------------------------------------------------------------


def test_dtmf_rows_per_hour_and_provider() -> None:
    o = oracle(
        [
            cdr(
                dt="2026-02-10T13:05:00Z",
                provider_id="p1",
                customer_charge=0.5,
                provider_charge=0.25,
                dtmf="123",
            ),
            cdr(
                dt="2026-02-10T13:59:59Z",
                provider_id="p1",
                customer_charge="1.25",
                provider_charge=0.5,
                dtmf="",
            ),
            cdr(dt="2026-02-10T13:30:00Z", customer_charge=2, dtmf=None),  # no provider_id
            cdr(dt="2026-02-10T14:00:00Z", provider_id=7, customer_charge="0.000001", dtmf="#"),
            cdr(dt="2026-02-10T13:10:00Z", provider_id=None, provider_charge="3.5", dtmf="9"),
            cdr(dt="2026-02-10T14:45:00Z", provider_id="10", customer_charge=1),
            cdr(dt="2026-02-10T13:20:00Z", customer_id="43", provider_id="p1", customer_charge=9),
        ]
    )
    rows = o.report("dtmf", "42", utc(2026, 2, 10, 13), utc(2026, 2, 10, 15))
    assert rows == [
        # 13:00, provider "" = the absent one (2.0 + 0) and the null one (0 + 3.5); dtmf "9" only
        {
            "dt": "2026-02-10T13:00:00Z",
            "provider_id": "",
            "customer_charge": "2.000000",
            "provider_charge": "3.500000",
            "dtmf_count": 1,
            "calls": 2,
            "margin": "-1.500000",  # 2.0 - 3.5
            "margin_pct": -75.0,  # -1.5 / 2.0
        },
        # 13:00 p1: 0.5 + 1.25 = 1.75 ; 0.25 + 0.5 = 0.75 ; dtmf "123" counts, "" does not
        {
            "dt": "2026-02-10T13:00:00Z",
            "provider_id": "p1",
            "customer_charge": "1.750000",
            "provider_charge": "0.750000",
            "dtmf_count": 1,
            "calls": 2,
            "margin": "1.000000",
            "margin_pct": 57.14,  # 1.0 / 1.75 = 57.142857…
        },
        # 14:00: "10" sorts before "7" (strings); the integer provider 7 became "7"
        {
            "dt": "2026-02-10T14:00:00Z",
            "provider_id": "10",
            "customer_charge": "1.000000",
            "provider_charge": "0.000000",
            "dtmf_count": 0,
            "calls": 1,
            "margin": "1.000000",
            "margin_pct": 100.0,
        },
        {
            "dt": "2026-02-10T14:00:00Z",
            "provider_id": "7",
            "customer_charge": "0.000001",
            "provider_charge": "0.000000",
            "dtmf_count": 1,
            "calls": 1,
            "margin": "0.000001",
            "margin_pct": 100.0,
        },
    ]
    # half-open range: [13:00, 14:00) leaves the 14:00 calls out
    assert [
        r["dt"] for r in o.report("dtmf", "42", utc(2026, 2, 10, 13), utc(2026, 2, 10, 14))
    ] == ["2026-02-10T13:00:00Z"] * 2
    # customer 43 sees only its own call
    assert o.report("dtmf", "43", *FEB) == [
        {
            "dt": "2026-02-10T13:00:00Z",
            "provider_id": "p1",
            "customer_charge": "9.000000",
            "provider_charge": "0.000000",
            "dtmf_count": 0,
            "calls": 1,
            "margin": "9.000000",
            "margin_pct": 100.0,
        }
    ]
    assert o.report("dtmf", "nobody", *FEB) == []


# -- rate-center --------------------------------------------------------------


def _rc(p7: str) -> tuple[str, str, str] | None:
    if p7.startswith("416"):
        return None  # Toronto: outside the US
    if p7 == "2015551":
        return ("2015551", "NEWARK-X", "NJ")  # a thousands-block with its own rate center
    if p7.startswith("201555"):
        return ("201555", "JERSEYCITY", "NJ")
    return (p7[:6], "UNKNOWN", "UNKNOWN")


def _rate_center_stream() -> list[bytes]:
    calls = [
        ("", "2015550123", "0.1"),  # -> 2015550123, block 2015550
        ("", "+12015550199", "0.2"),  # '+' then the leading 1 dropped -> 2015550199
        ("99#", "99#12015551000", "0.3"),  # tech prefix, then 1 -> 2015551000 (block 2015551)
        ("99#", "+12125550000", "0.4"),  # prefix not present; '+', 1 -> 2125550000
        ("", "1015550000", "5"),  # NPA starts with 1: not NANP
        ("", "2011550000", "5"),  # NXX starts with 1: not NANP
        ("", "201555000", "5"),  # 9 digits
        ("", "+1 201 555 0000", "5"),  # spaces: not NANP
        ("", "442071234567", "5"),  # 12 digits
        (None, None, "5"),  # no dest_number
        ("12", "122015550100", "1.1"),  # tech prefix "12" stripped -> 2015550100
        ("", "4165550000", "5"),  # NANP, but outside the US
        ("", "++12015550100", "5"),  # only one '+' is stripped
        ("", "2015550100\n", "5"),  # trailing newline
        ("", "12015550100", "1.4"),  # -> 2015550100
    ]
    out = []
    for tp, dest, charge in calls:
        fields: dict[str, Any] = {"customer_charge": charge, "provider_charge": "0.01"}
        if tp is not None:
            fields["tech_prefix"] = tp
        if dest is not None:
            fields["dest_number"] = dest
        out.append(cdr(customer_id="1", **fields))
    return out


def test_rate_center_with_reference_data() -> None:
    o = oracle(_rate_center_stream(), rate_centers=_rc)
    assert without_margin(o.report("rate-center", "1", *FEB)) == [
        # calls 1, 2, 11, 15: 0.1 + 0.2 + 1.1 + 1.4 = 2.8 ; 4 x 0.01
        {
            "prefix": "201555",
            "rc": "JERSEYCITY",
            "state": "NJ",
            "customer_charge": "2.800000",
            "provider_charge": "0.040000",
            "call_count": 4,
        },
        # ties on call_count 1 sorted by prefix: "2015551" < "212555"
        {
            "prefix": "2015551",
            "rc": "NEWARK-X",
            "state": "NJ",
            "customer_charge": "0.300000",
            "provider_charge": "0.010000",
            "call_count": 1,
        },
        {
            "prefix": "212555",
            "rc": "UNKNOWN",
            "state": "UNKNOWN",
            "customer_charge": "0.400000",
            "provider_charge": "0.010000",
            "call_count": 1,
        },
    ]


def test_rate_center_default_data_and_replacement() -> None:
    o = oracle(_rate_center_stream())
    # no data: every NANP number is US, prefix = NPA-NXX, rc = state = UNKNOWN
    assert without_margin(o.report("rate-center", "1", *FEB)) == [
        # calls 1, 2, 3, 11, 15: 0.1 + 0.2 + 0.3 + 1.1 + 1.4 = 3.1
        {
            "prefix": "201555",
            "rc": "UNKNOWN",
            "state": "UNKNOWN",
            "customer_charge": "3.100000",
            "provider_charge": "0.050000",
            "call_count": 5,
        },
        {
            "prefix": "212555",
            "rc": "UNKNOWN",
            "state": "UNKNOWN",
            "customer_charge": "0.400000",
            "provider_charge": "0.010000",
            "call_count": 1,
        },
        {
            "prefix": "416555",
            "rc": "UNKNOWN",
            "state": "UNKNOWN",
            "customer_charge": "5.000000",
            "provider_charge": "0.010000",
            "call_count": 1,
        },
    ]
    o.set_rate_centers(_rc)
    assert [r["prefix"] for r in o.report("rate-center", "1", *FEB)] == [
        "201555",
        "2015551",
        "212555",
    ]


# -- did-cli ------------------------------------------------------------------


def test_did_cli_rows() -> None:
    owners = {
        "2015550100": "42",
        "12125550000": "7",  # given unnormalised: compared normalised
        "2125550001": "7",
        "3105550000": "9",
        "3105550001": "9",
    }
    o = oracle(
        [
            cdr(dt="2026-02-10T01:00:00Z", dest_cli="+1 (201) 555-0100"),
            cdr(dt="2026-02-10T02:00:00Z", dest_cli="2015550100"),
            cdr(dt="2026-02-11T00:00:00Z", dest_cli="12125550000"),
            cdr(dt="2026-02-11T23:59:59Z", dest_cli="212-555-0000"),
            cdr(dt="2026-02-12T00:00:00Z", dest_cli="2125550000"),  # outside [10th, 12th)
            cdr(dt="2026-02-10T05:00:00Z", dest_cli="2125550001"),
            cdr(dt="2026-02-10T06:00:00Z", dest_cli="2125550001"),
            cdr(dt="2026-02-10T07:00:00Z", dest_cli="+12125550001"),
            cdr(dt="2026-02-10T08:00:00Z", dest_cli="3105550001"),
            cdr(dt="2026-02-10T08:00:00Z", dest_cli="3105550000"),
            cdr(dt="2026-02-10T09:00:00Z", dest_cli="4045550000"),  # not a DID of the inventory
            cdr(dt="2026-02-10T09:00:00Z", dest_cli="0012015550100"),  # 13 digits: no match
            cdr(dt="2026-02-10T09:00:00Z"),  # no dest_cli
            cdr(dt="2026-02-10T09:00:00Z", customer_id="7", dest_cli="2125550000"),
        ],
        did_owner=owners,
    )
    assert o.report("did-cli", "42", utc(2026, 2, 10), utc(2026, 2, 12)) == [
        # account "42" < "7" < "9"; within "7", count 3 before count 2; within "9", by dest_cli
        {"account": "42", "dest_cli": "2015550100", "count": 2, "foreign": False},
        {"account": "7", "dest_cli": "2125550001", "count": 3, "foreign": True},
        {"account": "7", "dest_cli": "2125550000", "count": 2, "foreign": True},
        {"account": "9", "dest_cli": "3105550000", "count": 1, "foreign": True},
        {"account": "9", "dest_cli": "3105550001", "count": 1, "foreign": True},
    ]
    # the 12th alone: only the 00:00 call
    assert o.report("did-cli", "42", utc(2026, 2, 12), utc(2026, 2, 13)) == [
        {"account": "7", "dest_cli": "2125550000", "count": 1, "foreign": True},
    ]
    # customer 7 presenting its own DID is not foreign
    assert o.report("did-cli", "7", *FEB) == [
        {"account": "7", "dest_cli": "2125550000", "count": 1, "foreign": False},
    ]
    with pytest.raises(ValueError):
        o.report("did-cli", "42", utc(2026, 2, 10, 1), utc(2026, 2, 12))


# -- tech-prefix --------------------------------------------------------------


def test_tech_prefix_ratios_round_half_up() -> None:
    msgs = [cdr(customer_id="5", tech_prefix="A", sip_code=486) for _ in range(31)]
    msgs += [
        cdr(customer_id="5", tech_prefix="A", sip_code=200, duration=30),
        # "": sip 200 (10.0 s), no sip but duration > 0 (10.1 s), sip 486 with 50 s: not answered
        cdr(customer_id="5", sip_code=200, duration=10.0),
        cdr(customer_id="5", tech_prefix=None, duration=10.1),
        cdr(customer_id="5", tech_prefix="", sip_code=486, duration=50),
        # B: no sip and duration 0; sip 404
        cdr(customer_id="5", tech_prefix="B", duration=0),
        cdr(customer_id="5", tech_prefix="B", sip_code=404),
        # C: 200 (1 s), 200 (2 s), 503
        cdr(customer_id="5", tech_prefix="C", sip_code=200, duration=1),
        cdr(customer_id="5", tech_prefix="C", sip_code=200, duration=2),
        cdr(customer_id="5", tech_prefix="C", sip_code=503),
        # D: sip 200 with duration 0 is answered; 200 with 0.3 s
        cdr(customer_id="5", tech_prefix="D", sip_code=200, duration=0),
        cdr(customer_id="5", tech_prefix="D", sip_code=200, duration=0.3),
    ]
    assert oracle(msgs).report("tech-prefix", "5", *FEB) == [
        # 1/32*100 = 3.125 -> 3.13 (half-up; half-even would give 3.12); acd 30/1
        {"tech_prefix": "A", "total": 32, "answered_calls": 1, "asr": 3.13, "acd": 30.0},
        # 2/3*100 = 66.666.. -> 66.67 ; (10.0 + 10.1)/2 = 10.05 -> 10.1 (half-up, exact decimal)
        {"tech_prefix": "", "total": 3, "answered_calls": 2, "asr": 66.67, "acd": 10.1},
        # 2/3 -> 66.67 ; (1 + 2)/2 = 1.5 ; tie on total 3 sorted by tech_prefix "" < "C"
        {"tech_prefix": "C", "total": 3, "answered_calls": 2, "asr": 66.67, "acd": 1.5},
        # none answered: asr 0, acd 0
        {"tech_prefix": "B", "total": 2, "answered_calls": 0, "asr": 0.0, "acd": 0.0},
        # 2/2 = 100 ; (0 + 0.3)/2 = 0.15 -> 0.2
        {"tech_prefix": "D", "total": 2, "answered_calls": 2, "asr": 100.0, "acd": 0.2},
    ]


# -- ingestion rounding -------------------------------------------------------


def test_amounts_rounded_half_even_on_ingest_then_summed_exactly() -> None:
    raw = [
        b'{"callid":"1","customer_id":"r","dt":"2026-02-10T13:00:00Z","customer_charge":0.0000005,'
        b'"provider_charge":0.1}',  # 0.0000005 -> 0.000000 (tie, to even 0)
        b'{"callid":"2","customer_id":"r","dt":"2026-02-10T13:00:00Z","customer_charge":"0.0000015",'
        b'"provider_charge":0.2}',  # -> 0.000002 (tie, to even 2)
        b'{"callid":"3","customer_id":"r","dt":"2026-02-10T13:00:00Z","customer_charge":0.0000025}',
        # -> 0.000002 (tie, to even 2)
        b'{"callid":"4","customer_id":"r","dt":"2026-02-10T13:00:00Z","customer_charge":"1.2345675"}',
        # -> 1.234568 (tie, 7 is odd: up to 8)
        b'{"callid":"5","customer_id":"r","dt":"2026-02-10T13:00:00Z","customer_charge":2.5000005}',
        # -> 2.500000
        b'{"callid":"6","customer_id":"r","dt":"2026-02-10T13:00:00Z","customer_charge":"1e-6"}',
        # -> 0.000001
        b'{"callid":"7","customer_id":"r","dt":"2026-02-10T13:00:00Z","customer_charge":"1e3"}',
        # -> 1000
        b'{"callid":"8","customer_id":"r","dt":"2026-02-10T13:00:00Z","customer_charge":7}',
    ]
    rows = without_margin(oracle(raw).report("dtmf", "r", *FEB))
    # 0 + 0.000002 + 0.000002 + 1.234568 + 2.5 + 0.000001 + 1000 + 7 = 1010.734573
    # (rounding the exact sum 1010.7345735 instead would give ...574)
    # provider: 0.1 + 0.2 = 0.3 exactly (no binary float drift)
    assert rows == [
        {
            "dt": "2026-02-10T13:00:00Z",
            "provider_id": "",
            "customer_charge": "1010.734573",
            "provider_charge": "0.300000",
            "dtmf_count": 0,
            "calls": 8,
        },
    ]


def test_duration_rounded_half_even_and_bounded() -> None:
    def duration_of(text: str) -> Decimal:
        msg = '{"callid":"x","customer_id":"1","dt":"2026-02-01T00:00:00Z","duration":' + text + "}"
        return decode(msg.encode(), oldest=utc(2025, 1, 1), newest=utc(2027, 1, 1)).duration

    assert duration_of("10.0000005") == Decimal("10.000000")  # tie -> even 0
    assert duration_of("10.0000015") == Decimal("10.000002")  # tie -> even 2
    assert duration_of("86400") == Decimal("86400")
    assert duration_of("1e2") == Decimal("100")
    for bad in ("86400.0000001", "-0.5", '"10"', "true"):
        with pytest.raises(Rejected):
            duration_of(bad)


# -- dedup --------------------------------------------------------------------


def test_dedup_within_and_outside_the_horizon() -> None:
    def d(callid: str, dt: str, customer: str = "d", charge: int = 1) -> bytes:
        return cdr(callid=callid, customer_id=customer, dt=dt, customer_charge=charge)

    msgs = [
        d("x", "2026-02-01T00:00:00Z"),  # m1 accepted
        d("x", "2026-02-02T00:00:00Z", charge=100),  # 24 h after m1: duplicate
        d("x", "2026-02-03T00:00:00Z", charge=100),  # exactly 48 h: duplicate (<= horizon)
        d("x", "2026-02-03T00:00:01Z"),  # 48 h + 1 s: accepted (m4)
        d("x", "2026-01-31T00:00:00Z", charge=100),  # 24 h *before* m1: duplicate
        d("x", "2026-02-04T12:00:00Z", charge=100),  # 84 h after m1, < 36 h after m4: duplicate
        d("x", "2026-02-02T12:00:00Z", charge=100),  # 36 h after m1: duplicate
        d("x", "2026-02-01T00:00:00Z", customer="e"),  # other customer: accepted
        d("X", "2026-02-01T00:00:00Z"),  # callid is case-sensitive: accepted
        cdr(callid="y", customer_id="d", dt="not a time"),  # rejected: does not count as seen
        d("y", "2026-02-01T00:00:00Z"),  # accepted
        d("z", "2026-02-01T00:00:00Z"),  # accepted
        d("z", "2026-02-10T00:00:00Z"),  # 9 days later: accepted
        d("z", "2026-02-01T06:00:00Z", charge=100),  # 6 h from the first z: duplicate
    ]
    o = oracle(msgs)
    assert o.accepted_count() == 7  # m1, m4, e/x, X, y, z, z+9d
    assert o.duplicate_count() == 6
    assert o.rejected() == [msgs[9]]
    # duplicates change no report: customer d has 6 calls of charge 1
    assert without_margin(o.report("dtmf", "d", *FEB)) == [
        {
            "dt": "2026-02-01T00:00:00Z",
            "provider_id": "",
            "customer_charge": "4.000000",
            "provider_charge": "0.000000",
            "dtmf_count": 0,
            "calls": 4,
        },  # m1, X, y, z
        {
            "dt": "2026-02-03T00:00:00Z",
            "provider_id": "",
            "customer_charge": "1.000000",
            "provider_charge": "0.000000",
            "dtmf_count": 0,
            "calls": 1,
        },  # m4
        {
            "dt": "2026-02-10T00:00:00Z",
            "provider_id": "",
            "customer_charge": "1.000000",
            "provider_charge": "0.000000",
            "dtmf_count": 0,
            "calls": 1,
        },  # z + 9 days
    ]
    assert o.report("tech-prefix", "d", *FEB)[0]["total"] == 6


def test_dedup_horizon_setting_and_duplicates_do_not_extend_it() -> None:
    msgs = [
        cdr(callid="k", dt="2026-02-01T00:00:00Z"),  # accepted
        cdr(callid="k", dt="2026-02-01T01:00:00Z"),  # 1 h: duplicate
        cdr(callid="k", dt="2026-02-01T01:30:00Z"),  # 1.5 h from the accepted one: accepted
    ]
    o = oracle(msgs, dedup_hours=1)
    assert (o.accepted_count(), o.duplicate_count()) == (2, 1)


# -- dt spellings -------------------------------------------------------------


def test_every_dt_spelling_lands_in_its_utc_hour() -> None:
    # 2025-01-01T00:00:00Z = 1735689600; + 365 days (31 536 000 s) = 2026-01-01 = 1767225600;
    # + 31 days (2 678 400 s) = 2026-02-01 = 1769904000; + 11 h (39 600 s) = 1769943600
    spellings: list[tuple[str, Any]] = [
        ("p01", "2026-02-01T10:15:00Z"),
        ("p02", "2026-02-01T10:15:00"),  # no zone: UTC
        ("p03", "2026-02-01 10:15:00"),
        ("p04", "2026-02-01 10:15:00.123456"),
        ("p05", "2026-02-01T10:15:00.5Z"),
        ("p06", "2026-02-01T12:15:00+02:00"),
        ("p07", "2026-02-01T05:15:00-0500"),
        ("p08", "2026-02-01T01:30:00+03:00"),  # = 2026-01-31T22:30Z
        ("p09", "2026-02-01T10:59:59.9999999Z"),  # 7 fraction digits: still 10:59:59.999999
        ("p10", 1769943600),  # 11:00:00Z
        ("p11", 1769947199.999),  # 11:59:59.999Z
        ("p12", 1769947200.0),  # 12:00:00Z
        ("p13", "2026-02-01T10:15:00+00:00"),
        ("p14", "2026-02-01 23:30:00-01:00"),  # = 2026-02-02T00:30Z
    ]
    o = oracle([cdr(customer_id="t", provider_id=p, dt=dt) for p, dt in spellings])
    assert o.rejected() == []
    got = [(r["dt"], r["provider_id"]) for r in o.report("dtmf", "t", utc(2026, 1, 1), NOW)]
    assert got == [
        ("2026-01-31T22:00:00Z", "p08"),
        *[
            ("2026-02-01T10:00:00Z", p)
            for p in ("p01", "p02", "p03", "p04", "p05", "p06", "p07", "p09", "p13")
        ],
        ("2026-02-01T11:00:00Z", "p10"),
        ("2026-02-01T11:00:00Z", "p11"),
        ("2026-02-01T12:00:00Z", "p12"),
        ("2026-02-02T00:00:00Z", "p14"),
    ]


# -- invalid input ------------------------------------------------------------


def test_invalid_messages_are_rejected_in_order() -> None:
    big_valid = cdr(callid="big", pad="")
    big_valid = cdr(callid="big", pad="a" * (65536 - len(big_valid)))
    assert len(big_valid) == 65536
    valid = [
        big_valid,
        cdr(callid="c" * 256),
        cdr(customer_id="k" * 128),
        cdr(customer_id=42),
        cdr(tech_prefix="t" * 32),
        cdr(provider_id=7, customer_charge="1e3", provider_charge=0, duration=86400),
        cdr(sip_code=100),
        cdr(sip_code=699),
        cdr(
            provider_id=None,
            customer_charge=None,
            dest_number=None,
            dest_cli=None,
            dtmf=None,
            tech_prefix=None,
            duration=None,
            sip_code=None,
            unknown={"x": [1]},
        ),
        cdr(dest_number="anything at all", dest_cli="", dtmf=""),
    ]
    invalid = [
        b"not json",
        b"\xff\xfe{}",  # not UTF-8
        b"[1, 2]",
        b'"a string"',
        b"{}",
        b'{"callid":"a","customer_id":"1","dt":"2026-02-01T00:00:00Z","provider_id":"\\ud800"}',
        b'{"callid":"a","customer_id":"1","dt":"2026-02-01T00:00:00Z","customer_charge":NaN}',
        cdr(callid="big", pad="a" * 65536),  # over 64 KiB
        cdr(callid=""),
        cdr(callid="c" * 257),
        cdr(callid=5),
        cdr(callid=None),
        cdr(dt=None),
        cdr(dt="yesterday"),
        cdr(dt="2026-02-30T00:00:00Z"),
        cdr(dt="2026-02-01T25:00:00Z"),
        cdr(dt="2026-02-01"),
        cdr(dt="1769904000"),  # epoch as a string
        cdr(dt=True),
        cdr(dt="2026-02-01T10:00:00+24:00"),
        cdr(customer_id=None),
        cdr(customer_id=""),
        cdr(customer_id=True),
        cdr(customer_id=1.5),
        cdr(customer_id="k" * 129),
        cdr(customer_id="a\nb"),
        cdr(customer_id=["1"]),
        cdr(provider_id=True),
        cdr(provider_id=1.5),
        cdr(provider_id={"a": 1}),
        cdr(customer_charge=-1),
        cdr(customer_charge="-0.01"),
        cdr(provider_charge="abc"),
        cdr(provider_charge="NaN"),
        cdr(customer_charge="Infinity"),
        cdr(customer_charge=True),
        cdr(customer_charge=[1]),
        cdr(duration="10"),
        cdr(duration=-1),
        cdr(duration=86400.5),
        cdr(duration=True),
        cdr(sip_code=99),
        cdr(sip_code=700),
        cdr(sip_code=200.0),
        cdr(sip_code="200"),
        cdr(sip_code=True),
        cdr(tech_prefix="t" * 33),
        cdr(tech_prefix=5),
        cdr(dest_number=5),
        cdr(dest_cli=12015550100),
        cdr(dtmf=True),
    ]
    msgs = [*valid[:5], *invalid, *valid[5:]]
    o = oracle(msgs)
    assert o.rejected() == invalid
    assert o.accepted_count() == len(valid)
    assert o.duplicate_count() == 0
    assert all(reason for _, reason in o.rejections())


def test_retention_and_future_bounds() -> None:
    now = utc(2026, 3, 1, 12)
    msgs = [
        cdr(dt="2026-02-19T12:00:00Z"),  # exactly 10 days before now: kept
        cdr(dt="2026-02-19T11:59:59Z"),  # 1 s older: rejected
        cdr(dt="2026-03-01T13:00:00Z"),  # exactly 1 h ahead: kept
        cdr(dt="2026-03-01T13:00:01Z"),  # 1 s more: rejected
    ]
    o = oracle(msgs, now=now, retention_days=10, future_tolerance_hours=1)
    assert o.rejected() == [msgs[1], msgs[3]]
    assert o.accepted_count() == 2


# -- API odds and ends --------------------------------------------------------


def test_customers_and_range_handling() -> None:
    o = oracle(
        [
            cdr(customer_id="b"),
            cdr(customer_id=42),
            cdr(customer_id="a"),
            cdr(customer_id="42", dt="2026-02-10T14:00:00Z"),
        ]
    )
    assert o.customers() == ["42", "a", "b"]
    # integer 42 and string "42" are the same customer
    assert o.report("tech-prefix", "42", *FEB)[0]["total"] == 2
    # naive datetimes are UTC; aware ones are converted
    plus2 = timezone(timedelta(hours=2))
    assert o.report(
        "tech-prefix", "42", datetime(2026, 2, 10, 14), datetime(2026, 2, 10, 15)
    ) == o.report(
        "tech-prefix",
        "42",
        datetime(2026, 2, 10, 16, tzinfo=plus2),
        datetime(2026, 2, 10, 17, tzinfo=plus2),
    )
    with pytest.raises(ValueError):
        o.report("tech-prefix", "42", utc(2026, 2, 10, 13, 30), utc(2026, 2, 10, 15))
    with pytest.raises(ValueError):
        o.report("no-such-report", "42", *FEB)


def test_empty_stream() -> None:
    o = oracle([])
    assert o.customers() == []
    assert (o.accepted_count(), o.duplicate_count(), o.rejected()) == (0, 0, [])
    for report in ("dtmf", "rate-center", "did-cli", "tech-prefix"):
        assert o.report(report, "42", *FEB) == []


# -- local time (SPEC §6) -------------------------------------------------------


def test_dtmf_in_new_york_across_the_fall_back_hour() -> None:
    """1 Nov 2026: 01:00-01:59 EDT (05:xxZ) then 01:00-01:59 EST (06:xxZ), worked by hand."""
    o = oracle(
        [cdr(dt=f"2026-11-01T{h:02d}:30:00Z") for h in (3, 5, 6, 7)],
        now=datetime(2026, 11, 29, tzinfo=UTC),
    )
    ny = "America/New_York"
    day = (utc(2026, 11, 1, 4), utc(2026, 11, 2, 5))  # the local day: 25 hours
    hourly = o.report("dtmf", "42", *day, tz=ny)
    assert [(r["dt"], r["calls"]) for r in hourly] == [
        ("2026-11-01T01:00:00-04:00", 1),
        ("2026-11-01T01:00:00-05:00", 1),
        ("2026-11-01T02:00:00-05:00", 1),
    ]  # (03:30Z is 23:30 EDT of 31 October: before the range)
    daily = o.report("dtmf", "42", *day, granularity="day", tz=ny)
    assert [(r["dt"], r["calls"]) for r in daily] == [("2026-11-01T00:00:00-04:00", 3)]
    monthly = o.report("dtmf", "42", utc(2026, 10, 1, 4), utc(2026, 12, 1, 5), "month", ny)
    assert [(r["dt"], r["calls"]) for r in monthly] == [
        ("2026-10-01T00:00:00-04:00", 1),
        ("2026-11-01T00:00:00-04:00", 3),
    ]


def test_ranges_and_hours_in_kathmandu_cut_utc_hours_at_a_quarter() -> None:
    """Asia/Kathmandu is UTC+05:45 all year: its 25 November is 24 Nov 18:15Z to 25 Nov
    18:15Z."""
    o = oracle(
        [
            cdr(dt="2026-11-24T18:14:59Z", tech_prefix="a"),  # 23:59:59 on the 24th
            cdr(dt="2026-11-24T18:15:00Z", tech_prefix="a"),  # 00:00 on the 25th
            cdr(dt="2026-11-25T18:14:00Z", tech_prefix="b"),  # 23:59 on the 25th
            cdr(dt="2026-11-25T18:15:00Z", tech_prefix="b"),  # the 26th
        ],
        now=datetime(2026, 11, 29, tzinfo=UTC),
    )
    day = (
        datetime(2026, 11, 25, tzinfo=timezone(timedelta(hours=5, minutes=45))),
        datetime(2026, 11, 26, tzinfo=timezone(timedelta(hours=5, minutes=45))),
    )
    rows = o.report("tech-prefix", "42", *day, tz="Asia/Kathmandu")
    assert [(r["tech_prefix"], r["total"]) for r in rows] == [("a", 1), ("b", 1)]
    hourly = o.report("dtmf", "42", *day, tz="Asia/Kathmandu")
    assert [r["dt"] for r in hourly] == ["2026-11-25T00:00:00+05:45", "2026-11-25T23:00:00+05:45"]
    with pytest.raises(ValueError, match="not on a whole Asia/Kathmandu hour"):
        o.report("tech-prefix", "42", utc(2026, 11, 25), utc(2026, 11, 26), tz="Asia/Kathmandu")
