"""The key layout and value encodings of the state (format 3), shared by RocksDB and changelog.

Every key starts with a one-letter kind and fields separated by 0x1f (customer ids and report
names cannot contain control characters; the last field may hold anything):

- ``R␟report␟{grain}{bucket:08d}␟customer␟group`` → one report group of one bucket, its vector
  of integers. Buckets sort in time, so the buckets past retention are one leading key range
  per (report, grain); a query reads one key range per (bucket, customer). In a report's
  finest grain (hours; dtmf's days, whose groups carry the hour) the value keeps one vector per
  quarter-hour of the call starts, ``{quarter}:{vector};…`` (quarters 0–3 with calls only):
  local time zones with :30 and :45 offsets cut UTC hours at their quarters (format 2; a
  format-1 value, one vector for the whole hour, reads as its first quarter).
- ``D␟customer␟callid`` → an accepted call id: the Kafka timestamp (ms) of the message that
  brought it and the call's start.
- ``Y␟{newest:013d}␟customer␟callid`` → the ids one fold accepted (at most
  ``EXPIRY_GROUP_IDS``), as MessagePack ``[[timestamp, customer, callid], …]``, under the
  newest of their timestamps and the first of them (which makes the key unique). Expired ids
  are one leading key range of ``Y``; one key per group instead of one per id halves the
  writes of dedup (BENCHMARKS.md). ``X␟{timestamp:013d}␟customer␟callid`` → one id, the same
  index as written before groups (still expired, never written).
- ``C␟customer`` → the start (epoch seconds) of the customer's latest accepted call: the
  customer list of the API (``GET /api/v1/customers``) is one key range per partition.
- ``M␟name`` → partition metadata kept in the changelog (next batch offset, newest message time,
  the first hour whose groups are not in their day and month buckets yet: tables/rollup.py).
- ``\\x00name`` → local-only bookkeeping of the RocksDB copy (never in the changelog).

One group per key keeps every value small (a few integers), whatever the data, and makes a
batch's cost grow with the groups it touches. Grains are one letter, so a finer one (15-minute
buckets for local time zones) is a new letter, not a new layout.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import msgspec

from streamagg.errors import FormatError
from streamagg.tables.buckets import QUARTERS_PER_HOUR

FORMAT_VERSION = 3
# Format 1 differs only in its hour values (read as above); format 2 in its day and month
# values, which hold every hour (read as such: tables/rollup.py). A version that knows 2 only
# must refuse 3, whose days and months leave the open hours out.
READABLE_FORMATS = (1, 2, 3)
SEP = "\x1f"

NEXT_OFFSET = b"M\x1fnext-batch-offset"  # next offset of the batch partition to apply
LAST_BATCH = b"M\x1flast-batch"  # offset and digest of the last batch applied (batch_log.py)
NEWEST_MS = b"M\x1fnewest-message-ms"  # newest CDR message timestamp applied
# Hours before it are in their day and month buckets, the others not yet (tables/rollup.py).
ROLLED_UP_TO = b"M\x1frolled-up-to-hour"
# Retention (tables/retention.py): the days the partition keeps; a shorter setting asked for
# (days, since when); the greatest hour before which any sweep deleted buckets.
RETENTION_DAYS = b"M\x1fretention-days"
RETENTION_SHRINK = b"M\x1fretention-shrink"
SWEPT_BEFORE_HOUR = b"M\x1fswept-before-hour"
LOCAL_CHECKPOINT = b"\x00checkpoint"  # next changelog offset to read into this copy
LOCAL_FORMAT = b"\x00format"
LOCAL_PREFIX = b"\x00"


@lru_cache(maxsize=65_536)
def report_bucket_prefix(report: str, grain: str, bucket: int, customer: str) -> bytes:
    """Prefix of every group of one customer's bucket (cached: a stream repeats a few)."""
    return f"R{SEP}{report}{SEP}{grain}{bucket:08d}{SEP}{customer}{SEP}".encode()


def report_key(report: str, grain: str, bucket: int, customer: str, group: str) -> bytes:
    return report_bucket_prefix(report, grain, bucket, customer) + group.encode()


def report_expiry_range(report: str, grain: str, first_kept_bucket: int) -> tuple[bytes, bytes]:
    """Keys of the buckets before ``first_kept_bucket`` of one report grain: [low, high)."""
    return report_buckets_range(report, grain, 0, first_kept_bucket)


def report_buckets_range(report: str, grain: str, first: int, end: int) -> tuple[bytes, bytes]:
    """Keys of the buckets [first, end) of one report grain, every customer: [low, high)."""
    low = f"R{SEP}{report}{SEP}{grain}".encode()
    return low + f"{first:08d}".encode(), low + f"{end:08d}".encode()


def group_of(key: bytes, prefix: bytes) -> str:
    return key[len(prefix) :].decode()


CUSTOMERS_RANGE = (f"C{SEP}".encode(), f"C{chr(0x20)}".encode())  # every C␟ key: [low, high)


def customer_key(customer: str) -> bytes:
    return f"C{SEP}{customer}".encode()


def dedup_key(customer: str, callid: str) -> bytes:
    return f"D{SEP}{customer}{SEP}{callid}".encode()


def expiry_key(accepted_ms: int, customer: str, callid: str) -> bytes:
    return f"X{SEP}{accepted_ms:013d}{SEP}{customer}{SEP}{callid}".encode()


def parse_expiry_key(key: bytes) -> tuple[int, str, str]:
    """(accepted_ms, customer, callid) of an expiry key."""
    _, accepted_ms, customer, callid = key.decode().split(SEP, 3)
    return int(accepted_ms), customer, callid


def expiry_range(first_kept_ms: int) -> tuple[bytes, bytes]:
    """Expiry keys (one id each) of ids accepted before first_kept_ms: [low, high)."""
    return f"X{SEP}".encode(), f"X{SEP}{max(0, first_kept_ms):013d}".encode()


# Ids per expiry group: ~256 × (13 + 2 × 128 characters) bounds a group's value well under
# a Kafka message, and a group costs 1/256 of a write per CDR.
EXPIRY_GROUP_IDS = 256
ExpiryEntry = tuple[int, str, str]  # (accepted_ms, customer, callid)
_entries_encoder = msgspec.msgpack.Encoder()
_entries_decoder = msgspec.msgpack.Decoder(list[ExpiryEntry])


def expiry_group_key(entries: Sequence[ExpiryEntry]) -> bytes:
    newest = max(accepted_ms for accepted_ms, _, _ in entries)
    _, customer, callid = entries[0]
    return f"Y{SEP}{newest:013d}{SEP}{customer}{SEP}{callid}".encode()


def encode_expiry_group(entries: Sequence[ExpiryEntry]) -> bytes:
    return _entries_encoder.encode(entries)


def decode_expiry_group(raw: bytes) -> list[ExpiryEntry]:
    return _entries_decoder.decode(raw)


def expiry_group_range(first_kept_ms: int) -> tuple[bytes, bytes]:
    """Expiry groups whose newest id was accepted before first_kept_ms: [low, high)."""
    return f"Y{SEP}".encode(), f"Y{SEP}{max(0, first_kept_ms):013d}".encode()


def encode_vector(values: Sequence[int]) -> bytes:
    """Integers as ASCII decimals: exact at any size (sums of micro-units can pass 2**63)."""
    return _vector_format(len(values)) % tuple(values)


@lru_cache(maxsize=64)
def _vector_format(width: int) -> bytes:
    # (bytes %-formatting of a cached b"%d,%d,…" runs in C: ~2x faster than str.join)
    return b",".join([b"%d"] * width)


def decode_vector(raw: bytes) -> list[int]:
    return list(map(int, raw.split(b",")))


def decode_report_value(raw: bytes, report: str, fields: Sequence[str]) -> list[int]:
    """A report group's value by the report's declared fields: a value written before fields
    were appended reads them as 0; one with fields this version does not know (written by a
    newer one) is refused, naming both."""
    vector = list(map(int, raw.split(b",")))  # (decode_vector inlined: an answer reads many)
    missing = len(fields) - len(vector)
    if missing == 0:
        return vector
    if missing > 0:
        vector += [0] * missing
    else:
        raise FormatError(
            f"a state value of report {report} has {len(vector)} fields; this streamagg knows "
            f"{len(fields)} ({', '.join(fields)}): it was written by a newer version"
        )
    return vector


SplitValue = list[list[int] | None]  # a vector per quarter of the hour; None: no call in it


def encode_split_value(parts: SplitValue) -> bytes:
    """``{quarter}:{vector};…`` for the quarters with calls, in one C-level format."""
    present = tuple([quarter for quarter in range(QUARTERS_PER_HOUR) if parts[quarter] is not None])
    values = [value for quarter in present for value in parts[quarter]]  # type: ignore[union-attr]
    return _split_format(present, len(values) // len(present)) % tuple(values)


@lru_cache(maxsize=1024)
def _split_format(quarters: tuple[int, ...], width: int) -> bytes:
    return b";".join(b"%d:" % quarter + _vector_format(width) for quarter in quarters)


def decode_split_value(raw: bytes, report: str, fields: Sequence[str]) -> SplitValue:
    """A finest-grain value by quarter (decode_report_value's rules for each vector)."""
    parts: SplitValue = [None] * QUARTERS_PER_HOUR
    if b":" not in raw:  # format 1: the whole hour in one vector, read as its first quarter
        parts[0] = decode_report_value(raw, report, fields)
        return parts
    width = len(fields)
    for segment in raw.split(b";"):  # (b"2:5,0,1": the quarter is one digit)
        vector = list(map(int, segment[2:].split(b",")))
        if len(vector) != width:
            vector = decode_report_value(segment[2:], report, fields)
        parts[segment[0] - 48] = vector
    return parts


def encode_int(value: int) -> bytes:
    return str(value).encode()


def decode_int(raw: bytes | None, default: int) -> int:
    return default if raw is None else int(raw)
