"""The internal batch message: accepted CDRs of one source partition for one customer partition."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka.partitioner import DefaultPartitioner

from streamagg.cdr import Cdr
from streamagg.errors import FormatError

_partitioner = DefaultPartitioner()
# Batch messages say their format in this header; a worker refuses one it cannot read.
FORMAT_HEADER = "streamagg-format"
BATCH_FORMAT = 1
BATCH_HEADERS = [(FORMAT_HEADER, str(BATCH_FORMAT).encode())]


def customer_partition(customer_id: str, partitions: int) -> int:
    """The partition that owns a customer: Kafka's default (murmur2) partitioner of its id.

    Faust's router uses the same partitioner over the changelog topics, so a query for a
    customer is routed to the worker that holds its tables.
    """
    all_partitions = list(range(partitions))
    return int(_partitioner(customer_id.encode(), all_partitions, all_partitions))


@dataclass(frozen=True, slots=True)
class Record:
    """One accepted CDR inside a batch, with where it came from."""

    source_offset: int
    timestamp_ms: int  # Kafka timestamp of the source message
    cdr: Cdr


@dataclass
class Batch:
    """CDRs read from one source partition, bound for one customer partition, in offset order."""

    source: str  # "topic/partition" of the CDR messages
    records: list[Record] = field(default_factory=list)

    def encode(self) -> bytes:
        return orjson.dumps({"src": self.source, "r": [_record_row(r) for r in self.records]})

    @classmethod
    def decode(cls, raw: bytes, headers: Iterable[tuple[str, bytes]] = BATCH_HEADERS) -> Batch:
        found = dict(headers).get(FORMAT_HEADER)
        if found != BATCH_HEADERS[0][1]:
            version = found.decode(errors="replace") if found else "unknown (no header)"
            raise FormatError(
                f"a CDR batch of format {version}; this streamagg reads format {BATCH_FORMAT}"
            )
        body = orjson.loads(raw)
        return cls(body["src"], [_row_record(row) for row in body["r"]])


def _record_row(record: Record) -> list[object]:
    c = record.cdr
    return [
        record.source_offset,
        record.timestamp_ms,
        c.callid,
        c.customer_id,
        c.start,
        c.provider_id,
        c.customer_charge,
        c.provider_charge,
        c.tech_prefix,
        c.duration,
        int(c.answered),
        int(c.has_dtmf),
        c.nanp_number,
        c.cli,
        c.did_owner,
    ]


def _row_record(row: list[Any]) -> Record:
    (offset, ts, callid, customer, start, provider, cc, pc, tech, duration) = row[:10]
    answered, dtmf, nanp, cli, owner = row[10:]
    cdr = Cdr(
        callid=callid,
        customer_id=customer,
        start=start,
        provider_id=provider,
        customer_charge=cc,
        provider_charge=pc,
        tech_prefix=tech,
        duration=duration,
        answered=bool(answered),
        has_dtmf=bool(dtmf),
        nanp_number=nanp,
        cli=cli,
        did_owner=owner,
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
