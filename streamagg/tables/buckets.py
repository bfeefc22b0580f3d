"""UTC time buckets (hour, day, month) and covering a query range with as few as possible.

Ranges are in epoch quarter-hours: the finest time the state keeps (tables/keys.py), because
local time zones with :30 and :45 offsets begin their hours and days at UTC quarter-hours."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache


@dataclass(frozen=True)
class Grain:
    """A bucket size; its code is the one-letter tag inside table keys."""

    name: str
    code: str

    def bucket(self, epoch_hour: int) -> int:
        """Id of the bucket that holds this epoch hour."""
        if self.code == "h":
            return epoch_hour
        if self.code == "d":
            return epoch_hour // 24
        return _month_of_day(epoch_hour // 24)

    def span(self, bucket: int) -> tuple[int, int]:
        """Epoch hours [start, end) that a bucket covers."""
        if self.code == "h":
            return bucket, bucket + 1
        if self.code == "d":
            return bucket * 24, bucket * 24 + 24
        return _month_start_hour(bucket), _month_start_hour(bucket + 1)

    def quarters(self, bucket: int) -> tuple[int, int]:
        """Epoch quarters [start, end) that a bucket covers."""
        first, last = self.span(bucket)
        return first * QUARTERS_PER_HOUR, last * QUARTERS_PER_HOUR


QUARTER_SECONDS = 900
QUARTERS_PER_HOUR = 4

HOUR = Grain("hour", "h")
DAY = Grain("day", "d")
MONTH = Grain("month", "m")


@lru_cache(maxsize=8192)
def _month_of_day(epoch_day: int) -> int:
    """Month id (year * 12 + month - 1) of an epoch day."""
    moment = datetime.fromtimestamp(epoch_day * 86400, UTC)
    return moment.year * 12 + moment.month - 1


@lru_cache(maxsize=4096)
def _month_start_hour(month_id: int) -> int:
    year, month0 = divmod(month_id, 12)
    return int(datetime(year, month0 + 1, 1, tzinfo=UTC).timestamp()) // 3600


def cover(start: int, end: int, grains: tuple[Grain, ...]) -> list[tuple[Grain, int]]:
    """Buckets that tile the epoch quarters [start, end), coarsest first where they fit.

    The finest grain's buckets may overlap the range at its edges (a range starting at :30, or
    in hours of a report kept per day): the caller keeps only their quarters in the range.
    """
    coarse_to_fine = sorted(grains, key=_size_rank, reverse=True)
    fine = coarse_to_fine[-1]
    buckets: list[tuple[Grain, int]] = []
    quarter = start
    while quarter < end:
        hour = quarter // QUARTERS_PER_HOUR
        for grain in coarse_to_fine:
            bucket = grain.bucket(hour)
            first, last = grain.quarters(bucket)
            if first == quarter and last <= end:
                break
        else:
            grain, bucket = fine, fine.bucket(hour)
        buckets.append((grain, bucket))
        quarter = grain.quarters(bucket)[1]
    return buckets


@lru_cache(maxsize=1024)
def cached_cover(start: int, end: int, grains: tuple[Grain, ...]) -> tuple[tuple[Grain, int], ...]:
    """cover(), kept for the ranges asked again (a dashboard's refresh, a poll): a 13-month
    cover of days costs ~1 ms of Python."""
    return tuple(cover(start, end, grains))


# A bucket read for a range: (+1 or -1, grain, bucket, first quarter, end quarter). Of a bucket
# of the finest grain only its quarters in [first, end) count; a coarser one counts whole.
Tile = tuple[int, Grain, int, int, int]
# Tiles read in one step (a bucket less the parts of it outside the range: one moment's state).
Step = tuple[Tile, ...]


@lru_cache(maxsize=1024)
def signed_cover(
    start: int, end: int, grains: tuple[Grain, ...], safe_from: int
) -> tuple[Step, ...]:
    """Steps whose tiles sum to exactly the epoch quarters [start, end), with the fewest tiles:
    the cover above, or at an edge of the range a coarser bucket less its part outside the
    range (a local month that ends at 18:15 UTC: its UTC month less 6 hours, instead of 29
    days and 18 hours). Sums are exact integers, so a difference is exact when the bucket and
    what is taken from it are read at one moment (one step). Only buckets that start at or
    after the quarter ``safe_from`` are taken apart: before it, retention may have deleted
    finer buckets that a coarser one still holds.

    Kept for the ranges asked again: working it out costs 1-2.5 ms of Python (the ways to read
    each edge, each a cover), more than reading a small answer."""
    best: list[list[Tile]] | None = None
    for head in _edges(start, end, grains, safe_from, at_start=True):
        for tail in _edges(start, end, grains, safe_from, at_start=False):
            if head.stop > tail.start:
                continue  # (they overlap: each alone already reads the whole range)
            middle = [[tile] for tile in _tiles(head.stop, tail.start, grains, +1)]
            steps = head.steps + middle + tail.steps
            if best is None or sum(map(len, steps)) < sum(map(len, best)):
                best = steps  # (the plain cover comes first: it wins ties)
    assert best is not None
    return tuple(tuple(step) for step in best)


@dataclass(frozen=True)
class _Edge:
    """How one edge of the range is read: ``steps`` cover the quarters [start, stop)."""

    start: int
    stop: int
    steps: list[list[Tile]]


def _edges(
    start: int, end: int, grains: tuple[Grain, ...], safe_from: int, at_start: bool
) -> list[_Edge]:
    """The ways to read one edge: nothing special (an empty edge), or a coarser bucket holding
    the edge, less its part outside the range."""
    edges = [_Edge(start, start, []) if at_start else _Edge(end, end, [])]  # (plain)
    quarter = start if at_start else end - 1
    for grain in coarser(grains):
        bucket = grain.bucket(quarter // QUARTERS_PER_HOUR)
        first, last = grain.quarters(bucket)
        if first < safe_from or (first >= start and last <= end):
            continue  # (not safe to take apart, or inside the range: the plain cover uses it)
        outside = _tiles(first, max(first, start), grains, -1)
        outside += _tiles(min(last, end), last, grains, -1)
        step = [(+1, grain, bucket, first, last), *outside]
        edges.append(_Edge(max(first, start), min(last, end), [step]))
    return edges


def _tiles(start: int, end: int, grains: tuple[Grain, ...], sign: int) -> list[Tile]:
    """The plain cover of [start, end) as tiles of one sign."""
    tiles: list[Tile] = []
    for grain, bucket in cached_cover(start, end, grains):
        first, last = grain.quarters(bucket)
        tiles.append((sign, grain, bucket, max(first, start), min(last, end)))
    return tiles


def finest(grains: tuple[Grain, ...]) -> Grain:
    return min(grains, key=_size_rank)


def coarser(grains: tuple[Grain, ...]) -> tuple[Grain, ...]:
    """Every grain but the finest, finer first."""
    fine = finest(grains)
    return tuple(sorted((grain for grain in grains if grain != fine), key=_size_rank))


def _size_rank(grain: Grain) -> int:
    return {"h": 0, "d": 1, "m": 2}[grain.code]
