"""Local periods of IANA zones (reports/periods.py): every quarter-hour in exactly one local
hour, day and month, whose first instant is found independently by walking back."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from streamagg.reports.periods import (
    find_zone,
    hour_periods,
    label,
    month_range,
    period_start,
    zone_names,
)

# Zones in use since 2000 all keep their offsets and changes on quarter-hours. Every name the
# API accepts (the database's, without posix/ and right/ copies and the machine's `localtime`,
# which some systems list and hypothesis once drew).
ZONES = zone_names()
FROM_2000 = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp())
TO_2040 = int(datetime(2040, 1, 1, tzinfo=UTC).timestamp())


def wall_key(moment: int, zone: str, granularity: str) -> tuple[object, ...]:
    local = datetime.fromtimestamp(moment, ZoneInfo(zone))
    if granularity == "hour":
        return (local.date(), local.hour, local.utcoffset())
    if granularity == "day":
        return (local.date(),)
    return (local.year, local.month)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(ZONES),
    st.integers(FROM_2000, TO_2040),
    st.sampled_from(["hour", "day", "month"]),
)
def test_a_period_starts_at_its_first_quarter(zone: str, moment: int, granularity: str) -> None:
    start = period_start(moment, find_zone(zone), granularity)  # type: ignore[arg-type]
    assert start % 900 == 0 and start <= moment
    assert wall_key(start, zone, granularity) == wall_key(moment, zone, granularity)
    assert wall_key(start - 900, zone, granularity) != wall_key(moment, zone, granularity)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(ZONES), st.integers(FROM_2000 // 3600, TO_2040 // 3600))
def test_hour_periods_are_the_periods_of_its_quarters(zone_name: str, hour: int) -> None:
    zone = find_zone(zone_name)
    assert zone is not None
    for granularity in ("hour", "day", "month"):
        got = hour_periods(hour, zone, granularity)
        assert got == tuple(
            period_start(hour * 3600 + q * 900, zone, granularity) for q in range(4)
        )


def test_labels_carry_the_offset_of_their_instant() -> None:
    new_york = find_zone("America/New_York")
    assert new_york is not None
    fall_back = int(datetime(2026, 11, 1, 6, tzinfo=UTC).timestamp())  # 01:00 EST, again
    assert label(fall_back, new_york) == "2026-11-01T01:00:00-05:00"
    assert label(fall_back - 3600, new_york) == "2026-11-01T01:00:00-04:00"
    assert label(fall_back, find_zone("UTC")) == "2026-11-01T06:00:00Z"  # type: ignore[arg-type]
    kathmandu = find_zone("Asia/Kathmandu")
    assert kathmandu is not None
    assert label(int(datetime(2026, 11, 25, 0, 15, tzinfo=UTC).timestamp()), kathmandu) == (
        "2026-11-25T06:00:00+05:45"
    )


def test_days_of_23_and_25_hours_and_a_day_without_midnight() -> None:
    new_york = find_zone("America/New_York")
    assert new_york is not None
    spring = month_range(2026, 3, new_york)
    autumn = month_range(2026, 11, new_york)
    assert spring[1] - spring[0] == 31 * 86400 - 3600
    assert autumn[1] - autumn[0] == 30 * 86400 + 3600
    # Santiago jumps from 24:00 to 01:00 on 6 September 2026: that day begins at the jump.
    santiago = find_zone("America/Santiago")
    assert santiago is not None
    jump = int(datetime(2026, 9, 6, 4, tzinfo=UTC).timestamp())
    assert period_start(jump + 7200, santiago, "day") == jump
    assert label(jump, santiago) == "2026-09-06T01:00:00-03:00"


def test_find_zone_knows_iana_names_only() -> None:
    assert find_zone("Asia/Kolkata") is not None
    for name in (
        "",
        "Nowhere/City",
        "../../etc/passwd",
        "Asia/../UTC",
        "a" * 100,
        "localtime",
        "posix/America/New_York",
        "/usr/share/zoneinfo/UTC",
    ):
        assert find_zone(name) is None


CLOCK_CHANGERS = [
    "America/New_York",
    "America/St_Johns",  # -03:30 / -02:30
    "America/Santiago",  # changes at 24:00
    "America/Havana",  # changes at 00:00 / 01:00
    "Asia/Gaza",
    "Asia/Beirut",  # changes at 00:00
    "Africa/Cairo",
    "Africa/Casablanca",  # two changes around Ramadan
    "Australia/Adelaide",  # +09:30 / +10:30
    "Australia/Lord_Howe",  # moves by 30 minutes
    "Pacific/Chatham",  # +12:45 / +13:45
    "Europe/London",
]


def test_every_quarter_around_each_clock_change_of_2026() -> None:
    """Each zone's 2026 changes (found by scanning hours), every quarter two days around them:
    the period start is the first quarter of the period holding the instant."""
    checked = 0
    year = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp()) // 3600
    for name in CLOCK_CHANGERS:
        zone, info = find_zone(name), ZoneInfo(name)
        assert zone is not None
        offsets = [
            datetime.fromtimestamp(h * 3600, info).utcoffset() for h in range(year, year + 8761)
        ]
        changes = [year + i for i in range(1, len(offsets)) if offsets[i] != offsets[i - 1]]
        assert changes, name
        for change in changes:
            for moment in range((change - 48) * 3600, (change + 48) * 3600, 900):
                for granularity in ("hour", "day", "month"):
                    start = period_start(moment, zone, granularity)
                    key = wall_key(moment, name, granularity)
                    assert wall_key(start, name, granularity) == key
                    assert wall_key(start - 900, name, granularity) != key
                    checked += 1
    assert checked > 10_000
