"""UTC time buckets (hour, day, month) and covering a query range with as few as possible."""

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


def cover(start_hour: int, end_hour: int, grains: tuple[Grain, ...]) -> list[tuple[Grain, int]]:
    """Buckets that exactly tile [start_hour, end_hour), coarsest first where they fit.

    When the finest grain cannot tile the edges (a report kept per day, asked for hours), the
    edge buckets overlap the range and the caller filters their groups by hour.
    """
    coarse_to_fine = sorted(grains, key=_size_rank, reverse=True)
    finest = coarse_to_fine[-1]
    buckets: list[tuple[Grain, int]] = []
    hour = start_hour
    while hour < end_hour:
        for grain in coarse_to_fine:
            bucket = grain.bucket(hour)
            first, last = grain.span(bucket)
            if first == hour and last <= end_hour:
                buckets.append((grain, bucket))
                hour = last
                break
        else:
            bucket = finest.bucket(hour)
            buckets.append((finest, bucket))
            hour = finest.span(bucket)[1]
    return buckets


def _size_rank(grain: Grain) -> int:
    return {"h": 0, "d": 1, "m": 2}[grain.code]
