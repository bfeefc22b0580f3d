"""What the state layer says about readiness and who answers a customer (tables/state.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from streamagg.metrics import create_metrics
from streamagg.reports import REPORTS
from streamagg.settings import Settings
from streamagg.tables.assignor import Ownership
from streamagg.tables.partition import OwnedPartition, Status
from streamagg.tables.retention import RetentionSweeper
from streamagg.tables.state import NotOwner, StateLayer, Unavailable
from streamagg.tables.store import PartitionStore

ME, OTHER = "http://me:6066", "http://other:6066"


@pytest.fixture
def layer(tmp_path: Path) -> StateLayer:
    settings = Settings(web_host="me", web_port=6066, data_dir=tmp_path)
    state = StateLayer(
        settings, create_metrics(CollectorRegistry()), None, RetentionSweeper(REPORTS, 400, 3600)
    )  # type: ignore[arg-type]
    state.consumer = object()  # type: ignore[assignment]
    state.rebalancing = False
    return state


def owning(layer: StateLayer, owners: dict[int, str], active: dict[int, Status], tmp: Path) -> None:
    layer.assignor.ownership = Ownership(1, owners, frozenset(active), frozenset())
    for number, status in active.items():
        layer.owned[number] = OwnedPartition(number, PartitionStore(tmp / f"p{number}"), status)


def test_ready_when_every_partition_given_to_this_worker_is_active(
    layer: StateLayer, tmp_path: Path
) -> None:
    owning(layer, {0: ME, 1: OTHER}, {0: Status.ACTIVE}, tmp_path)
    assert layer.readiness() == (True, "ready")
    assert list(layer.reader(0).scan(b"R", b"S")) == []
    with pytest.raises(NotOwner):
        layer.reader(1)
    assert layer.owner_url(1) == OTHER


def test_a_recovering_partition_makes_the_worker_unready_and_its_customers_wait(
    layer: StateLayer, tmp_path: Path
) -> None:
    owning(layer, {0: ME, 1: ME}, {0: Status.ACTIVE, 1: Status.RECOVERING}, tmp_path)
    ready, reason = layer.readiness()
    assert not ready and reason.startswith("partition 1 is recovering")
    with pytest.raises(Unavailable, match="retry shortly"):
        layer.reader(1)


def test_partitions_of_a_killed_previous_instance_are_not_ready_yet(
    layer: StateLayer, tmp_path: Path
) -> None:
    """Restarted within the session timeout, the worker shares the group with its dead previous
    instance (same URL), which still holds some partitions: nobody can answer those yet."""
    owning(layer, {0: ME, 1: ME, 2: OTHER}, {0: Status.ACTIVE}, tmp_path)
    ready, reason = layer.readiness()
    assert not ready and "partitions [1]" in reason and "previous instance" in reason
    with pytest.raises(Unavailable, match="previous instance"):
        layer.reader(1)
    with pytest.raises(NotOwner):
        layer.reader(2)


def test_during_a_rebalance_nothing_is_ready(layer: StateLayer) -> None:
    layer.rebalancing = True
    assert layer.readiness() == (False, "partitions are being rebalanced")
    with pytest.raises(Unavailable):
        layer.reader(0)


async def test_a_worker_frozen_past_its_session_is_not_ready_until_its_group_reassigns_it(
    layer: StateLayer, tmp_path: Path
) -> None:
    """SIGSTOP or a paused VM longer than the session: the group has moved the partitions on,
    and the worker does not know it yet. It must not say ready on stale ownership."""
    owning(layer, {0: ME}, {0: Status.ACTIVE}, tmp_path)
    assert layer.readiness() == (True, "ready")
    layer.standstill.last_tick -= 11  # the clock did not tick for 11 s: the process stood still
    ready, reason = layer.readiness()
    assert not ready and "frozen" in reason
    assert not layer.readiness()[0], "still not ready: the group has not reassigned it yet"

    class Consumer:
        def pause(self, *tps: object) -> None: ...

    layer.consumer = Consumer()  # type: ignore[assignment]
    layer.owned.clear()  # (revoked by the rebalance)
    layer.assignor.ownership = Ownership(2, {0: OTHER}, frozenset(), frozenset())
    await layer.on_partitions_assigned([])  # the new generation gives it nothing
    assert layer.readiness() == (True, "ready")
