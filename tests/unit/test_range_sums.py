"""sum_groups: a query's stored values, summed all at once, equal the sum of the vectors that were
stored, for every form a value can take (reports/range_sums.py).

The expected sums come from the generated integers, not from decoding: a value is written by
the state's own encoders (or spelled as an older version or a hand may have written it), and
what it must add is the vector it was made from.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamagg.errors import FormatError
from streamagg.reports.range_sums import sum_groups
from streamagg.tables.keys import (
    decode_report_value,
    decode_split_value,
    encode_split_value,
    encode_vector,
)
from streamagg.tables.rollup import hour_total

FIELDS = ("charge", "cost", "calls")
WIDTH = len(FIELDS)
# Sums of micro-units pass 64 bits; JSON readers that stop there must not be used silently.
integers = st.one_of(
    st.integers(-1_000, 1_000_000),
    st.integers(-(2**70), 2**70),
    st.sampled_from([2**63 - 1, 2**63, 2**64, -(2**63), -(2**63) - 1]),
)
vectors = st.lists(integers, min_size=WIDTH, max_size=WIDTH)


def _spelled(vector: list[int], spelling: str) -> bytes:
    """A vector as ASCII decimals: as the state writes it, or as int() also reads it."""
    if spelling == "plain":
        return encode_vector(vector)
    if spelling == "zeros":  # (leading zeros: no JSON reader takes them)
        return b",".join(b"%s%03d" % (b"-" if v < 0 else b"", abs(v)) for v in vector)
    return b",".join(b"+%d" % v if v >= 0 else b"%d" % v for v in vector)  # (explicit signs)


def _padded(vector: list[int], width: int = WIDTH) -> list[int]:
    return vector + [0] * (width - len(vector))


def _added(vectors_: list[list[int]], width: int = WIDTH) -> list[int]:
    return [sum(column) for column in zip(*(_padded(v, width) for v in vectors_), strict=True)]


@given(st.sampled_from([("calls",), FIELDS]), st.data())
def test_values_of_whole_buckets_add_to_the_vectors_stored(
    fields: tuple[str, ...], data: st.DataObject
) -> None:
    """Each value was written by this version (its width), an older one (fewer fields, read
    as 0), or spelled as int() reads it; a group holds several buckets' values."""
    width = len(fields)
    written = st.lists(integers, min_size=width, max_size=width)
    older = st.lists(integers, min_size=1, max_size=width)
    stored_vector = st.tuples(
        st.one_of(written, written, older),
        st.sampled_from(["plain", "plain", "plain", "plain", "zeros", "signs"]),
    )
    groups = data.draw(
        st.dictionaries(
            st.sampled_from(["201200", "2012001", "646555", ""]),
            st.lists(stored_vector, min_size=1, max_size=6),
            max_size=4,
        )
    )
    stored = {g.encode(): [_spelled(v, how) for v, how in values] for g, values in groups.items()}
    expected = {g: _added([v for v, _ in values], width) for g, values in groups.items()}
    assert sum_groups(stored, "rate-center", fields, split=False) == expected


quarters = st.dictionaries(st.integers(0, 3), vectors, min_size=1, max_size=4)


@given(
    st.dictionaries(
        st.sampled_from(["carrier-1\x1f123#\x1f200", "carrier-2\x1f\x1f", "x"]),
        st.lists(st.tuples(quarters, st.booleans()), min_size=1, max_size=5),
        max_size=3,
    )
)
def test_values_of_whole_hours_add_every_quarter_stored(
    groups: dict[str, list[tuple[dict[int, list[int]], bool]]],
) -> None:
    """An hour's value holds a vector per quarter with calls; format 1 (an older version's)
    holds the whole hour in one vector."""
    stored: dict[bytes, list[bytes]] = {}
    expected = {}
    for group, hours in groups.items():
        stored[group.encode()] = [
            encode_vector(_added(list(by_quarter.values())))
            if format_1
            else encode_split_value([by_quarter.get(q) for q in range(4)])
            for by_quarter, format_1 in hours
        ]
        expected[group] = _added([v for by_quarter, _ in hours for v in by_quarter.values()])
    assert sum_groups(stored, "routes", FIELDS, split=True) == expected


@pytest.mark.parametrize("split", [False, True])
def test_a_value_of_a_newer_version_is_refused_even_beside_an_older_one(split: bool) -> None:
    """Two values of other widths whose numbers add up to two vectors of this version's
    width must not be summed as such: the wider one was written by a newer version."""
    newer, older_ = b"1,2,3,4", b"5,6"
    if split:
        newer, older_ = b"0:" + newer, b"1:" + older_
    with pytest.raises(FormatError, match="newer version"):
        sum_groups({b"g": [newer, older_]}, "rate-center", FIELDS, split=split)


def _each(values: list[bytes], fields: tuple[str, ...], split: bool) -> object:
    """What decoding each value alone gives: the sum, or the error's type and text."""
    try:
        if split:
            hours = [hour_total(decode_split_value(value, "r", fields)) for value in values]
            vectors = [total for total in hours if total is not None]
        else:
            vectors = [decode_report_value(value, "r", fields) for value in values]
    except Exception as exc:  # (the decoders' own errors: ValueError, FormatError, IndexError)
        return type(exc), str(exc)
    return [sum(column) for column in zip(*vectors, strict=True)]


def _together(values: list[bytes], fields: tuple[str, ...], split: bool) -> object:
    try:
        return sum_groups({b"g": values}, "r", fields, split=split)["g"]
    except Exception as exc:
        return type(exc), str(exc)


@pytest.mark.parametrize(
    ("values", "fields", "split"),
    [
        # values no encoder writes: each must fail or add up as decoding it alone does
        ([b"1,2,x", b"1,2,3"], FIELDS, False),
        ([b"1,2,3", b"1,2,"], FIELDS, False),
        ([b"1.5,2,3"], FIELDS, False),
        ([b"1e3,2,3"], FIELDS, False),
        ([b"[1],2,3", b"1,2,3"], FIELDS, False),
        ([b""], ("calls",), False),  # (a blank vector of one field: JSON reads it as [])
        ([b" "], ("calls",), False),
        ([b"0:"], ("calls",), True),
        ([b"1:1,2,3;1:4,5,6"], FIELDS, True),  # (a quarter twice: the last one is read)
        ([b"2:1,2,3;0:4,5,6"], FIELDS, True),  # (quarters out of order)
        ([b"7:1,2,3"], FIELDS, True),  # (no such quarter)
        ([b"::1,2,3"], FIELDS, True),
        ([b"0:1,2,3;"], FIELDS, True),
        ([b"0:1,2,3", b"4,5,6"], FIELDS, True),  # (format 2 beside format 1)
        ([b"0:1,2;1:3,4,5"], FIELDS, True),  # (an older width beside this one, in one hour)
        ([b"0: 1,2,3\n"], FIELDS, True),  # (whitespace: both readers take it)
        ([b"1,2,3;4,5,6"], FIELDS, False),  # (a split value where a whole one belongs)
    ],
)
def test_a_value_no_encoder_writes_reads_as_it_does_alone(
    values: list[bytes], fields: tuple[str, ...], split: bool
) -> None:
    assert _together(values, fields, split) == _each(values, fields, split)
