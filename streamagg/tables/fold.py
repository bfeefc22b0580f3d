"""Fold a partition's CDR records into its state: drop duplicates, add each report's deltas.

Pure: it reads and writes only through the partition transaction it is given (any object with
``get``/``set``), so it is unit-tested with a dict. Exactly-once is not its concern: the
transaction that carries its writes is committed whole or not at all (see docs/exactly-once.md).

Duplicates are decided on Kafka's event time, the timestamps of the CDR messages: a call id is
a duplicate when the same customer's call id was accepted from a message at most the horizon
older than this one, and its call start is within the horizon of the first one's (a call id
reused months later is a new call). Every decision depends only on the records and the state,
never on the clock, so a batch replayed after a crash decides as the first run did.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Protocol, TypeVar

from streamagg.batches import Record
from streamagg.cdr import Cdr
from streamagg.tables.buckets import QUARTER_SECONDS, Grain, coarser, finest
from streamagg.tables.keys import (
    EXPIRY_GROUP_IDS,
    NEWEST_MS,
    QUARTERS,
    ExpiryEntry,
    SplitValue,
    customer_key,
    decode_expiry_group,
    decode_int,
    decode_report_value,
    decode_split_value,
    decode_vector,
    dedup_key,
    encode_expiry_group,
    encode_int,
    encode_split_value,
    encode_vector,
    expiry_group_key,
    report_bucket_prefix,
)

K = TypeVar("K", bound=Hashable)


class KeyValue(Protocol):
    def get(self, key: bytes) -> bytes | None: ...

    def set(self, key: bytes, value: bytes) -> None: ...


class ReportFold(Protocol):
    """What the state needs of a report: its buckets and its fold (CDR → group, delta)."""

    name: ClassVar[str]
    grains: ClassVar[tuple[Grain, ...]]
    # The names of delta()'s entries, in order: the schema of the report's state values. A
    # field is only ever appended (values written before it read it as 0).
    fields: ClassVar[tuple[str, ...]]

    def group(self, cdr: Cdr) -> str | None: ...

    def delta(self, cdr: Cdr) -> list[int]: ...


@dataclass
class FoldOutcome:
    accepted: list[Cdr] = field(default_factory=list)
    duplicates: int = 0
    keys_written: int = 0


def fold_records(
    txn: KeyValue,
    records: Iterable[Record],
    reports: Mapping[str, ReportFold],
    dedup_horizon_seconds: int,
) -> FoldOutcome:
    """Apply records (in partition order) to the state behind ``txn``."""
    outcome = FoldOutcome()
    horizon_ms = dedup_horizon_seconds * 1000
    newest_ms = decode_int(txn.get(NEWEST_MS), 0)
    expiring: list[ExpiryEntry] = []
    for record in records:
        if _is_duplicate(txn, record, horizon_ms):
            outcome.duplicates += 1
        else:
            cdr = record.cdr
            outcome.accepted.append(cdr)
            expiring.append((record.timestamp_ms, cdr.customer_id, cdr.callid))
        newest_ms = max(newest_ms, record.timestamp_ms)
    txn.set(NEWEST_MS, encode_int(newest_ms))
    add_expiry_groups(txn, expiring)
    note_latest_calls(txn, outcome.accepted)
    for report in reports.values():
        outcome.keys_written += fold_report(txn, report, outcome.accepted)
    return outcome


def _is_duplicate(txn: KeyValue, record: Record, horizon_ms: int) -> bool:
    cdr = record.cdr
    stamp = record.timestamp_ms
    key = dedup_key(cdr.customer_id, cdr.callid)
    raw = txn.get(key)
    if raw is not None:
        accepted_ms, start = decode_vector(raw)
        if accepted_ms >= stamp - horizon_ms and abs(cdr.start - start) <= horizon_ms // 1000:
            return True
    # (An older acceptance of the id, past the horizon, is replaced; its expiry entry finds a
    # newer time here when it expires, and leaves this one alone.)
    txn.set(key, encode_vector((stamp, cdr.start)))
    return False


def note_latest_calls(txn: KeyValue, accepted: Sequence[Cdr]) -> None:
    """Keep each customer's latest call start (the API's customer list): one key a customer."""
    latest: dict[str, int] = {}
    for cdr in accepted:
        if cdr.start > latest.get(cdr.customer_id, -(2**62)):
            latest[cdr.customer_id] = cdr.start
    for customer, start in latest.items():
        key = customer_key(customer)
        if start > decode_int(txn.get(key), -(2**62)):
            txn.set(key, encode_int(start))


def add_expiry_groups(txn: KeyValue, expiring: Sequence[ExpiryEntry]) -> None:
    """Index the ids just accepted by the time they expire, EXPIRY_GROUP_IDS per key."""
    for first in range(0, len(expiring), EXPIRY_GROUP_IDS):
        entries = list(expiring[first : first + EXPIRY_GROUP_IDS])
        key = expiry_group_key(entries)
        # A key repeats only if a fold accepts the same first id with the same newest time
        # again (a replay of the same records is a duplicate and accepts nothing): keep both.
        if (earlier := txn.get(key)) is not None:
            entries = decode_expiry_group(earlier) + entries
        txn.set(key, encode_expiry_group(entries))


def fold_report(txn: KeyValue, report: ReportFold, cdrs: Sequence[Cdr]) -> int:
    """Add the calls to every bucket of the report; returns the number of keys written.

    The finest grain keeps each group's calls per quarter-hour of their start (local time zones
    cut hours there, tables/keys.py); coarser grains keep one sum per group."""
    # Sum per (customer, quarter, group) first, then place the quarters in their hour's value
    # and roll them up into every coarser grain: per-CDR work stays one dict lookup.
    quarterly: dict[tuple[str, int, str], list[int]] = {}
    group_of, delta_of = report.group, report.delta
    for cdr in cdrs:
        group = group_of(cdr)
        if group is None:
            continue
        slot = (cdr.customer_id, cdr.start // QUARTER_SECONDS, group)
        existing = quarterly.get(slot)
        if existing is None:
            quarterly[slot] = delta_of(cdr)  # (a new list per call: it becomes the sum)
        else:
            quarterly[slot] = [a + b for a, b in zip(existing, delta_of(cdr), strict=True)]
    # Vectors are never changed in place from here on (a sum is a new list), so one vector may
    # stand for its slot in several keys.
    split: dict[bytes, SplitValue] = {}
    deltas: dict[bytes, list[int]] = {}
    name, fine, coarse = report.name, finest(report.grains), coarser(report.grains)
    # The key prefixes of one customer's hour in every grain, built once per hour.
    hour_prefixes: dict[tuple[str, int], tuple[bytes, list[bytes]]] = {}
    for (customer, quarter, group), vector in quarterly.items():
        hour, part = divmod(quarter, QUARTERS)
        prefixes = hour_prefixes.get((customer, hour))
        if prefixes is None:
            prefixes = hour_prefixes[(customer, hour)] = (
                report_bucket_prefix(name, fine.code, fine.bucket(hour), customer),
                [report_bucket_prefix(name, g.code, g.bucket(hour), customer) for g in coarse],
            )
        encoded = group.encode()
        fine_prefix, coarse_prefixes = prefixes
        fine_key = fine_prefix + encoded
        parts = split.get(fine_key)
        if parts is None:
            parts = split[fine_key] = [None] * QUARTERS
        parts[part] = vector
        for prefix in coarse_prefixes:
            key = prefix + encoded
            existing = deltas.get(key)
            if existing is None:
                deltas[key] = vector
            else:
                deltas[key] = [a + b for a, b in zip(existing, vector, strict=True)]
    write_sums(txn, report, split, deltas)
    return len(split) + len(deltas)


def write_sums(
    txn: KeyValue, report: ReportFold, split: dict[bytes, SplitValue], sums: dict[bytes, list[int]]
) -> None:
    """Add the finest grain's quarters and the coarser grains' sums to the stored values."""
    get, set_ = txn.get, txn.set
    name, fields = report.name, report.fields
    for key, parts in split.items():
        raw = get(key)
        total = parts if raw is None else add_split(decode_split_value(raw, name, fields), parts)
        set_(key, encode_split_value(total))
    for key, delta in sums.items():
        raw = get(key)
        vector = (
            delta
            if raw is None
            else [a + b for a, b in zip(decode_report_value(raw, name, fields), delta, strict=True)]
        )
        set_(key, encode_vector(vector))


def add_split(stored: SplitValue, added: SplitValue) -> SplitValue:
    """Quarter by quarter, stored + added (a new list; neither is changed)."""
    total: SplitValue = []
    for old, new in zip(stored, added, strict=True):
        if old is None or new is None:
            total.append(new if old is None else old)
        else:
            total.append([a + b for a, b in zip(old, new, strict=True)])
    return total


def add_vector(vectors: dict[K, list[int]], key: K, vector: list[int]) -> None:
    """vectors[key] += vector, element by element (a copy of vector when key is new)."""
    existing = vectors.get(key)
    if existing is None:
        vectors[key] = list(vector)
    else:
        for i, value in enumerate(vector):
            existing[i] += value
