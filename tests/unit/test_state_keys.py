"""The state's key layout and encodings (tables/keys.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamagg.errors import FormatError
from streamagg.tables.keys import (
    decode_expiry_group,
    decode_report_value,
    decode_split_value,
    decode_vector,
    dedup_key,
    encode_expiry_group,
    encode_split_value,
    encode_vector,
    expiry_group_key,
    expiry_group_range,
    expiry_key,
    expiry_range,
    parse_expiry_key,
    report_bucket_prefix,
    report_expiry_range,
    report_key,
)

customers = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=128)


@given(st.lists(st.integers(-(10**30), 10**30), min_size=1, max_size=8))
def test_vectors_round_trip_at_any_size(values: list[int]) -> None:
    assert decode_vector(encode_vector(values)) == values


@settings(max_examples=200)
@given(customers, customers, st.text(max_size=40), st.integers(0, 10**7), st.integers(0, 10**7))
def test_a_bucket_prefix_holds_exactly_its_customers_groups(
    customer: str, other: str, group: str, bucket: int, other_bucket: int
) -> None:
    prefix = report_bucket_prefix("dtmf", "d", bucket, customer)
    assert report_key("dtmf", "d", bucket, customer, group).startswith(prefix)
    if (other, other_bucket) != (customer, bucket):
        assert not report_key("dtmf", "d", other_bucket, other, group).startswith(prefix)


@given(st.integers(0, 10**7), st.integers(0, 10**7), customers, st.text(max_size=10))
def test_report_expiry_range_holds_the_earlier_buckets_only(
    bucket: int, first_kept: int, customer: str, group: str
) -> None:
    low, high = report_expiry_range("tech-prefix", "h", first_kept)
    key = report_key("tech-prefix", "h", bucket, customer, group)
    assert (low <= key < high) == (bucket < first_kept)
    other_grain = report_key("tech-prefix", "m", bucket, customer, group)
    assert not low <= other_grain < high


# Message times in ms have 13 digits until the year 2286: the keys' fixed width.
MS = st.integers(0, 10**13 - 1)


@given(MS, MS, customers, st.text(max_size=10))
def test_expiry_range_holds_the_ids_accepted_earlier_only(
    accepted_ms: int, first_kept_ms: int, customer: str, callid: str
) -> None:
    low, high = expiry_range(first_kept_ms)
    key = expiry_key(accepted_ms, customer, callid)
    assert (low <= key < high) == (accepted_ms < first_kept_ms)
    assert parse_expiry_key(key) == (accepted_ms, customer, callid)
    assert not low <= dedup_key(customer, callid) < high
    assert not low <= report_key("dtmf", "d", 1, customer, callid) < high


@given(st.lists(st.tuples(MS, customers, st.text(max_size=10)), min_size=1, max_size=5), MS)
def test_an_expiry_group_is_in_the_range_exactly_when_its_newest_id_is_expired(
    entries: list[tuple[int, str, str]], first_kept_ms: int
) -> None:
    low, high = expiry_group_range(first_kept_ms)
    key = expiry_group_key(entries)
    newest = max(ms for ms, _, _ in entries)
    assert (low <= key < high) == (newest < first_kept_ms)
    assert decode_expiry_group(encode_expiry_group(entries)) == entries
    assert not low <= dedup_key(entries[0][1], entries[0][2]) < high


def test_a_report_value_written_before_a_field_was_appended_reads_it_as_zero() -> None:
    fields = ("attempts", "answered", "answered_micros", "effective")
    assert decode_report_value(encode_vector([5, 3, 90]), "toy", fields) == [5, 3, 90, 0]
    assert decode_report_value(encode_vector([5, 3, 90, 4]), "toy", fields) == [5, 3, 90, 4]


def test_a_report_value_with_unknown_fields_is_refused_naming_both_widths() -> None:
    with pytest.raises(FormatError, match=r"report toy has 3 fields; this streamagg knows 2"):
        decode_report_value(encode_vector([1, 2, 3]), "toy", ("a", "b"))


quarter_vectors = st.lists(st.integers(0, 2**70), min_size=2, max_size=2)


@given(st.lists(st.one_of(st.none(), quarter_vectors), min_size=4, max_size=4))
def test_split_values_round_trip(parts: list[list[int] | None]) -> None:
    if all(part is None for part in parts):
        return  # (the fold never writes a value without a call)
    assert decode_split_value(encode_split_value(parts), "toy", ("a", "b")) == parts


def test_an_hour_value_of_format_1_reads_as_its_first_quarter() -> None:
    """Format 1 kept one vector per hour: the whole hour stays exact; :30/:45 zones see it at
    the hour's start (docs/operations.md)."""
    assert decode_split_value(b"5,3", "toy", ("a", "b", "c")) == [[5, 3, 0], None, None, None]
    assert decode_split_value(b"1:5,3;3:1,1", "toy", ("a", "b")) == [None, [5, 3], None, [1, 1]]
