"""Day and month sums of the reports kept per hour: which hours they hold, and closing hours.

A report with grains coarser than the hour (rate-center, routes, tech-prefix, did-cli) keeps
each group per hour and, for long ranges, per day and per month. Adding every transaction's
calls to all three writes each group it touches three times per transaction; at live rates a
transaction carries a few hundred calls, so half of all the state's writes were day and month
sums of hours still receiving calls, written again by the next transaction.

So the day and month buckets hold the *closed* hours only: those before the partition's
``M␟rolled-up-to-hour`` (W, one for every report). A call whose hour is W or later is added to
its hour only. When the newest message time passes W by OPEN_HOURS, the transaction first adds
the hours W leaves behind, whole, to their days and months, then moves W. A call of an hour
before W is added to its hour, day and month at once, as always. Every call is in its day and
month once: directly, if its hour was closed when it was folded, or when its hour closes.

A query reads W with each day or month bucket, in the same step, and adds the hours from W on
that the bucket spans (reports/query.py). A partition without W (no report group yet, or state
written by a version that rolled every transaction up) gets a W past every hour it holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from operator import add
from typing import TYPE_CHECKING, Protocol

from streamagg.tables.buckets import HOUR, QUARTERS_PER_HOUR, Grain, coarser
from streamagg.tables.keys import (
    ROLLED_UP_TO,
    SEP,
    SplitValue,
    decode_int,
    decode_split_value,
    encode_int,
    report_bucket_prefix,
    report_buckets_range,
)

if TYPE_CHECKING:
    from streamagg.tables.sums import ReportFold

HOUR_MS = 3_600_000
# The hour of the newest message and the one before it stay open: most calls of a live stream
# start in them (a CDR comes when its call ends).
OPEN_HOURS = 2
# A first open hour past any bucket (their numbers have 8 digits): every hour closed.
NO_OPEN_HOURS = 10**8
# Hour keys closed between two turns of the event loop (~25 ms of CPU on the bench machine).
CLOSE_STEP_KEYS = 5_000

Level = dict[tuple[str, int, str], list[int]]  # (customer, bucket, group) → sum


class RolledState(Protocol):
    def get(self, key: bytes) -> bytes | None: ...

    def set(self, key: bytes, value: bytes) -> None: ...

    def scan(self, low: bytes, high: bytes) -> Iterator[tuple[bytes, bytes]]: ...

    def last(self, low: bytes, high: bytes) -> bytes | None: ...


def rolls_up(report: ReportFold) -> bool:
    """Whether the report keeps hours and coarser sums of them."""
    return HOUR in report.grains and len(report.grains) > 1


def next_rolled_hour(
    txn: RolledState, reports: Mapping[str, ReportFold], newest_ms: int, rolled: int | None
) -> int:
    """W once the transaction's records are in, from ``rolled`` (W as committed: rolled_hour):
    never back, OPEN_HOURS behind the newest message. Reads only committed state (call it
    before the reports' sums are written)."""
    # Messages without a time (Kafka's -1) would leave every hour open for good, and every
    # query would read days and months hour by hour: their partition keeps every hour closed.
    wanted = newest_ms // HOUR_MS - OPEN_HOURS + 1 if newest_ms > 0 else NO_OPEN_HOURS
    if rolled is not None:
        return max(rolled, wanted)
    # No W yet: every hour held so far is in its day and month already.
    for report in reports.values():
        if rolls_up(report):
            last = txn.last(*report_buckets_range(report.name, HOUR.code, 0, NO_OPEN_HOURS))
            if last is not None:
                wanted = max(wanted, int(last.split(SEP.encode(), 3)[2][1:]) + 1)
    return wanted


def rolled_hour(txn: RolledState) -> int | None:
    """W as committed; None before the first transaction that wrote one."""
    raw = txn.get(ROLLED_UP_TO)
    return None if raw is None else decode_int(raw, 0)


def close_hours(
    txn: RolledState, report: ReportFold, first: int, end: int
) -> Iterator[dict[bytes, list[int]]]:
    """The day and month sums that the hours [first, end) of the report add, read whole from
    the committed state: what moving W from first to end must add. In parts (of at most
    CLOSE_STEP_KEYS hour keys each) to be added one after the other: an hour of a busy
    partition may hold hundreds of thousands of groups, and the caller may serve other work
    between the parts."""
    hourly: Level = {}
    sep = SEP.encode()
    for key, raw in txn.scan(*report_buckets_range(report.name, HOUR.code, first, end)):
        _, _, bucket, customer, group = key.split(sep, 4)
        total = hour_total(decode_split_value(raw, report.name, report.fields))
        if total is not None:
            hourly[(customer.decode(), int(bucket[1:]), group.decode())] = total
        if len(hourly) >= CLOSE_STEP_KEYS:
            yield roll_up(report.name, report.grains, hourly)
            hourly = {}
    if hourly:
        yield roll_up(report.name, report.grains, hourly)


def hour_total(
    parts: SplitValue, quarters: Iterable[int] = range(QUARTERS_PER_HOUR)
) -> list[int] | None:
    """The sum of an hour's quarters (of those given); None when none of them has calls."""
    total: list[int] | None = None
    for quarter in quarters:
        vector = parts[quarter]
        if vector is not None:
            total = vector if total is None else list(map(add, total, vector))
    return total


def roll_up(name: str, grains: tuple[Grain, ...], hourly: Level) -> dict[bytes, list[int]]:
    """The sums of every grain coarser than the hour, by key: each level is summed from the one
    below (hours into days, days into months), so a sum is added once per group below it."""
    sums: dict[bytes, list[int]] = {}
    level, below = hourly, HOUR
    for grain in coarser(grains):
        above: Level = {}
        parents: dict[int, int] = {}  # bucket below → the bucket of this grain holding it
        for (customer, bucket, group), vector in level.items():
            parent = parents.get(bucket)
            if parent is None:
                parent = parents[bucket] = grain.bucket(below.span(bucket)[0])
            slot = (customer, parent, group)
            existing = above.get(slot)
            above[slot] = vector if existing is None else list(map(add, existing, vector))
        for (customer, bucket, group), vector in above.items():
            sums[report_bucket_prefix(name, grain.code, bucket, customer) + group.encode()] = vector
        level, below = above, grain
    return sums


def set_rolled_hour(txn: RolledState, hour: int) -> None:
    txn.set(ROLLED_UP_TO, encode_int(hour))
