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
            first, last = grain.span(bucket)
            if first * QUARTERS_PER_HOUR == quarter and last * QUARTERS_PER_HOUR <= end:
                break
        else:
            grain, bucket = fine, fine.bucket(hour)
        buckets.append((grain, bucket))
        quarter = grain.span(bucket)[1] * QUARTERS_PER_HOUR
    return buckets


def finest(grains: tuple[Grain, ...]) -> Grain:
    return min(grains, key=_size_rank)


def coarser(grains: tuple[Grain, ...]) -> tuple[Grain, ...]:
    """Every grain but the finest, finer first."""
    fine = finest(grains)
    return tuple(sorted((grain for grain in grains if grain != fine), key=_size_rank))


def _size_rank(grain: Grain) -> int:
    return {"h": 0, "d": 1, "m": 2}[grain.code]
