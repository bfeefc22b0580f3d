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

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from streamagg.batches import Record
from streamagg.cdr import Cdr
from streamagg.tables.fold_columns import cdr_frame, column_sums, is_columnar
from streamagg.tables.keys import (
    EXPIRY_GROUP_IDS,
    NEWEST_MS,
    ExpiryEntry,
    customer_key,
    decode_expiry_group,
    decode_int,
    decode_vector,
    dedup_key,
    encode_expiry_group,
    encode_int,
    encode_vector,
    expiry_group_key,
)
from streamagg.tables.rollup import (
    RolledState,
    close_hours,
    next_rolled_hour,
    rolled_hour,
    rolls_up,
    set_rolled_hour,
)
from streamagg.tables.sums import KeyValue, QuarterSums, ReportFold, Sums, write_sums


@dataclass
class FoldOutcome:
    accepted: list[Cdr] = field(default_factory=list)
    duplicates: int = 0
    keys_written: int = 0
    on_columns: bool = False  # the report sums were computed on columns (tables/fold_columns.py)


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
    reads and writes go to the transaction at once) and sums each report's deltas in memory
    (or, ``on_columns``, lays the accepted CDRs out as columns, summed in ``finish``);
    ``finish`` writes the sums, one report per step. Slices sum to what one fold of all their
    records would write: a caller may serve other work between the steps."""

    def __init__(
        self,
        txn: RolledState,
        reports: Mapping[str, ReportFold],
        dedup_horizon_seconds: int,
        on_columns: bool = False,
    ) -> None:
        self.txn = txn
        self.outcome = FoldOutcome()
        self._horizon_ms = dedup_horizon_seconds * 1000
        self._newest_ms = decode_int(txn.get(NEWEST_MS), 0)
        self._expiring: list[ExpiryEntry] = []
        self._reports = reports
        # ``on_columns``: the sums of the reports that have column expressions are computed on
        # columns (tables/fold_columns.py), the CDRs laid out as columns slice by slice; the
        # others' per CDR, slice by slice.
        self._frames: list[pl.DataFrame] | None = [] if on_columns else None
        self._per_cdr = {
            name: QuarterSums(report)
            for name, report in reports.items()
            if not (on_columns and is_columnar(report))
        }

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
        for sums in self._per_cdr.values():
            sums.add(accepted)
        if self._frames is not None:
            self._frames.append(cdr_frame(accepted))

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
        self.outcome.on_columns = self._frames is not None and not self._per_cdr
        for sums in self._every_sums():
            if rolled is not None and open_from > rolled and rolls_up(sums.report):
                for closed in close_hours(txn, sums.report, rolled, open_from):
                    write_sums(txn, sums.report, {}, closed)
                    self.outcome.keys_written += len(closed)
                    yield f"{sums.report.name}: hours closed"
            self.outcome.keys_written += sums.write(txn, open_from)
            yield sums.report.name
        if open_from != rolled:
            set_rolled_hour(txn, open_from)

    def _every_sums(self) -> Iterator[Sums]:
        """Each report's sums in turn (those on columns worked out when their turn comes)."""
        frames = self._frames
        frame = None if frames is None else pl.concat(frames) if frames else cdr_frame([])
        for name, report in self._reports.items():
            sums: Sums | None = self._per_cdr.get(name)
            if sums is None and frame is not None:
                sums = column_sums(report, frame)
            if sums is None:  # (its sums could pass 64 bits: exact Python integers)
                sums = QuarterSums(report)
                sums.add(self.outcome.accepted)
                self.outcome.on_columns = False
            yield sums


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
