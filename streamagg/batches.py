"""The internal batch message: accepted CDRs of one source partition for one customer partition."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson
from aiokafka.partitioner import DefaultPartitioner

from streamagg.cdr import Cdr
from streamagg.errors import FormatError

_partitioner = DefaultPartitioner()
# Batch messages say their format in this header; a worker refuses one it cannot read.
FORMAT_HEADER = "streamagg-format"
# 3: format 2 with the CDR's sip_code and pdd_ms appended (a format-2 batch decodes as one of
# format 3 whose CDRs have neither; a worker that knows only 2 refuses 3, naming both).
BATCH_FORMAT = 3
_SAME_SCHEMA = (b"2", b"3")
BATCH_HEADERS = [(FORMAT_HEADER, str(BATCH_FORMAT).encode())]


def is_batch(headers: Iterable[tuple[str, bytes]]) -> bool:
    """Whether a message of the batch topic is a streamagg batch (of any format): every
    streamagg version since format 1 marks its batches with FORMAT_HEADER."""
    return any(name == FORMAT_HEADER for name, _value in headers)


def customer_partition(customer_id: str, partitions: int) -> int:
    """The partition that owns a customer: Kafka's default (murmur2) partitioner of its id.

    Faust's router uses the same partitioner over the changelog topics, so a query for a
    customer is routed to the worker that holds its tables.
    """
    all_partitions = list(range(partitions))
    return int(_partitioner(customer_id.encode(), all_partitions, all_partitions))


class Record(msgspec.Struct, array_like=True, gc=False, frozen=True):
    """One accepted CDR inside a batch, with where it came from."""

    source_offset: int
    timestamp_ms: int  # Kafka timestamp of the source message
    cdr: Cdr


class _BatchBody(msgspec.Struct, array_like=True, gc=False):
    """Formats 2 and 3 on the wire: MessagePack ``[source, [[offset, timestamp, [cdr fields…]],
    …]]``, the schema being the field order of Record and Cdr. A field is only appended, with
    a default (older batches then decode), and the format number goes up (older workers then
    refuse the new batches by their number instead of failing to decode them)."""

    source: str
    records: list[Record]


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(_BatchBody)


@dataclass
class Batch:
    """CDRs read from one source partition, bound for one customer partition, in offset order."""

    source: str  # "topic/partition" of the CDR messages
    records: list[Record] = field(default_factory=list)

    def encode(self) -> bytes:
        return _ENCODER.encode(_BatchBody(self.source, self.records))

    @classmethod
    def decode(cls, raw: bytes, headers: Iterable[tuple[str, bytes]] = BATCH_HEADERS) -> Batch:
        found = dict(headers).get(FORMAT_HEADER)
        if found in _SAME_SCHEMA:
            try:
                body = _DECODER.decode(raw)
            except msgspec.MsgspecError as exc:
                raise FormatError(
                    f"a CDR batch of format {found.decode()} that does not decode: {exc}"
                ) from None
            return cls(body.source, body.records)
        if found == b"1":  # written by the version before; read while it drains
            return _decode_format_1(raw)
        version = found.decode(errors="replace") if found else "unknown (no header)"
        raise FormatError(
            f"a CDR batch of format {version}; this streamagg reads formats 1 to {BATCH_FORMAT}"
        )


def _decode_format_1(raw: bytes) -> Batch:
    """Format 1: JSON ``{"src": source, "r": [[offset, timestamp, callid, …], …]}``."""
    body = orjson.loads(raw)
    return Batch(body["src"], [_row_record(row) for row in body["r"]])


def _row_record(row: list[Any]) -> Record:
    offset, ts, callid, customer, start, provider, cc, pc, tech, duration = row[:10]
    answered, dtmf, nanp, cli, owner = row[10:]
    cdr = Cdr(
        callid,
        customer,
        start,
        provider,
        cc,
        pc,
        tech,
        duration,
        bool(answered),
        bool(dtmf),
        nanp,
        cli,
        owner,
    )
    return Record(offset, ts, cdr)


def split_into_batches(
    source: str,
    records: Iterable[Record],
    partitions: int,
    max_records: int,
    partition_of: Callable[[str], int] | None = None,
) -> Iterator[tuple[int, Batch]]:
    """Group records by their customer's partition, keeping source order, in bounded batches."""
    partition_of = partition_of or (lambda customer: customer_partition(customer, partitions))
    cache: dict[str, int] = {}
    open_batches: dict[int, Batch] = {}
    for record in records:
        customer = record.cdr.customer_id
        partition = cache.get(customer)
        if partition is None:
            partition = cache[customer] = partition_of(customer)
        batch = open_batches.get(partition)
        if batch is None:
            batch = open_batches[partition] = Batch(source)
        batch.records.append(record)
        if len(batch.records) >= max_records:
            yield partition, open_batches.pop(partition)
    yield from open_batches.items()
