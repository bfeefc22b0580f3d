"""Sum a report's groups over a range, for the reports whose groups do not carry their hour.

A range is read through its signed cover (tables/buckets.py): step by step, each step at one
moment. A day or month bucket is read whole, with the hours it spans that are not in it yet
(tables/rollup.py); an hour bucket at an edge of the range is read for its quarters inside the
range. A tile's sign says whether it adds to the range or takes away its part outside.

Long ranges read many stored values of whole buckets. rate-center's busiest customer over 13
months reads ~5,700: one per NPA-NXX-X block and month, and ~560 more of its two open hours.
Decoding each value into a list and adding lists cost ~1.4 µs per value in Python, most of a
15 ms answer. Instead, the values of whole buckets and whole hours are kept as stored, grouped,
and decoded at the end, all at once (``sum_groups``); only each group's sums are Python work.
The sums stay Python integers, exact at any size.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import chain, repeat
from operator import add, sub

import msgspec

from streamagg.reports.base import Groups, QueryContext, Report
from streamagg.tables.buckets import HOUR, QUARTERS_PER_HOUR, Grain, Step, finest, signed_cover
from streamagg.tables.keys import (
    ROLLED_UP_TO,
    customer_key,
    decode_int,
    decode_report_value,
    decode_split_value,
    report_bucket_prefix,
)
from streamagg.tables.rollup import hour_total

# Every (key, value) of the state with low <= key < high, in key order.
Scan = Callable[[bytes, bytes], Iterable[tuple[bytes, bytes]]]
ByGroup = defaultdict[bytes, list[bytes]]  # stored values by group
_INTEGERS = msgspec.json.Decoder(list[int])
# An hour's value as encode_split_value writes it: ``{quarter}:{vector}`` for the quarters with
# calls, in order, joined by ";" (a vector's own syntax is msgspec's to check).
_VECTOR = rb"[^;:]*"
_QUARTERED = re.compile(
    rb"(?=.)"
    + b"".join(rb"(?:%d:%s(?:;(?=.)|\Z))?" % (quarter, _VECTOR) for quarter in range(3))
    + rb"(?:3:%s\Z)?" % _VECTOR,
    re.DOTALL,
)


def range_steps(report: Report, start: int, end: int, context: QueryContext) -> tuple[Step, ...]:
    """The steps that read the epoch quarters [start, end) of a report without periods."""
    safe_from = end if context.intact_from is None else context.intact_from
    return signed_cover(start, end, report.grains, safe_from)


class RangeSums:
    """One customer's groups of a report, summed over the steps read into it."""

    def __init__(self, report: Report, customer: str, scan: Scan) -> None:
        self._name, self._fields, self._finest = report.name, report.fields, finest(report.grains)
        self._customer, self._scan = customer, scan
        # Values as stored, by group, of the tiles added and of those taken away: of day and
        # month buckets (a vector each), and of whole hours (a vector per quarter with calls).
        self._whole: tuple[ByGroup, ByGroup] = (defaultdict(list), defaultdict(list))
        self._hours: tuple[ByGroup, ByGroup] = (defaultdict(list), defaultdict(list))
        self._decoded: Groups = {}  # parts of hours, signed

    def read(self, step: Step) -> None:
        """Read one step's tiles (no commit can come between two reads of one step)."""
        for sign, grain, bucket, first, end in step:
            prefix = report_bucket_prefix(self._name, grain.code, bucket, self._customer)
            rows = self._scan(prefix, after(prefix))
            if grain != self._finest:
                group_values(self._whole[sign < 0], rows, len(prefix))
                self._add_open_hours(grain, bucket, sign)
                continue
            # (the finest grain of these reports is the hour: the bucket is one)
            quarters = quarters_in_range(bucket, first, end)
            if len(quarters) == QUARTERS_PER_HOUR:
                group_values(self._hours[sign < 0], rows, len(prefix))
                continue
            groups: Groups = {}
            for key, raw in rows:
                total = hour_total(decode_split_value(raw, self._name, self._fields), quarters)
                if total is not None:
                    groups[key[len(prefix) :].decode()] = total
            merge_groups(self._decoded, groups, sign)

    def total(self) -> Groups:
        """Every group's sum over the steps read (once, after the last step). A group may be
        at zero (its calls all in the parts taken away)."""
        total = self._decoded  # (taken: the sums go into it)
        name, fields = self._name, self._fields
        for sign, whole, hours in (
            (1, self._whole[0], self._hours[0]),
            (-1, self._whole[1], self._hours[1]),
        ):
            merge_groups(total, sum_groups(whole, name, fields, split=False), sign)
            merge_groups(total, sum_groups(hours, name, fields, split=True), sign)
        return total

    def _add_open_hours(self, grain: Grain, bucket: int, sign: int) -> None:
        """A day or month bucket holds its closed hours only (tables/rollup.py): add the hours
        it spans from the partition's first open hour on, read in the same step as the bucket.

        The hours end at the customer's latest call (``C␟customer``, raised by the fold that
        accepts a call, in the same transaction): early in a month, "this month" would
        otherwise look up every empty hour to its end, ~700 of them. An open hour holds only
        calls folded by a version that keeps that key (state of older versions has every hour
        closed)."""
        found = self._one(ROLLED_UP_TO)
        if found is None:  # (every hour is closed)
            return
        latest = self._one(customer_key(self._customer))
        if latest is None:  # (no call of this customer)
            return
        first, end = grain.span(bucket)
        end = min(end, decode_int(latest, 0) // 3600 + 1)  # (the hour of that call, included)
        for hour in range(max(first, decode_int(found, 0)), end):
            prefix = report_bucket_prefix(self._name, HOUR.code, hour, self._customer)
            group_values(self._hours[sign < 0], self._scan(prefix, after(prefix)), len(prefix))

    def _one(self, key: bytes) -> bytes | None:
        """The value of one key, through the scan (a query reads nothing else)."""
        found = next(iter(self._scan(key, key + b"\x00")), None)
        return None if found is None else found[1]


def group_values(by_group: ByGroup, rows: Iterable[tuple[bytes, bytes]], cut: int) -> None:
    """Add each stored value to the values of its group (its key after ``cut`` bytes)."""
    for key, raw in rows:
        by_group[key[cut:]].append(raw)


def sum_groups(
    by_group: Mapping[bytes, list[bytes]], report: str, fields: Sequence[str], split: bool
) -> Groups:
    """Each group's stored values summed field by field: values of day or month buckets, or of
    whole hours (``split``: a vector per quarter with calls, ``{quarter}:{vector};…``), each as
    ``decode_report_value`` or ``decode_split_value`` reads it.

    The vectors of every group are read at once: joined into one JSON array of integers, which
    msgspec decodes exactly at any size. When a value is not in the form this version writes
    (a format 1 hour, a vector of another version's width, a number JSON does not write that
    way), each value is decoded by those functions instead, which also name what is wrong."""
    if not by_group:
        return {}
    width = len(fields)
    laid_out = _vectors(by_group, split)
    if laid_out is not None and set(map(bytes.count, laid_out[0], repeat(b","))) <= {width - 1}:
        vectors, counts = laid_out
        try:
            numbers = _INTEGERS.decode(b"[%b]" % b",".join(vectors))
        except msgspec.MsgspecError:
            numbers = []
        if len(numbers) == len(vectors) * width:  # (a blank vector of a width-1 report reads [])
            sums: Groups = {}
            at = 0
            for group, count in zip(by_group, counts, strict=True):
                end = at + count * width
                if count == 1:  # (most groups of a short range: one bucket, one quarter)
                    sums[group.decode()] = numbers[at:end]
                else:
                    sums[group.decode()] = [
                        sum(numbers[i:end:width]) for i in range(at, at + width)
                    ]
                at = end
            return sums
    sums = {}
    for group, values in by_group.items():
        total = _sum_each(values, report, fields, split)
        if total is not None:
            sums[group.decode()] = total
    return sums


def _vectors(
    by_group: Mapping[bytes, list[bytes]], split: bool
) -> tuple[list[bytes], list[int]] | None:
    """The vectors of every group's values in group order, and how many each group has; None
    when an hour's value is not vectors of distinct quarters in order, as the state writes
    them (format 1 is one vector; anything else is left to ``decode_split_value``)."""
    if not split:
        return list(chain.from_iterable(by_group.values())), list(map(len, by_group.values()))
    hours = list(chain.from_iterable(by_group.values()))
    if not all(map(_QUARTERED.fullmatch, hours)):
        return None
    counts = [b";".join(values).count(b";") + 1 for values in by_group.values()]
    return [quarter[2:] for quarter in b";".join(hours).split(b";")], counts  # (b"2:5,0,1")


def _sum_each(
    values: list[bytes], report: str, fields: Sequence[str], split: bool
) -> list[int] | None:
    """sum_groups of one group, value by value; None when none has a call."""
    if split:
        hours = (hour_total(decode_split_value(value, report, fields)) for value in values)
        vectors = [total for total in hours if total is not None]
    else:
        vectors = [decode_report_value(value, report, fields) for value in values]
    return list(map(sum, zip(*vectors, strict=True))) if vectors else None


def merge_groups(merged: Groups, groups: Groups, sign: int = 1) -> None:
    """merged += groups (or -= when sign is -1), group by group. Takes the vectors of
    ``groups`` (new lists, used once) into ``merged`` without copying them; a sum is a new
    list."""
    get = merged.get
    combine = add if sign > 0 else sub
    for group, vector in groups.items():
        existing = get(group)
        if existing is not None:
            merged[group] = list(map(combine, existing, vector))
        else:
            merged[group] = vector if sign > 0 else [-value for value in vector]


def quarters_in_range(hour: int, start: int, end: int) -> range:
    """The quarters (0–3) of an epoch hour inside the epoch quarters [start, end)."""
    first = hour * QUARTERS_PER_HOUR
    return range(max(0, start - first), min(QUARTERS_PER_HOUR, end - first))


def after(prefix: bytes) -> bytes:
    """The smallest key above every key that starts with prefix (which ends with 0x1f)."""
    return prefix[:-1] + bytes([prefix[-1] + 1])
