"""The state layer's cycles (tables/state.py, tables/commits.py): a partition's commit runs while
the next partitions fold, and never beside another of its own.

The invariants checked here, with fake transactions whose commits the test holds and releases:
- a partition's commit is in flight while the stage folds the next partition;
- a partition's next transaction is not applied before the commit before it has finished (it
  reads what that commit leaves, and its producer is free again), and sees its next offset;
- batches after a commit that failed are not applied: the partition is stopped, its next offset
  is the last committed one (recovery reads on from there);
- a rebalance waits for every commit in flight before it lets partitions go.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from streamagg.batches import BATCH_HEADERS
from streamagg.metrics import create_metrics
from streamagg.settings import Settings
from streamagg.tables.batch_log import LastBatch
from streamagg.tables.partition import OwnedPartition, Status
from streamagg.tables.state import StateLayer
from streamagg.tables.store import PartitionStore

TOPIC = "batches"


@dataclass
class Message:
    offset: int
    value: bytes = b"batch"
    headers: tuple[tuple[str, bytes], ...] = tuple(BATCH_HEADERS)


class FakeTransaction:
    def __init__(self, partition: int, journal: list[str], gate: asyncio.Event, fail: bool):
        self.partition = partition
        self.journal = journal
        self.gate = gate
        self.fail = fail
        self.changes = 1

    def consumed(self, next_offset: int, last: LastBatch | None = None) -> None:
        self.next_offset = next_offset
        self.last = last

    async def commit(self, timeout: float) -> None:
        self.journal.append(f"commit {self.partition} begins")
        await self.gate.wait()
        if self.fail:
            raise RuntimeError("the broker went away")
        self.journal.append(f"commit {self.partition} ends")


@dataclass
class Handler:
    """Folds nothing; notes each apply with the partition's next offset at that moment."""

    layer: StateLayer | None = None
    journal: list[str] = field(default_factory=list)
    committed_outcomes: list[int] = field(default_factory=list)

    async def apply(self, txn: Any, messages: Sequence[Message]) -> int:
        assert self.layer is not None
        owned = self.layer.owned[txn.partition]
        self.journal.append(f"apply {txn.partition} at {owned.next_offset}")
        await asyncio.sleep(0)  # (a fold gives the loop back between its slices)
        self.journal.append(f"applied {txn.partition}")
        return len(messages)

    def committed(self, outcome: int) -> None:
        self.committed_outcomes.append(outcome)


class IdleSweeper:
    budget = 0

    def sweep(self, txn: Any, now: float, budget: int | None = None) -> bool:
        return False


@dataclass
class Stage:
    layer: StateLayer
    handler: Handler
    gates: dict[int, asyncio.Event]
    failing: set[int]

    async def cycle(self, polled: dict[int, list[int]]) -> None:
        messages = {
            TopicPartition(TOPIC, p): [Message(o) for o in offs] for p, offs in polled.items()
        }
        await self.layer.cycles.run(self.layer.owned, messages)  # type: ignore[arg-type]


@pytest.fixture
def stage(tmp_path: Path) -> Stage:
    handler = Handler()
    layer = StateLayer(
        Settings(data_dir=tmp_path),
        create_metrics(CollectorRegistry()),
        handler,
        IdleSweeper(),  # type: ignore[arg-type]
    )
    handler.layer = layer
    layer.rebalancing = False

    async def no_lag() -> None:
        return None

    layer._set_lag = no_lag  # type: ignore[method-assign]
    gates = {p: asyncio.Event() for p in (0, 1)}
    failing: set[int] = set()
    for p in (0, 1):
        owned = OwnedPartition(p, PartitionStore(tmp_path / f"p{p}"), Status.ACTIVE)

        def transaction(changelog: str, p: int = p) -> FakeTransaction:
            gate = gates[p] = asyncio.Event() if gates[p].is_set() else gates[p]
            return FakeTransaction(p, handler.journal, gate, p in failing)

        owned.transaction = transaction  # type: ignore[method-assign]
        layer.owned[p] = owned
    return Stage(layer, handler, gates, failing)


async def test_a_partitions_commit_runs_while_the_next_partition_folds(stage: Stage) -> None:
    await stage.cycle({0: [0, 1], 1: [0]})
    journal = stage.handler.journal
    assert (
        journal.index("applied 0") < journal.index("commit 0 begins") < journal.index("applied 1")
    )
    assert len(stage.layer.cycles.commits) == 2  # both still in flight: the cycle did not wait
    stage.gates[0].set()
    stage.gates[1].set()
    await stage.layer.cycles.commits.settle_all()
    assert [stage.layer.owned[p].next_offset for p in (0, 1)] == [2, 1]
    assert sorted(stage.handler.committed_outcomes) == [1, 2]


async def test_the_next_transaction_of_a_partition_waits_for_the_commit_before_it(
    stage: Stage,
) -> None:
    await stage.cycle({0: [0, 1]})
    second = asyncio.create_task(stage.cycle({0: [2, 3]}))
    for _ in range(10):
        await asyncio.sleep(0)
    assert stage.handler.journal == ["apply 0 at 0", "applied 0", "commit 0 begins"]
    assert not second.done()
    stage.gates[0].set()
    await second
    for _ in range(3):
        await asyncio.sleep(0)
    assert stage.handler.journal[3:] == [
        "commit 0 ends",
        "apply 0 at 2",
        "applied 0",
        "commit 0 begins",
    ]
    stage.gates[0].set()
    await stage.layer.cycles.commits.settle_all()
    assert stage.layer.owned[0].next_offset == 4


async def test_batches_after_a_failed_commit_are_not_applied(stage: Stage) -> None:
    stage.failing.add(0)
    await stage.cycle({0: [0, 1], 1: [0]})
    stage.gates[0].set()
    stage.gates[1].set()
    await stage.cycle({0: [2], 1: [1]})
    owned = stage.layer.owned[0]
    assert owned.status is Status.STOPPED and "did not commit" in owned.reason
    assert owned.next_offset == 0
    assert "apply 0 at 0" in stage.handler.journal
    assert not any(line.startswith("apply 0 at 2") for line in stage.handler.journal)
    assert "apply 1 at 1" in stage.handler.journal  # the other partition goes on
    stage.gates[1].set()
    await stage.layer.cycles.commits.settle_all()


async def test_a_rebalance_waits_for_every_commit_in_flight(stage: Stage) -> None:
    await stage.cycle({0: [0], 1: [0, 1, 2]})
    revoked = asyncio.create_task(stage.layer.on_partitions_revoked([]))
    for _ in range(10):
        await asyncio.sleep(0)
    assert not revoked.done()
    stage.gates[0].set()
    stage.gates[1].set()
    await revoked
    assert sorted(stage.handler.committed_outcomes) == [1, 3]
    assert stage.layer.owned == {} and len(stage.layer.cycles.commits) == 0
