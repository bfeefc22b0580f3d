"""Noticing that the whole process stood still (SIGSTOP, a paused VM) past its group session.

Such a process has lost its partitions without knowing it yet: the group moved them on while it
stood still. It must not say it is ready on that stale ownership until its group has given it
partitions again.
"""

from __future__ import annotations

import asyncio
import logging
import time

log = logging.getLogger(__name__)

TICK_SECONDS = 0.5


class StandStill:
    """A clock that ticks every TICK_SECONDS unless the whole process stands still."""

    def __init__(self, session_seconds: float) -> None:
        self.session_seconds = session_seconds
        self.last_tick = time.monotonic()
        self._until = 0.0

    def frozen(self) -> bool:
        """Whether the process stood still past its session and has not been given its
        partitions again since (for at most two sessions)."""
        now = time.monotonic()
        if now - self.last_tick > self.session_seconds:
            log.warning(
                "state: this worker stood still for %.0f s, past its session; not ready "
                "until its group assigns it partitions again",
                now - self.last_tick,
            )
            self._until = now + 2 * self.session_seconds
        self.last_tick = now
        return now < self._until

    def reassigned(self) -> None:
        """The group has given this worker its partitions again."""
        self._until = 0.0

    async def run(self) -> None:
        while True:
            self.frozen()
            await asyncio.sleep(TICK_SECONDS)
