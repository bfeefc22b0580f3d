"""One report's sums of a transaction, added to the state: the per-CDR fold that defines them.

A report's fold is CDR → (group, delta); a transaction sums its CDRs' deltas per (customer,
quarter-hour, group) in memory, then adds the sums to every bucket of the report in one
read-modify-write per state key. ``QuarterSums`` sums CDR by CDR; tables/fold_columns.py
computes the same sums on columns for large transactions.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from operator import add
from typing import ClassVar, Protocol, TypeVar

from streamagg.cdr import Cdr
from streamagg.tables.buckets import QUARTER_SECONDS, QUARTERS_PER_HOUR, Grain, finest
from streamagg.tables.keys import (
    SplitValue,
    decode_report_value,
    decode_split_value,
    encode_split_value,
    encode_vector,
    report_bucket_prefix,
)
from streamagg.tables.rollup import Level, roll_up

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


class Sums(Protocol):
    """One report's sums of a transaction, written to every bucket of the report."""

    @property
    def report(self) -> ReportFold: ...

    def write(self, txn: KeyValue, open_from: int | None = None) -> int: ...


def fold_report(txn: KeyValue, report: ReportFold, cdrs: Sequence[Cdr]) -> int:
    """Add the calls to every bucket of the report; returns the number of keys written."""
    sums = QuarterSums(report)
    sums.add(cdrs)
    return sums.write(txn)


class QuarterSums:
    """One report's deltas summed per (customer, quarter-hour, group), then written to every
    bucket of the report.

    The finest grain keeps each group's calls per quarter-hour of their start (local time zones
    cut hours there, tables/keys.py); coarser grains keep one sum per group."""

    def __init__(self, report: ReportFold) -> None:
        self.report = report
        self.quarterly: dict[tuple[str, int, str], list[int]] = {}

    def add(self, cdrs: Iterable[Cdr]) -> None:
        # Per-CDR work stays one dict lookup; placing quarters in hours and rolling them up
        # happens once per slot in write().
        quarterly = self.quarterly
        group_of, delta_of = self.report.group, self.report.delta
        for cdr in cdrs:
            group = group_of(cdr)
            if group is None:
                continue
            slot = (cdr.customer_id, cdr.start // QUARTER_SECONDS, group)
            existing = quarterly.get(slot)
            # (a new list per call, and a sum is a new list: no vector is changed in place, so
            # one may stand for its slot in several keys)
            quarterly[slot] = (
                delta_of(cdr) if existing is None else list(map(add, existing, delta_of(cdr)))
            )

    def write(self, txn: KeyValue, open_from: int | None = None) -> int:
        """Add the sums to the stored values of every grain, except the hours from
        ``open_from`` on to their days and months (tables/rollup.py); returns the keys
        written."""
        report = self.report
        name, fine = report.name, finest(report.grains)
        split: dict[bytes, SplitValue] = {}
        hourly: Level = {}
        rolled = len(report.grains) > 1
        prefixes: dict[tuple[str, int], bytes] = {}  # (built once per customer-hour)
        for (customer, quarter, group), vector in self.quarterly.items():
            hour, part = divmod(quarter, QUARTERS_PER_HOUR)
            prefix = prefixes.get((customer, hour))
            if prefix is None:
                prefix = prefixes[(customer, hour)] = report_bucket_prefix(
                    name, fine.code, fine.bucket(hour), customer
                )
            key = prefix + group.encode()
            parts = split.get(key)
            if parts is None:
                parts = split[key] = [None] * QUARTERS_PER_HOUR
            parts[part] = vector
            if rolled and (open_from is None or hour < open_from):
                slot = (customer, hour, group)
                existing = hourly.get(slot)
                hourly[slot] = vector if existing is None else list(map(add, existing, vector))
        sums = roll_up(name, report.grains, hourly)
        write_sums(txn, report, split, sums)
        return len(split) + len(sums)


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
            delta if raw is None else list(map(add, decode_report_value(raw, name, fields), delta))
        )
        set_(key, encode_vector(vector))


def add_encoded(
    txn: KeyValue,
    report: ReportFold,
    split: Iterable[tuple[bytes, bytes]],
    sums: Iterable[tuple[bytes, bytes]],
) -> None:
    """write_sums of sums already encoded: a key without a stored value takes the encoded
    value as it is (most keys of a large transaction), the others are added up as values."""
    get, set_ = txn.get, txn.set
    name, fields = report.name, report.fields
    for key, value in split:
        raw = get(key)
        if raw is None:
            set_(key, value)
        else:
            parts = add_split(
                decode_split_value(raw, name, fields), decode_split_value(value, name, fields)
            )
            set_(key, encode_split_value(parts))
    for key, value in sums:
        raw = get(key)
        if raw is None:
            set_(key, value)
        else:
            added = decode_report_value(value, name, fields)
            set_(key, encode_vector(list(map(add, decode_report_value(raw, name, fields), added))))


def add_split(stored: SplitValue, added: SplitValue) -> SplitValue:
    """Quarter by quarter, stored + added (a new list; neither is changed)."""
    total: SplitValue = []
    for old, new in zip(stored, added, strict=True):
        if old is None or new is None:
            total.append(new if old is None else old)
        else:
            total.append(list(map(add, old, new)))
    return total


def add_vector(vectors: dict[K, list[int]], key: K, vector: list[int]) -> None:
    """vectors[key] += vector, element by element (a copy of vector when key is new)."""
    existing = vectors.get(key)
    if existing is None:
        vectors[key] = list(vector)
    else:
        for i, value in enumerate(vector):
            existing[i] += value
