"""The sticky, balanced assignment of batch partitions and standby copies (tables/assignor.py)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamagg.errors import FormatError
from streamagg.tables.assignor import Member, OwnershipAssignor, plan


def members(*held: set[int], standby: tuple[set[int], ...] = ()) -> dict[str, Member]:
    out = {}
    for i, active in enumerate(held):
        extra = standby[i] if i < len(standby) else set()
        out[f"m{i}"] = Member(f"http://w{i}", frozenset(active), frozenset(extra))
    return out


@settings(max_examples=300, deadline=None)
@given(
    st.integers(1, 16),
    st.lists(st.sets(st.integers(0, 20)), min_size=1, max_size=6),
    st.integers(0, 3),
)
def test_every_partition_has_one_owner_and_loads_differ_by_at_most_one(
    partitions: int, held: list[set[int]], replicas: int
) -> None:
    plans = plan(range(partitions), members(*held), replicas)
    owners = [p for member in plans.values() for p in member.active]
    assert sorted(owners) == list(range(partitions))
    loads = [len(member.active) for member in plans.values()]
    assert max(loads) - min(loads) <= 1
    for member in plans.values():
        assert not member.active & member.standby
    copies = min(replicas, len(held) - 1)
    for p in range(partitions):
        assert sum(p in member.standby for member in plans.values()) == copies


def test_partitions_stay_with_their_owner_when_a_worker_joins() -> None:
    before = plan(range(8), members(set()), 1)
    assert before["m0"].active == set(range(8))
    after = plan(range(8), members(set(range(8)), set()), 1)
    assert after["m0"].active <= set(range(8)) and len(after["m0"].active) == 4
    assert after["m1"].active == set(range(8)) - after["m0"].active
    assert after["m1"].standby == after["m0"].active


def test_a_takeover_prefers_the_worker_with_a_warm_copy_among_the_least_loaded() -> None:
    # The owner of 0 and 1 died; m1 kept standby copies of both. Balance comes first (one
    # each), the warm copy decides who takes which.
    got = plan(range(4), members({2}, {3}, standby=(set(), {0, 1})), 0)
    assert got["m1"].active == {0, 3}
    assert got["m0"].active == {1, 2}


def test_the_assignment_tells_every_member_every_owner() -> None:
    from aiokafka.cluster import ClusterMetadata
    from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata

    class Cluster(ClusterMetadata):  # type: ignore[misc]
        def partitions_for_topic(self, topic: str) -> set[int]:
            return set(range(4))

    assignors = [OwnershipAssignor(f"http://w{i}", "batches", 1) for i in range(2)]
    metadata = {
        f"m{i}": ConsumerProtocolMemberMetadata.decode(a.metadata(["batches"]).encode())
        for i, a in enumerate(assignors)
    }
    result = assignors[0].assign(Cluster(), metadata)
    for i, assignor in enumerate(assignors):
        assignor.on_assignment(result[f"m{i}"])
    owners = assignors[0].ownership.owners
    assert owners == assignors[1].ownership.owners
    assert sorted(owners) == [0, 1, 2, 3] and set(owners.values()) == {"http://w0", "http://w1"}
    assert assignors[0].ownership.standby == assignors[1].ownership.active


def test_a_member_of_another_format_is_refused_by_name() -> None:
    from aiokafka.cluster import ClusterMetadata
    from aiokafka.coordinator.protocol import ConsumerProtocolMemberMetadata

    alien = ConsumerProtocolMemberMetadata(0, ["batches"], b'{"v": 2, "url": "x"}')
    with pytest.raises(FormatError, match=r"format 2.*reads format 1"):
        OwnershipAssignor("http://w0", "batches", 1).assign(ClusterMetadata(), {"m0": alien})
