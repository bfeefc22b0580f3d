"""Each partition's commits in flight: one at a time per partition, overlapping other work.

A transaction's commit is mostly waiting (its changelog records reach the broker, then the
transaction's end), while folding the next partition's batches is all CPU. The state layer
therefore starts a partition's commit as soon as its fold is done and folds the other
partitions meanwhile, also across cycles. A partition's next transaction waits for the one
before it (``settled``): it reads the state that commit leaves in the local copy, it must not
begin while its producer is still inside a transaction, and it must not be applied at all when
that commit failed (the partition is stopped then). Rebalances and shutdown settle every
partition first (``settle_all``) under the state layer's lock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


class CommitChains:
    """The commit in flight of each partition (at most one)."""

    def __init__(self) -> None:
        self._in_flight: dict[int, asyncio.Task[None]] = {}

    def start(self, partition: int, commit: Coroutine[Any, Any, None]) -> None:
        """Run ``commit`` (which handles its own failure: it never raises) in the background.
        The caller has settled the partition before."""
        assert partition not in self._in_flight, f"partition {partition} has a commit in flight"
        self._in_flight[partition] = asyncio.get_running_loop().create_task(commit)

    async def settled(self, partition: int) -> None:
        """Wait for the partition's commit in flight, if any."""
        task = self._in_flight.get(partition)
        if task is not None:
            # (asyncio.wait: a waiter cancelled leaves the commit running, still tracked here)
            await asyncio.wait((task,))
            self._in_flight.pop(partition, None)

    async def settle_all(self) -> None:
        """Wait for every commit in flight."""
        if self._in_flight:
            await asyncio.wait(tuple(self._in_flight.values()))
            self._in_flight.clear()

    def __len__(self) -> int:
        return len(self._in_flight)
