"""A library's repeated warnings are held back to one per interval, and counted."""

from __future__ import annotations

import logging

import pytest

from streamagg.log_limits import RepeatLimit, limit_repeats


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
