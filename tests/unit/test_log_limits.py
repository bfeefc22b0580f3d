"""A library's repeated warnings are held back to one per interval, and counted."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from streamagg.log_limits import RepeatLimit, limit_repeats, report_held_repeats


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def record(
    msg: str, *args: object, level: int = logging.ERROR, name: str = "lib"
) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_one_record_of_a_kind_per_interval_and_the_next_says_how_many_were_held() -> None:
    clock = Clock()
    limit = RepeatLimit(interval=10, clock=clock)
    let_through = []
    for second in range(25):
        clock.now = 100.0 + second
        for node in (1, 2):
            rec = record("Unable connect to node with id %s: %s", node, "refused")
            if limit.filter(rec):
                let_through.append((second, rec.getMessage()))
    assert let_through == [
        (0, "Unable connect to node with id 1: refused"),
        (10, "Unable connect to node with id 1: refused (and 19 more like it in the 10 s before)"),
        (20, "Unable connect to node with id 1: refused (and 19 more like it in the 10 s before)"),
    ]


def test_kinds_are_apart_by_logger_level_and_template() -> None:
    limit = RepeatLimit(interval=10, clock=Clock())
    records = [
        record("failed fetch from %s", 1),
        record("failed fetch from %s", 1, name="lib.fetcher"),
        record("failed fetch from %s", 1, level=logging.WARNING),
        record("metadata update failed"),
    ]
    assert [limit.filter(r) for r in records] == [True, True, True, True]
    assert [limit.filter(r) for r in records] == [False, False, False, False]


def test_when_the_trouble_stops_the_last_record_held_comes_out_with_the_count() -> None:
    clock = Clock()
    limit = RepeatLimit(interval=10, clock=clock)
    first = record("Unable connect to node with id %s", 1)
    assert limit.filter(first)
    held = [record("Unable connect to node with id %s", node) for node in (2, 3, 4)]
    for rec in held:
        clock.now += 1
        assert not limit.filter(rec)
    clock.now = 109.9
    assert limit.flush() == []  # (the interval is not over: a next record may still carry it)
    clock.now = 110.0
    [summary] = limit.flush()
    assert summary is held[-1]  # (its own time: when the trouble was last seen)
    assert summary.getMessage() == (
        "Unable connect to node with id 4 (and 2 more like it in the 10 s before)"
    )
    assert limit.filter(summary)  # (let through when its logger handles it)
    assert limit.flush() == []  # (said once)
    assert not limit.filter(record("Unable connect to node with id %s", 5))  # (one per interval)


def test_a_single_record_held_comes_out_as_it_was() -> None:
    clock = Clock()
    limit = RepeatLimit(interval=10, clock=clock)
    assert limit.filter(record("fetch failed: %s", "timeout"))
    clock.now += 5
    assert not limit.filter(record("fetch failed: %s", "reset"))
    clock.now += 10
    [summary] = limit.flush()
    assert summary.getMessage() == "fetch failed: reset"


async def test_the_background_task_logs_what_was_held(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("heldlib")
    limit = limit_repeats("heldlib", interval=0.05)
    task = asyncio.create_task(report_held_repeats(limit))
    try:
        with caplog.at_level(logging.WARNING, logger="heldlib"):
            for n in range(5):
                logger.warning("Unable to update metadata from %s", n)
            await asyncio.sleep(0.2)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        logger.removeFilter(limit)
    messages = [r.getMessage() for r in caplog.records if r.name == "heldlib"]
    assert messages[0] == "Unable to update metadata from 0"
    assert messages[1].startswith("Unable to update metadata from 4 (and 3 more like it in the")
    assert len(messages) == 2


@pytest.mark.parametrize("level", [logging.INFO, logging.DEBUG])
def test_records_below_warning_all_pass(level: int) -> None:
    limit = RepeatLimit(interval=10, clock=Clock())
    assert all(limit.filter(record("joined group %s", n, level=level)) for n in range(50))


def test_the_limit_covers_the_library_loggers_that_exist(caplog: pytest.LogCaptureFixture) -> None:
    child = logging.getLogger("somelib.consumer.fetcher")
    limit_repeats("somelib")
    limit_repeats("somelib")  # (again: still one filter per logger)
    assert len(child.filters) == 1
    with caplog.at_level(logging.WARNING):
        for _ in range(100):
            child.error("Failed fetch messages from %s", 1)
            logging.getLogger("somelib").warning("Unable to update metadata")
    assert len(caplog.records) == 2
