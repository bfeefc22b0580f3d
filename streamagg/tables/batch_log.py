"""Is the batch topic still the log this state was built from?

The state records how far it applied a batch partition as an offset (``NEXT_OFFSET``). An
offset means something only in one log. If the topic was deleted and created again, the new
log numbers its batches from 0 again. If it was truncated, or is another cluster's copy (a
MirrorMaker failover), the offsets are different: a copy has no transaction markers, so the same
batch sits at a smaller offset. Continuing at the recorded offset would then skip batches that
were never applied, or apply some twice, and nobody would know.

So every state transaction also records which batch it applied last: its offset and a digest
of its bytes (``LAST_BATCH``). A batch is unique: it holds the source offsets of its CDRs.
As a partition recovers, the batch at that offset must be the same batch:

- it is: the state continues at its own offset, as always;
- the offset is gone from the log (retention deleted it): nothing can be compared, and the
  offset stands (the batches deleted since are counted as lost: partition.note_deleted);
- another batch is there, or none: the log is searched for the batch. Found (a copy of the
  topic): the state continues after it, in this log's numbering. Not found (the topic was
  recreated or cut, or is a copy that is behind the state's changelog): the partition stops,
  with a reason that says so, and retries. Counting on would lose or double calls, and only
  the operator knows which: STREAMAGG_UNKNOWN_BATCH_LOG tells it to continue at the log's end
  (every batch in it was applied) or start (none was) (docs/operations.md).

A partition that continues elsewhere than its recorded offset records the new position in a
transaction of its own before it applies anything, so that a restart does not decide again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streamagg.batches import is_batch
from streamagg.errors import StateError

log = logging.getLogger(__name__)

DIGEST_BYTES = 16
READ_TIMEOUT_S = 1.0  # one poll; the reads end at the log's end, not at a timeout


def batch_digest(value: bytes) -> bytes:
    return hashlib.blake2b(value, digest_size=DIGEST_BYTES).digest()


@dataclass(frozen=True)
class LastBatch:
    """The last batch message a partition's state applied."""

    offset: int
    digest: bytes

    @classmethod
    def of(cls, message: Any) -> LastBatch:
        return cls(message.offset, batch_digest(message.value or b""))

    def encode(self) -> bytes:
        return b"%d:%s" % (self.offset, self.digest.hex().encode())

    @classmethod
    def decode(cls, raw: bytes | None) -> LastBatch | None:
        if raw is None:
            return None  # (a state written before this was recorded: nothing to compare)
        offset, _, digest = raw.partition(b":")
        return cls(int(offset), bytes.fromhex(digest.decode()))


class BatchLogMismatch(StateError):
    """The batch topic does not hold the last batch the state applied."""


@dataclass(frozen=True)
class Position:
    """Where a partition continues in the batch log in front of it."""

    next_offset: int
    moved: bool = False  # not where the state says: record it before anything else
    last: LastBatch | None = None  # (moved) the last applied batch in this log, if it holds it


async def continue_at(
    reader: AIOKafkaConsumer,
    batches: TopicPartition,
    next_offset: int,
    last: LastBatch | None,
    when_unknown: str = "stop",
) -> Position:
    """The offset of ``batches`` to apply next: ``next_offset`` when the log still holds
    ``last`` where it was (or can no longer show it), else the offset after ``last`` found
    elsewhere in the log. When the log does not hold it: BatchLogMismatch, or the log's end or
    start as ``when_unknown`` says (the operator's choice, STREAMAGG_UNKNOWN_BATCH_LOG).
    ``reader`` reads with read_committed and belongs to no group."""
    first = (await reader.beginning_offsets([batches]))[batches]
    end = (await reader.end_offsets([batches]))[batches]
    number = batches.partition
    found = None
    if last is not None and last.offset >= first:
        reader.assign([batches])
        if next_offset <= end:
            there = await _read_at(reader, batches, last.offset, end)
            if there is not None and batch_digest(there.value or b"") == last.digest:
                return Position(next_offset)
        found = await _find(reader, batches, last.digest, first, end)
    elif next_offset <= end:
        return Position(next_offset)  # nothing to compare: none recorded, or deleted since
    # (else: the state applied past this log's end, so it is not this log)
    if found is not None and last is not None:
        log.warning(
            "partition %d: the batch topic holds the last batch the state applied at offset "
            "%d, not %d (a copy of the topic, with other offsets); continuing at %d",
            number,
            found,
            last.offset,
            found + 1,
        )
        return Position(found + 1, moved=True, last=LastBatch(found, last.digest))
    applied = f"offset {last.offset}" if last is not None else f"up to offset {next_offset}"
    unknown = (
        f"the batch topic {batches.topic} partition {number} does not hold the last batch "
        f"this state applied ({applied}; the log holds [{first}, {end}))"
    )
    if when_unknown == "from-end":
        log.warning("partition %d: %s; continuing at its end, %d, as told", number, unknown, end)
        return Position(end, moved=True)
    if when_unknown == "from-start":
        log.warning(
            "partition %d: %s; continuing at its start, %d, as told", number, unknown, first
        )
        return Position(first, moved=True)
    raise BatchLogMismatch(
        f"{unknown}: the topic was deleted and created again, or cut, or is a copy that is "
        "behind the state. Applying it could skip calls or count them twice; the partition "
        "waits for STREAMAGG_UNKNOWN_BATCH_LOG (docs/operations.md, 'When the batch topic is "
        "not the log the state was built from')"
    )


async def _read_at(
    reader: AIOKafkaConsumer, tp: TopicPartition, offset: int, end: int
) -> Any | None:
    """The committed message at ``offset``, or None (past the end, or no message there)."""
    if offset >= end:
        return None
    reader.seek(tp, offset)
    while await reader.position(tp) < end:
        polled = await reader.getmany(tp, timeout_ms=int(READ_TIMEOUT_S * 1000), max_records=1)
        for message in polled.get(tp, ()):
            return message if message.offset == offset else None
    return None


async def _find(
    reader: AIOKafkaConsumer, tp: TopicPartition, digest: bytes, first: int, end: int
) -> int | None:
    """The offset of the first committed batch in [first, end) whose bytes have ``digest``."""
    reader.seek(tp, first)
    while await reader.position(tp) < end:
        polled = await reader.getmany(tp, timeout_ms=int(READ_TIMEOUT_S * 1000))
        for message in polled.get(tp, ()):
            if message.offset >= end:
                return None
            if is_batch(message.headers) and batch_digest(message.value or b"") == digest:
                return int(message.offset)
        await asyncio.sleep(0)
    return None
