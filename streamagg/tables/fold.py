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

from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from operator import add
from typing import ClassVar, Protocol, TypeVar

from streamagg.batches import Record
from streamagg.cdr import Cdr
from streamagg.tables.buckets import QUARTER_SECONDS, QUARTERS_PER_HOUR, Grain, finest
from streamagg.tables.keys import (
    EXPIRY_GROUP_IDS,
    NEWEST_MS,
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
from streamagg.tables.rollup import (
    Level,
    RolledState,
    close_hours,
    next_rolled_hour,
    roll_up,
    rolled_hour,
    rolls_up,
    set_rolled_hour,
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
    txn: RolledState,
    records: Iterable[Record],
    reports: Mapping[str, ReportFold],
    dedup_horizon_seconds: int,
) -> FoldOutcome:
    """Apply records (in partition order) to the state behind ``txn``."""
    fold = BatchFold(txn, reports, dedup_horizon_seconds)
    fold.add(records)
    for _report in fold.finish():
        pass
    return fold.outcome


class BatchFold:
    """One transaction's fold, fed in slices: ``add`` decides duplicates record by record (its
    reads and writes go to the transaction at once) and sums each report's deltas in memory;
    ``finish`` writes the sums, one report per step. Slices sum to what one fold of all their
    records would write: a caller may serve other work between the steps."""

    def __init__(
        self, txn: RolledState, reports: Mapping[str, ReportFold], dedup_horizon_seconds: int
    ) -> None:
        self.txn = txn
        self.outcome = FoldOutcome()
        self._horizon_ms = dedup_horizon_seconds * 1000
        self._newest_ms = decode_int(txn.get(NEWEST_MS), 0)
        self._expiring: list[ExpiryEntry] = []
        self._reports = reports
        self._sums = [QuarterSums(report) for report in reports.values()]

    def add(self, records: Iterable[Record]) -> None:
        txn, horizon_ms, outcome = self.txn, self._horizon_ms, self.outcome
        accepted: list[Cdr] = []
        newest_ms = self._newest_ms
        for record in records:
            if _is_duplicate(txn, record, horizon_ms):
                outcome.duplicates += 1
            else:
                cdr = record.cdr
                accepted.append(cdr)
                self._expiring.append((record.timestamp_ms, cdr.customer_id, cdr.callid))
            newest_ms = max(newest_ms, record.timestamp_ms)
        self._newest_ms = newest_ms
        outcome.accepted.extend(accepted)
        for sums in self._sums:
            sums.add(accepted)

    def finish(self) -> Iterator[str]:
        """Write everything, step by step: yields each report's name once its sums are written.
        Hours that the newest message time closes go to their days and months first, in parts
        (tables/rollup.py), each followed by a step ``{report}: hours closed``."""
        txn = self.txn
        rolled = rolled_hour(txn)
        open_from = next_rolled_hour(txn, self._reports, self._newest_ms, rolled)
        txn.set(NEWEST_MS, encode_int(self._newest_ms))
        add_expiry_groups(txn, self._expiring)
        note_latest_calls(txn, self.outcome.accepted)
        for sums in self._sums:
            if rolled is not None and open_from > rolled and rolls_up(sums.report):
                for closed in close_hours(txn, sums.report, rolled, open_from):
                    write_sums(txn, sums.report, {}, closed)
                    self.outcome.keys_written += len(closed)
                    yield f"{sums.report.name}: hours closed"
            self.outcome.keys_written += sums.write(txn, open_from)
            yield sums.report.name
        if open_from != rolled:
            set_rolled_hour(txn, open_from)


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
