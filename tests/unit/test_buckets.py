"""UTC buckets: grains, spans, and covering a range with the fewest buckets (tables/buckets.py)."""

from __future__ import annotations

import collections
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamagg.tables.buckets import DAY, HOUR, MONTH, Grain, cover, finest, signed_cover

PROPS = settings(max_examples=200, deadline=None)


def hour_of(year: int, month: int, day: int = 1, hour: int = 0) -> int:
    return int(datetime(year, month, day, hour, tzinfo=UTC).timestamp()) // 3600


def moment(epoch_hour: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(hours=epoch_hour)


def month_id(year: int, month: int) -> int:
    return year * 12 + month - 1


# ---------------------------------------------------------------- grains


def test_hour_and_day_buckets() -> None:
    h = hour_of(2026, 11, 25, 13)
    assert HOUR.bucket(h) == h
    assert HOUR.span(h) == (h, h + 1)
    day = DAY.bucket(h)
    assert DAY.span(day) == (hour_of(2026, 11, 25), hour_of(2026, 11, 26))
    assert DAY.bucket(hour_of(2026, 11, 25, 0)) == day == DAY.bucket(hour_of(2026, 11, 25, 23))
    assert DAY.bucket(hour_of(2026, 11, 26, 0)) == day + 1


@pytest.mark.parametrize(
    ("year", "month", "days"),
    [
        (2026, 1, 31),
        (2026, 2, 28),
        (2024, 2, 29),
        (2000, 2, 29),
        (2100, 2, 28),
        (2026, 4, 30),
        (2026, 12, 31),
    ],
)
def test_month_spans(year: int, month: int, days: int) -> None:
    first = hour_of(year, month)
    bucket = MONTH.bucket(first)
    assert bucket == month_id(year, month)
    start, end = MONTH.span(bucket)
    assert start == first
    assert end - start == 24 * days
    next_year, next_month = (year + 1, 1) if month == 12 else (year, month + 1)
    assert end == hour_of(next_year, next_month)
    assert MONTH.bucket(end - 1) == bucket
    assert MONTH.bucket(end) == month_id(next_year, next_month)


def test_month_bucket_across_a_year_boundary() -> None:
    assert MONTH.bucket(hour_of(2026, 12, 31, 23)) == month_id(2026, 12)
    assert MONTH.bucket(hour_of(2027, 1, 1, 0)) == month_id(2027, 1) == month_id(2026, 12) + 1
    assert MONTH.span(month_id(2026, 12)) == (hour_of(2026, 12, 1), hour_of(2027, 1, 1))


@PROPS
@given(st.integers(min_value=0, max_value=hour_of(2100, 1)), st.sampled_from([HOUR, DAY, MONTH]))
def test_every_hour_lies_in_the_span_of_its_bucket(epoch_hour: int, grain: Grain) -> None:
    start, end = grain.span(grain.bucket(epoch_hour))
    assert start <= epoch_hour < end
    assert moment(start).minute == 0
    if grain is not HOUR:
        assert moment(start).hour == 0
    if grain is MONTH:
        assert moment(start).day == 1
        assert (moment(start).year, moment(start).month) == (
            moment(epoch_hour).year,
            moment(epoch_hour).month,
        )


# ---------------------------------------------------------------- cover


def expected_cover(start: int, end: int, grains: tuple[Grain, ...]) -> list[tuple[Grain, int]]:
    """Greedy tiling of epoch quarters written with calendar arithmetic: a month where a whole
    month fits, else a day where a whole day fits, else an hour where it fits; else (the edges
    of a range, at a quarter-hour or in hours of a day-only grain set) the finest grain's
    bucket that holds the quarter."""
    out: list[tuple[Grain, int]] = []
    quarter = start
    while quarter < end:
        at = datetime.fromtimestamp(quarter * 900, UTC)
        hour = quarter // 4
        if at.minute == 0 and MONTH in grains and at.day == 1 and at.hour == 0:
            nxt = datetime(at.year + at.month // 12, at.month % 12 + 1, 1, tzinfo=UTC)
            month_end = int(nxt.timestamp()) // 900
            if month_end <= end:
                out.append((MONTH, month_id(at.year, at.month)))
                quarter = month_end
                continue
        if at.minute == 0 and DAY in grains and at.hour == 0 and quarter + 96 <= end:
            out.append((DAY, hour // 24))
            quarter += 96
            continue
        if at.minute == 0 and HOUR in grains and quarter + 4 <= end:
            out.append((HOUR, hour))
            quarter += 4
            continue
        if HOUR in grains:
            out.append((HOUR, hour))
            quarter = (hour + 1) * 4
        else:
            out.append((DAY, hour // 24))  # no hour grain: the day that holds this hour
            quarter = (hour // 24 + 1) * 96
    return out


GRAIN_SETS = [(HOUR, DAY, MONTH), (MONTH, DAY, HOUR), (DAY, MONTH), (DAY,), (HOUR,), (HOUR, DAY)]
hours_2020s = st.integers(min_value=hour_of(2019, 12, 1), max_value=hour_of(2030, 2, 1))
quarters_2020s = st.integers(min_value=hour_of(2019, 12, 1) * 4, max_value=hour_of(2030, 2, 1) * 4)


@PROPS
@given(quarters_2020s, st.integers(min_value=0, max_value=96 * 500), st.sampled_from(GRAIN_SETS))
def test_cover_tiles_the_range(start: int, length: int, grains: tuple[Grain, ...]) -> None:
    end = start + length
    buckets = cover(start, end, grains)
    spans = [tuple(4 * hour for hour in grain.span(bucket)) for grain, bucket in buckets]
    assert buckets == expected_cover(start, end, grains)
    assert all(grain in grains for grain, _ in buckets)
    # consecutive, never overlapping
    for (_, previous_end), (next_start, _) in itertools.pairwise(spans):
        assert previous_end == next_start
    if not spans:
        assert length == 0
        return
    if HOUR in grains and start % 4 == 0 and end % 4 == 0:
        assert spans[0][0] == start and spans[-1][1] == end  # exact
    else:
        assert spans[0][0] <= start < spans[0][1]  # the edges may overlap the range
        assert spans[-1][0] < end <= spans[-1][1]
        edge = 4 if HOUR in grains else 96  # by less than one bucket of the finest grain
        assert spans[0][0] > start - edge and spans[-1][1] < end + edge
    # only the finest grain's buckets overlap the range
    fine = min(grains, key=lambda grain: (grain is not HOUR, grain is MONTH))
    for (grain, _), (first, last) in zip(buckets, spans, strict=True):
        if first < start or last > end:
            assert grain == fine


@PROPS
@given(hours_2020s, st.integers(min_value=1, max_value=24 * 400))
def test_cover_hours_in_the_range_each_covered_once(start: int, length: int) -> None:
    end = start + length
    covered = [
        hour
        for grain, bucket in cover(start * 4, end * 4, (HOUR, DAY, MONTH))
        for hour in range(*grain.span(bucket))
    ]
    assert covered == list(range(start, end))


def cover_hours(start: int, end: int, grains: tuple[Grain, ...]) -> list[tuple[Grain, int]]:
    """cover() of the epoch hours [start, end)."""
    return cover(start * 4, end * 4, grains)


def test_cover_a_range_at_half_past_reads_its_edge_hours_whole() -> None:
    """A day of Asia/Kolkata (UTC 18:30 to 18:30): the two edge hours overlap it by half."""
    start = hour_of(2026, 11, 24, 18) * 4 + 2
    end = start + 96
    first = hour_of(2026, 11, 24, 18)
    assert cover(start, end, (HOUR, DAY, MONTH)) == [(HOUR, first + i) for i in range(25)]


def test_cover_a_whole_month_is_one_bucket() -> None:
    assert cover_hours(hour_of(2024, 2), hour_of(2024, 3), (HOUR, DAY, MONTH)) == [
        (MONTH, month_id(2024, 2))
    ]
    assert cover_hours(hour_of(2026, 12), hour_of(2027, 1), (DAY, MONTH)) == [
        (MONTH, month_id(2026, 12))
    ]


def test_cover_a_year_across_new_year() -> None:
    start, end = hour_of(2026, 11, 30, 22), hour_of(2027, 2, 2, 1)
    assert cover_hours(start, end, (HOUR, DAY, MONTH)) == [
        (HOUR, start),
        (HOUR, start + 1),
        (MONTH, month_id(2026, 12)),
        (MONTH, month_id(2027, 1)),
        (DAY, hour_of(2027, 2, 1) // 24),
        (HOUR, hour_of(2027, 2, 2, 0)),
    ]


def test_cover_without_month_grain_uses_days() -> None:
    start, end = hour_of(2026, 3, 1), hour_of(2026, 3, 4)
    assert cover_hours(start, end, (HOUR, DAY)) == [(DAY, start // 24 + i) for i in range(3)]


def test_cover_day_only_report_overlaps_at_the_edges() -> None:
    start, end = hour_of(2026, 11, 25, 5), hour_of(2026, 11, 27, 3)
    day = hour_of(2026, 11, 25) // 24
    assert cover_hours(start, end, (DAY,)) == [(DAY, day), (DAY, day + 1), (DAY, day + 2)]
    # a few hours inside one day: that day alone
    assert cover_hours(start, start + 3, (DAY,)) == [(DAY, day)]


def test_cover_of_an_empty_range_is_empty() -> None:
    h = hour_of(2026, 11, 25)
    assert cover_hours(h, h, (HOUR, DAY, MONTH)) == []
    assert cover_hours(h, h - 5, (DAY,)) == []


@PROPS
@given(
    quarters_2020s,
    st.integers(min_value=0, max_value=96 * 500),
    st.sampled_from(GRAIN_SETS),
    st.integers(min_value=-96 * 40, max_value=96 * 40),
)
def test_signed_cover_counts_each_quarter_of_the_range_once(
    start: int, length: int, grains: tuple[Grain, ...], safe_shift: int
) -> None:
    """Added and taken-away tiles net to exactly the range's quarters, never in more tiles than
    the plain cover, and only buckets from ``safe_from`` on are taken apart."""
    end = start + length
    safe_from = start + safe_shift
    steps = signed_cover(start, end, grains, safe_from)
    net: collections.Counter[int] = collections.Counter()
    fine = finest(grains)
    for step in steps:
        for sign, grain, bucket, first, last in step:
            span = tuple(4 * hour for hour in grain.span(bucket))
            if grain != fine:
                assert (first, last) == span  # (a coarser bucket counts whole)
            assert span[0] <= first <= last <= span[1]
            for quarter in range(first, last):
                net[quarter] += sign
            if sign > 0 and grain != fine and (span[0] < start or span[1] > end):
                assert span[0] >= safe_from, "a bucket before safe_from taken apart"
    assert +net == collections.Counter(range(start, end))
    assert -net == collections.Counter()
    assert sum(map(len, steps)) <= len(cover(start, end, grains))
    if safe_from >= end:  # (nothing may be taken apart: the plain cover, tile by tile)
        assert [[(grain, bucket) for _, grain, bucket, _, _ in step] for step in steps] == [
            [tile] for tile in cover(start, end, grains)
        ]
