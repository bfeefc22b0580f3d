"""Keep a library's repeated warnings from flooding the log during an outage.

With the broker down, aiokafka logs every failed connect, metadata update and fetch of every
client: about 200 lines a second from one worker, which buries what the operator needs (the
first error, what streamagg says it does about it) and fills disks. `RepeatLimit` lets the first
record of each kind through, then at most one per interval; the next one let through says how
many like it were held back. A kind is the logger, the level and the message's template, so
"Unable connect to node with id %s" is one kind whatever the node. When an outage ends, no next
record comes: `report_held_repeats` writes the last one held of each kind, with the count, once
its interval is over, so the log says when the trouble stopped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

REPEAT_INTERVAL_S = 10.0
MAX_KINDS = 1000  # (templates are few; a library that formats its own messages must not grow this)


@dataclass
class _Kind:
    shown_at: float  # when the last record of the kind was let through
    held: int = 0  # records held back since
    last: logging.LogRecord | None = None  # the last of them


class RepeatLimit(logging.Filter):
    """A logger filter: of the records of one kind at WARNING or above, one per interval."""

    def __init__(
        self, interval: float = REPEAT_INTERVAL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.interval = interval
        self.clock = clock
        self._kinds: dict[tuple[str, int, str], _Kind] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or getattr(record, "repeat_summary", False):
            return True
        kind = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        shown = self._kinds.get(kind)
        if shown is not None and now - shown.shown_at < self.interval:
            shown.held += 1
            shown.last = record
            return False
        if len(self._kinds) >= MAX_KINDS:
            self._kinds.clear()
        self._kinds[kind] = _Kind(now)
        if shown is not None and shown.held:
            _say_held(record, shown.held, now - shown.shown_at)
        return True

    def flush(self) -> list[logging.LogRecord]:
        """The last record held back of each kind whose interval is over, each saying how many
        were held (their kind's count starts again). Nothing arrived to carry the count: the
        trouble stopped, or comes slower than one per interval."""
        now = self.clock()
        due = []
        for kind in self._kinds.values():
            if kind.last is not None and now - kind.shown_at >= self.interval:
                record = kind.last
                _say_held(record, kind.held - 1, now - kind.shown_at)
                record.repeat_summary = True  # (let through when it is handled again)
                due.append(record)
                kind.shown_at, kind.held, kind.last = now, 0, None
        return due


def _say_held(record: logging.LogRecord, held: int, since: float) -> None:
    if held:
        said = record.getMessage()
        record.msg = f"{said} (and {held:,} more like it in the {since:.0f} s before)"
        record.args = ()


async def report_held_repeats(limit: RepeatLimit) -> None:
    """Log what `limit` held back and nothing carried, once per interval (a background task)."""
    while True:
        await asyncio.sleep(limit.interval)
        for record in limit.flush():
            logging.getLogger(record.name).handle(record)


def limit_repeats(library: str, interval: float = REPEAT_INTERVAL_S) -> RepeatLimit:
    """Put one `RepeatLimit` on the library's logger and every logger below it that exists
    now (a filter on a logger does not apply to its children; libraries make their loggers as
    their modules are imported, so call this once they are)."""
    limit = RepeatLimit(interval)
    names = [library] + [
        name for name in logging.root.manager.loggerDict if name.startswith(library + ".")
    ]
    for name in names:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, RepeatLimit)]:
            logger.removeFilter(old)
        logger.addFilter(limit)
    return limit
