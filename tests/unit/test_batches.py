"""The internal batch message and customer partitioning (batches.py)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamagg.batches import (
    BATCH_FORMAT,
    FORMAT_HEADER,
    Batch,
    Record,
    customer_partition,
    split_into_batches,
)
from streamagg.cdr import NO_PDD, NO_SIP_CODE, Cdr
from streamagg.errors import FormatError

PROPS = settings(max_examples=150, deadline=None)

# Kafka's own murmur2 test vectors (clients UtilsTest), as signed Java ints.
JAVA_MURMUR2 = {
    "21": -973932308,
    "foobar": -790332482,
    "a-little-bit-long-string": -985981536,
    "a-little-bit-longer-string": -1486304829,
    "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    "abc": 479470107,
}

cdrs = st.builds(
    Cdr,
    callid=st.text(min_size=1, max_size=256),
    customer_id=st.text(min_size=1, max_size=128),
    start=st.integers(min_value=-(2**40), max_value=2**40),
    provider_id=st.text(max_size=20),
    customer_charge=st.integers(min_value=0, max_value=10**15),
    provider_charge=st.integers(min_value=0, max_value=10**15),
    tech_prefix=st.text(max_size=32),
    duration=st.integers(min_value=0, max_value=86_400_000_000),
    answered=st.booleans(),
    has_dtmf=st.booleans(),
    nanp_number=st.sampled_from(["", "2125551234"]),
    cli=st.text(alphabet="0123456789", max_size=15),
    did_owner=st.text(max_size=20),
    sip_code=st.sampled_from([0, 200, 486, 699]),
    pdd_ms=st.integers(min_value=-1, max_value=300_000),
)
records = st.builds(
    Record,
    source_offset=st.integers(min_value=0, max_value=2**62),
    timestamp_ms=st.integers(min_value=0, max_value=2**50),
    cdr=cdrs,
)


@PROPS
@given(st.text(min_size=1, max_size=40), st.lists(records, max_size=8))
def test_batch_round_trip(source: str, rows: list[Record]) -> None:
    batch = Batch(source, rows)
    raw = batch.encode()
    assert isinstance(raw, bytes)
    decoded = Batch.decode(raw)
    assert decoded == batch
    assert decoded.records == rows  # field by field, including booleans and did_owner


def test_empty_batch_round_trip() -> None:
    assert Batch.decode(Batch("cdr-events/3").encode()) == Batch("cdr-events/3", [])


@pytest.mark.parametrize(("key", "java_hash"), sorted(JAVA_MURMUR2.items()))
@pytest.mark.parametrize("partitions", [1, 2, 3, 8, 12, 100])
def test_customer_partition_matches_kafkas_default_partitioner(
    key: str, java_hash: int, partitions: int
) -> None:
    # Java: Utils.toPositive(Utils.murmur2(keyBytes)) % numPartitions
    assert customer_partition(key, partitions) == (java_hash & 0x7FFFFFFF) % partitions


@PROPS
@given(st.text(min_size=1, max_size=128), st.integers(min_value=1, max_value=64))
def test_customer_partition_is_stable_and_in_range(customer: str, partitions: int) -> None:
    partition = customer_partition(customer, partitions)
    assert 0 <= partition < partitions
    assert customer_partition(customer, partitions) == partition


def record(offset: int, customer: str) -> Record:
    cdr = Cdr(f"c{offset}", customer, 0, "", 0, 0, "", 0, False, False, "", "")
    return Record(offset, 1000 + offset, cdr)


@PROPS
@given(
    st.lists(st.sampled_from([str(c) for c in range(12)]), max_size=60),
    st.integers(min_value=1, max_value=7),
    st.integers(min_value=1, max_value=6),
    st.booleans(),
)
def test_split_into_batches_partitions_keeps_order_and_bounds(
    customers: list[str], partitions: int, max_records: int, custom: bool
) -> None:
    source_records = [record(offset, customer) for offset, customer in enumerate(customers)]

    def partition_of(customer: str) -> int:
        return int(customer) % partitions

    kwargs: dict[str, Any] = {"partition_of": partition_of} if custom else {}
    owner = partition_of if custom else (lambda c: customer_partition(c, partitions))
    out = list(
        split_into_batches("cdr-events/5", source_records, partitions, max_records, **kwargs)
    )

    per_partition: dict[int, list[Record]] = defaultdict(list)
    for partition, batch in out:
        assert batch.source == "cdr-events/5"
        assert 1 <= len(batch.records) <= max_records
        assert {owner(r.cdr.customer_id) for r in batch.records} == {partition}
        per_partition[partition].extend(batch.records)
    # every record exactly once, each partition's records in source order
    assert sorted(r.source_offset for rs in per_partition.values() for r in rs) == list(
        range(len(customers))
    )
    for partition, rs in per_partition.items():
        assert rs == [r for r in source_records if owner(r.cdr.customer_id) == partition]
    # only the last batch of a partition may be short
    seen_short: set[int] = set()
    for partition, batch in out:
        assert partition not in seen_short
        if len(batch.records) < max_records:
            seen_short.add(partition)


def test_split_into_batches_example() -> None:
    rs = [record(i, c) for i, c in enumerate(["a", "b", "a", "a", "b", "a"])]
    out = list(split_into_batches("t/0", rs, 2, 2, partition_of={"a": 0, "b": 1}.__getitem__))
    assert [(p, [r.source_offset for r in b.records]) for p, b in out] == [
        (0, [0, 2]),
        (1, [1, 4]),
        (0, [3, 5]),
    ]


def test_a_batch_of_the_previous_format_is_read_field_by_field() -> None:
    """Format 1 (JSON rows) was written by the version before; a worker upgraded while batch
    messages of it are still in the topic reads them."""
    row = [7, 1_795_613_400_123, "call-1", "42", 1_795_613_400, "205", 12_345, 6_789]
    row += ["77*", 60_000_000, 1, 0, "2125551234", "9175550000", "42"]
    raw = orjson.dumps({"src": "cdr-events/3", "r": [row]})
    batch = Batch.decode(raw, [(FORMAT_HEADER, b"1")])
    assert batch.source == "cdr-events/3"
    (record,) = batch.records
    assert (record.source_offset, record.timestamp_ms) == (7, 1_795_613_400_123)
    assert record.cdr == Cdr(
        callid="call-1",
        customer_id="42",
        start=1_795_613_400,
        provider_id="205",
        customer_charge=12_345,
        provider_charge=6_789,
        tech_prefix="77*",
        duration=60_000_000,
        answered=True,
        has_dtmf=False,
        nanp_number="2125551234",
        cli="9175550000",
        did_owner="42",
    )


def test_a_format_2_batch_written_before_sip_codes_and_pdd_were_kept_still_decodes() -> None:
    """Format 2 as the previous version wrote it: CDR arrays of 13 fields, before sip_code and
    pdd_ms were appended as format 3 (with defaults: format 2 decodes as format 3)."""
    old_cdr = ["call-1", "42", 1_795_613_400, "205", 12_345, 6_789, "77*", 60_000_000]
    old_cdr += [True, False, "2125551234", "9175550000", "42"]
    raw = msgspec.msgpack.encode(["cdr-events/3", [[7, 1_795_613_400_123, old_cdr]]])
    (record,) = Batch.decode(raw, [(FORMAT_HEADER, b"2")]).records
    assert record.cdr.sip_code == NO_SIP_CODE
    assert record.cdr.pdd_ms == NO_PDD
    assert (record.cdr.callid, record.cdr.did_owner, record.cdr.answered) == ("call-1", "42", True)


@pytest.mark.parametrize("header", [[(FORMAT_HEADER, b"4")], []])
def test_a_batch_of_an_unknown_format_is_refused_naming_both(header: list) -> None:
    with pytest.raises(FormatError) as raised:
        Batch.decode(Batch("cdr-events/0").encode(), header)
    message = str(raised.value)
    assert f"reads formats 1 to {BATCH_FORMAT}" in message
    assert ("format 4" if header else "no header") in message


def test_a_damaged_batch_is_a_format_error_not_a_crash() -> None:
    raw = Batch("cdr-events/0", [record(1, "42")]).encode()
    with pytest.raises(FormatError, match="does not decode"):
        Batch.decode(raw[:-3])
