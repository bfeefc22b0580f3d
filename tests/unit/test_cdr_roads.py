"""decode_cdr's two roads agree: the typical (msgspec) road never accepts what the general road
rejects, and what it accepts decodes to the very same Cdr.

Messages are drawn from test_cdr_properties' strategies (every valid spelling, every field
mutated the ways the contract forbids), from arbitrary JSON values under contract field names,
and from a corpus of hostile payloads; the generator's stream checks the fast road is taken.
"""

from __future__ import annotations

import re

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamagg.cdr import (
    Cdr,
    Rejection,
    TimePolicy,
    decode_general,
    decode_typical,
    nanp_number,
)
from streamagg.cli.cdrgen import CdrGenerator, GeneratorOptions
from tests.unit.test_cdr_properties import (
    DEFAULT_POLICY,
    FIELDS,
    NOW,
    PROPS,
    WIDE_POLICY,
    json_values,
    message,
    mutation_of,
    valid_fields,
)

HOSTILE = [
    b'{"callid": "a", "dt": 1795613400, "customer_id": "1", "callid": "b"}',
    b'{"callid": "a", "dt": 1795613400, "customer_id": 1' + b"0" * 140 + b"}",
    b'{"callid": "a", "dt": 1795613400, "customer_id": "\\u0031"}',
    b'{"callid": "a\\ud800", "dt": 1795613400, "customer_id": "1"}',
    b'{"callid": "a", "dt": 1795613400, "customer_id": "1", "duration": 1e999}',
    b'{"callid": "a", "dt": 1e999, "customer_id": "1"}',
    b'{"callid": "a", "dt": 1795613400, "customer_id": "1", "customer_charge": 0.1234567}',
    b'{"callid": "a", "dt": 1795613400, "customer_id": "1", "customer_charge": 1e-7}',
    b'{"callid": "a", "dt": 1795613400, "customer_id": "1", "customer_charge": -0.0}',
    b'{"callid": "a", "dt": 1795613400, "customer_id": "1", "duration": 86400.0000001}',
    b'{"callid": "a", "dt": 1795613400, "customer_id": "1", "sip_code": 200.0}',
    b'{"callid": "a", "dt": 1795613400, "customer_id": "1", "sip_code": true}',
    b'{"callid": "a", "dt": 1795613400, "customer_id": 1.0}',
    b'{"callid": "a", "dt": 1795613400, "customer_id": ""}',
    b'{"callid": "a\\u0000", "dt": 1795613400, "customer_id": "1"}',
    b'{"callid": "a\x7f", "dt": 1795613400, "customer_id": "1"}',
    b'{"callid": "a", "dt": 1795613400, "customer_id": "1", "x": 1e999}',
    b'{"callid": "a", "dt": 1795613400, "customer_id": "1", "x": "\xff"}',
    b'\xef\xbb\xbf{"callid": "a", "dt": 1795613400, "customer_id": "1"}',
    b'{"callid": "a", "dt": 1795613400, "customer_id": "1"} ',
    b'{"callid": "a", "dt": 1795613400, "customer_id": "1"}x',
    b'{"callid": "a", "dt": "2026-11-25T13:30:00+24:00", "customer_id": "1"}',
    b'{"callid": "a", "dt": "2026-02-30T13:30:00Z", "customer_id": "1"}',
    b'{"callid": "a", "dt": -1795613400, "customer_id": "1"}',
    b'{"callid": "a", "dt": 1795613400, "customer_id": -0}',
    b'{"callid": "a", "dt": 1795613400, "customer_id": "1", "duration": -0.0}',
    b'{"callid": "a", "dt": 1795613400, "customer_id": "1", "customer_charge": "1e3"}',
    b'{"callid": "a", "dt": 1795613400, "customer_id": "1", "customer_charge": " 1"}',
    # The typical road skips the printable checks of a message without escapes and DEL.
    b'{"callid": "a", "dt": 1795613400, "customer_id": "1", "tech_prefix": "1\x7f"}',
    b'{"callid": "a", "dt": 1795613400, "customer_id": "1\x7f"}',
    b'{"callid": "a", "dt": 1795613400, "customer_id": "1", "provider_id": "\x7f"}',
    b'{"callid": "a", "dt": 1795613400, "customer_id": "a\\tb"}',
    b'{"callid": "a", "dt": 1795613400, "customer_id": "1", "provider_id": "p\\n"}',
    b'{"callid": "a", "dt": 1795613400, "customer_id": "1", "tech_prefix": "\\t"}',
    b'{"callid": "a\\t", "dt": 1795613400, "customer_id": "1"}',
    b'{"callid": "a\\/b", "dt": 1795613400, "customer_id": "1", "tech_prefix": "1\\/"}',
    # ... and keeps the ids and amounts it decoded: equal keys of other types come after.
    b'{"callid": "a", "dt": 1795613400, "customer_id": 7, "customer_charge": 1}',
    b'{"callid": "a", "dt": 1795613400, "customer_id": "7", "customer_charge": 1.0}',
    b'{"callid": "a", "dt": 1795613400, "customer_id": 7.0, "customer_charge": "1"}',
    b'{"callid": "a", "dt": 1795613400, "customer_id": "1", "provider_charge": 0}',
    b'{"callid": "a", "dt": 1795613400, "customer_id": "1", "provider_charge": -0.0}',
    b'{"callid": "a", "dt": 1795613400, "customer_id": "1", "provider_charge": -0}',
    b'{"callid": "a", "dt": 1795613400, "customer_id": "1", "provider_charge": "0.000000"}',
    b'{"callid": "a", "dt": 1795613400, "customer_id": "1", "provider_charge": "0.0000000"}',
    b'{"callid": "a", "dt": 1795613400, "customer_id": "1", "provider_charge": 1e-7}',
]


DT_EDGES = [
    "2026-11-25T13:30:60Z",
    "2026-11-25T13:60:00Z",
    "2026-11-25T24:00:00Z",
    "2026-02-29T00:00:00Z",
    "2024-02-29T00:00:00Z",
    "2026-11-25T13:30:00+24:00",
    "2026-11-25T13:30:00+23:60",
    "2026-11-25T13:30:00-00:00",
    "2026-11-25T13:30:00+0530",
    "2026-11-25T13:30:00-05",
    "2026-11-25 13:30:00.123456789",
    "2026-11-25T13:30:00.Z",
    "2026-11-25t13:30:00z",
    "2026-11-25T13:30:00 ",
    " 2026-11-25T13:30:00",
    "2026-13-25T13:30:00Z",
    "2026-11-31T13:30:00Z",
    "2026-11-25T13:30",
    "2026-11-25",
    "0000-01-01T00:00:00Z",
]
AMOUNT_EDGES = [
    "1.",
    ".5",
    "01234567890",
    "1234567890.1234567",
    "1000000000.000001",
    "1000000000",
    "0.0000000",
    "0",
    "007.10",
    "-1",
    "+1",
    "1e3",
    "1 ",
    "",
    "9999999999.999999",
    "1.000000",
]
HOSTILE += [
    b'{"callid": "a", "dt": 1795613400, "customer_id": "1", "pdd_ms": %s}' % value
    for value in (b"0", b"300000", b"300001", b"-1", b"2350.0", b"null", b'"2350"', b"1e3")
]
HOSTILE += [b'{"callid": "a", "dt": "%s", "customer_id": "1"}' % dt.encode() for dt in DT_EDGES] + [
    b'{"callid": "a", "dt": 1795613400, "customer_id": "1", "customer_charge": "%s"}' % a.encode()
    for a in AMOUNT_EDGES
]


def assert_roads_agree(raw: bytes, policy: TimePolicy = DEFAULT_POLICY) -> None:
    fast = decode_typical(raw, NOW, policy)
    general = decode_general(raw, NOW, policy)
    if fast is not None:
        assert isinstance(general, Cdr), (raw, fast, general)
        assert fast == general, raw


def test_hostile_corpus() -> None:
    for raw in HOSTILE:
        assert_roads_agree(raw)


@PROPS
@given(valid_fields())
def test_valid_messages(fields: dict) -> None:
    assert_roads_agree(message(fields))


@PROPS
@given(st.data())
def test_one_mutated_field(data: st.DataObject) -> None:
    policy = data.draw(st.sampled_from([DEFAULT_POLICY, WIDE_POLICY]))
    fields = data.draw(valid_fields())
    field = data.draw(st.sampled_from(FIELDS))
    fields[field] = data.draw(mutation_of(field, policy))
    assert_roads_agree(message(fields), policy)


@PROPS
@given(valid_fields(), st.sampled_from(FIELDS), json_values)
def test_any_json_value_in_any_field(fields: dict, field: str, value: object) -> None:
    obj = orjson.loads(message(fields))
    obj[field] = value
    assert_roads_agree(orjson.dumps(obj))


@PROPS
@given(st.binary(max_size=200))
def test_arbitrary_bytes(raw: bytes) -> None:
    assert_roads_agree(raw)


@PROPS
@given(
    st.sampled_from(["", "1", "+", "+1", "1#", "#"]),
    st.lists(st.sampled_from("0123456789\u0663\u00b3 "), min_size=9, max_size=11).map("".join),
    st.sampled_from(["", "1#", "+"]),
)
def test_a_nanp_number_is_ten_ascii_digits(head: str, digits: str, tech: str) -> None:
    """nanp_number checks digits without a pattern: it must keep the pattern's meaning (ASCII
    digits only, not other scripts' digits, which str.isdigit() takes)."""
    dest = head + digits
    number = dest[len(tech) :] if tech and dest.startswith(tech) else dest
    number = number.removeprefix("+")
    if len(number) == 11 and number[0] == "1":
        number = number[1:]
    expected = number if re.fullmatch(r"[2-9][0-9]{2}[2-9][0-9]{6}", number) else ""
    assert nanp_number(dest, tech) == expected


def test_the_generators_stream_takes_the_typical_road() -> None:
    """The speed claim of BENCHMARKS.md rests on this: the simulated softswitch's valid
    messages (every dt spelling, string and number amounts and ids) are all typical.

    ``now`` is fixed. With one second between calls every float dt has the fraction of the
    start, and taken from the clock a start within half a millisecond of a whole second made
    them all whole floats, which the typical road leaves to the general one (the next test):
    the test failed about once in a thousand runs."""
    now = 1_796_544_000.25
    options = GeneratorOptions(seed=7, count=3000, start=now - 3600, event_step=1.0)
    for _key, raw in CdrGenerator(options).messages():
        general = decode_general(raw, now, TimePolicy())
        fast = decode_typical(raw, now, TimePolicy())
        if isinstance(general, Rejection):
            assert fast is None
        else:
            assert fast == general, raw


@pytest.mark.parametrize(
    ("dt", "start"),
    [(b"1796544799.0", 1796544799), (b"1796544798.9999999999", 1796544798)],
)
def test_a_dt_written_as_a_whole_float_is_left_to_the_general_road(dt: bytes, start: int) -> None:
    """A float read as whole may be the rounding of a time just before the second (the JSON
    text 1796544798.9999999999 is the float 1796544799.0): the typical road declines it, and
    the general one reads the text exactly."""
    raw = (
        b'{"callid":"a1@sbc","dt":%s,"customer_id":1002,"provider_id":"203",'
        b'"customer_charge":"0.0181","provider_charge":"0.01","dest_number":"3123054201",'
        b'"duration":156,"sip_code":200}'
    ) % dt
    now = 1_796_548_000.0
    assert decode_typical(raw, now, TimePolicy()) is None
    general = decode_general(raw, now, TimePolicy())
    assert isinstance(general, Cdr) and general.start == start
