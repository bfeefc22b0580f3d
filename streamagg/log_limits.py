"""Keep a library's repeated warnings from flooding the log during an outage.

With the broker down, aiokafka logs every failed connect, metadata update and fetch of every
client: about 200 lines a second from one worker, which buries what the operator needs (the
first error, what streamagg says it does about it) and fills disks. `RepeatLimit` lets the first
record of each kind through, then at most one per interval; the next one let through says how
many like it were held back. A kind is the logger, the level and the message's template, so
"Unable connect to node with id %s" is one kind whatever the node.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

REPEAT_INTERVAL_S = 10.0
MAX_KINDS = 1000  # (templates are few; a library that formats its own messages must not grow this)


class RepeatLimit(logging.Filter):
    """A logger filter: of the records of one kind at WARNING or above, one per interval."""

    def __init__(
        self, interval: float = REPEAT_INTERVAL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self.interval = interval
        self.clock = clock
        self._kinds: dict[tuple[str, int, str], tuple[float, int]] = {}  # → let through, held

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        kind = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        shown = self._kinds.get(kind)
        if shown is not None and now - shown[0] < self.interval:
            self._kinds[kind] = (shown[0], shown[1] + 1)
            return False
        if len(self._kinds) >= MAX_KINDS:
            self._kinds.clear()
        self._kinds[kind] = (now, 0)
        if shown is not None and shown[1]:
            held, since = shown[1], now - shown[0]
            record.msg = (
                f"{record.getMessage()} (and {held:,} more like it in the {since:.0f} s before)"
            )
            record.args = ()
        return True


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
