"""Local time (SPEC §6): the hours, days and months of an IANA zone, as UTC instants.

The state keeps every call at the UTC quarter-hour of its start. Every offset an IANA zone has
used since the 1970s is a multiple of 15 minutes and changes at a quarter-hour, so a local hour,
day or month is a whole number of quarters, and a report in any zone is exact: its range and
its periods are sets of quarters.

A period is named by its first instant, written in the zone with the offset in force at that
instant (``2026-11-25T08:00:00-05:00``; UTC keeps ``Z``). The hour repeated when clocks fall
back is two periods with two offsets; a local day of 23 or 25 hours is one period; a day whose
midnight does not exist (clocks jump at 24:00) begins at the jump.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from streamagg.tables.buckets import MONTH, QUARTER_SECONDS, QUARTERS_PER_HOUR


@dataclass(frozen=True)
class Zone:
    name: str
    info: tzinfo

    @property
    def is_utc(self) -> bool:
        return self.name == "UTC"


UTC_ZONE = Zone("UTC", UTC)


@lru_cache(maxsize=1)
def zone_names() -> list[str]:
    """Every zone name `tz` takes, sorted (the IANA names and their old aliases)."""
    names = available_timezones() | {"UTC"}
    return sorted(n for n in names if not n.startswith(("posix/", "right/")) and n != "localtime")


@lru_cache(maxsize=1)
def _known() -> frozenset[str]:
    return frozenset(zone_names())


def find_zone(name: str) -> Zone | None:
    """The zone of that name (one of zone_names(): never a path), or None when there is none."""
    if name == "UTC":
        return UTC_ZONE
    if name not in _known():
        return None
    return _zone(name)


@lru_cache(maxsize=1024)
def _zone(name: str) -> Zone | None:
    try:
        return Zone(name, ZoneInfo(name))
    except (ZoneInfoNotFoundError, ValueError, OSError):  # (a name the database lists but lacks)
        return None


def period_start(moment: int, zone: Zone, granularity: str) -> int:
    """The first instant (epoch seconds) of the local hour, day or month holding ``moment``.

    A local hour is the quarters with the same wall-clock date, hour and offset (so the hour
    repeated by a fall-back is two); a day the quarters of one wall-clock date, a month those
    of one wall-clock month."""
    if zone.is_utc:
        return _utc_period_start(moment, granularity)
    local = datetime.fromtimestamp(moment, zone.info)
    if granularity == "hour":
        # (keeps the instant's fold: the second of a repeated hour has the second's offset)
        floor = local.replace(minute=0, second=0, microsecond=0)
    elif granularity == "day":
        floor = local.replace(hour=0, minute=0, second=0, microsecond=0, fold=0)
    else:
        floor = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0, fold=0)
    # A wall time skipped by a jump of the clocks reads with the offset before the jump: when
    # the jump is at the period's wall-clock start, that is the jump's instant, as wanted.
    start = int(floor.timestamp())
    key = _period_key(local, granularity)
    if (
        start <= moment
        and _key_at(start, zone, granularity) == key
        and _key_at(start - QUARTER_SECONDS, zone, granularity) != key
    ):
        return start
    # (a clock change inside the period's first wall-clock hour: Lord Howe's 30 minutes)
    start = moment - moment % QUARTER_SECONDS
    while _key_at(start - QUARTER_SECONDS, zone, granularity) == key:
        start -= QUARTER_SECONDS
    return start


def _key_at(moment: int, zone: Zone, granularity: str) -> tuple[object, ...]:
    return _period_key(datetime.fromtimestamp(moment, zone.info), granularity)


def _period_key(local: datetime, granularity: str) -> tuple[object, ...]:
    if granularity == "hour":
        return (local.year, local.month, local.day, local.hour, local.utcoffset())
    if granularity == "day":
        return (local.year, local.month, local.day)
    return (local.year, local.month)


def _utc_period_start(moment: int, granularity: str) -> int:
    if granularity == "hour":
        return moment - moment % 3600
    if granularity == "day":
        return moment - moment % 86400
    return MONTH.span(MONTH.bucket(moment // 3600))[0] * 3600


@lru_cache(maxsize=262_144)
def hour_periods(hour: int, zone: Zone, granularity: str) -> tuple[int, int, int, int]:
    """The period starts of the four quarters of an epoch hour (equal unless the zone's
    periods begin inside this UTC hour)."""
    first = hour * 3600
    starts = [
        period_start(first + quarter * QUARTER_SECONDS, zone, granularity)
        for quarter in range(QUARTERS_PER_HOUR)
    ]
    return starts[0], starts[1], starts[2], starts[3]


def label(moment: int, zone: Zone) -> str:
    """An instant as the API writes a period: local time with the offset, or Z in UTC."""
    if zone.is_utc:
        return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return datetime.fromtimestamp(moment, zone.info).isoformat()


def month_range(year: int, month: int, zone: Zone) -> tuple[int, int]:
    """The local month [first instant, first instant of the next) in epoch seconds."""
    following = date(year + month // 12, month % 12 + 1, 1)
    return day_start(date(year, month, 1), zone), day_start(following, zone)


def day_start(day: date, zone: Zone) -> int:
    """The first instant of a local day."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=zone.info)
    return int(midnight.timestamp())


def local_wall_time(text_naive: datetime, zone: Zone) -> int:
    """A wall time without offset read in the zone (epoch seconds): the first of a repeated
    time; a skipped one with the offset before the jump (02:00 of a spring-forward day of New
    York is the jump's instant)."""
    return int(text_naive.replace(tzinfo=zone.info, fold=0).timestamp())
