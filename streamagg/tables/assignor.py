"""Who owns which partition: a sticky group assignment that also tells every worker the owners.

The group leader plans the assignment of the batch topic's partitions: each partition stays
with the worker that had it when that keeps the group balanced (its state is local there),
the rest go to the least loaded worker, preferring one that keeps a standby copy. Standby
copies go to other workers. Every member receives the whole owner map (partition → URL) in its
assignment, which is how any worker forwards a query to the owner of a customer.

Member metadata and assignments carry a format version; a member refuses one it cannot read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiokafka.cluster import ClusterMetadata
from aiokafka.coordinator.assignors.abstract import AbstractPartitionAssignor
from aiokafka.coordinator.protocol import (
    ConsumerProtocolMemberAssignment,
    ConsumerProtocolMemberMetadata,
)

from streamagg.errors import FormatError

log = logging.getLogger(__name__)

ASSIGNMENT_FORMAT = 1


@dataclass(frozen=True)
class Member:
    """What a member tells the leader: where it answers, and what it holds now."""

    url: str
    active: frozenset[int] = frozenset()
    standby: frozenset[int] = frozenset()


@dataclass
class MemberPlan:
    active: set[int] = field(default_factory=set)
    standby: set[int] = field(default_factory=set)


def plan(
    partitions: Iterable[int], members: Mapping[str, Member], standby_replicas: int
) -> dict[str, MemberPlan]:
    """Balanced, sticky assignment of partitions (and standby copies) to members."""
    ids = sorted(members)
    plans = {member: MemberPlan() for member in ids}
    if not ids:
        return plans
    wanted = sorted(partitions)
    ceiling = -(-len(wanted) // len(ids))
    owner: dict[int, str] = {}
    for member in ids:  # keep what a member had, up to a fair share
        for partition in sorted(members[member].active):
            fits = len(plans[member].active) < ceiling
            if fits and partition in wanted and partition not in owner:
                owner[partition] = member
                plans[member].active.add(partition)
    for partition in wanted:
        if partition in owner:
            continue
        member = min(
            ids,
            key=lambda m: (
                len(plans[m].active),
                partition not in members[m].standby,
                m,
            ),
        )
        owner[partition] = member
        plans[member].active.add(partition)
    _rebalance_floor(plans, ids, len(wanted))
    copies = min(standby_replicas, len(ids) - 1)
    for partition in wanted:
        active_owner = next(m for m in ids if partition in plans[m].active)
        candidates = [m for m in ids if m != active_owner]
        candidates.sort(
            key=lambda m: (
                partition not in members[m].standby and partition not in members[m].active,
                len(plans[m].standby),
                m,
            )
        )
        for member in candidates[:copies]:
            plans[member].standby.add(partition)
    return plans


def _rebalance_floor(plans: dict[str, MemberPlan], ids: list[str], count: int) -> None:
    """Move partitions from the most to the least loaded until every member has its floor."""
    floor = count // len(ids)
    while True:
        poorest = min(ids, key=lambda m: (len(plans[m].active), m))
        richest = max(ids, key=lambda m: (len(plans[m].active), m))
        if len(plans[poorest].active) >= floor or len(plans[richest].active) <= floor:
            return
        moved = max(plans[richest].active)
        plans[richest].active.discard(moved)
        plans[poorest].active.add(moved)


@dataclass
class Ownership:
    """What this member learned from its last assignment."""

    generation: int = 0
    owners: dict[int, str] = field(default_factory=dict)  # partition → URL of its worker
    active: frozenset[int] = frozenset()
    standby: frozenset[int] = frozenset()


class OwnershipAssignor(AbstractPartitionAssignor):
    """aiokafka assignor of the state consumer group (see the module docstring)."""

    name = "streamagg-owners"
    version = 0

    def __init__(
        self,
        url: str,
        topic: str,
        standby_replicas: int,
        warm: Callable[[], set[int]] = set,
    ) -> None:
        self.url = url
        self.topic = topic
        self.standby_replicas = standby_replicas
        self.warm = warm  # partitions with a local copy: the leader prefers to give us those
        self.ownership = Ownership()

    def metadata(self, topics: Iterable[str]) -> ConsumerProtocolMemberMetadata:
        user_data = orjson.dumps(
            {
                "v": ASSIGNMENT_FORMAT,
                "url": self.url,
                "active": sorted(self.ownership.active),
                "standby": sorted(self.ownership.standby | self.warm()),
            }
        )
        return ConsumerProtocolMemberMetadata(self.version, sorted(topics), user_data)

    def assign(
        self, cluster: ClusterMetadata, members: Mapping[str, ConsumerProtocolMemberMetadata]
    ) -> dict[str, ConsumerProtocolMemberAssignment]:
        infos = {member_id: _read_member(meta.user_data) for member_id, meta in members.items()}
        partitions = cluster.partitions_for_topic(self.topic) or set()
        plans = plan(partitions, infos, self.standby_replicas)
        owners = {
            str(partition): infos[member_id].url
            for member_id, member_plan in plans.items()
            for partition in member_plan.active
        }
        log.info(
            "assigned %d partitions of %s to %d workers: %s",
            len(partitions),
            self.topic,
            len(plans),
            {infos[m].url: sorted(p.active) for m, p in plans.items()},
        )
        return {
            member_id: ConsumerProtocolMemberAssignment(
                self.version,
                [(self.topic, sorted(member_plan.active))],
                orjson.dumps(
                    {
                        "v": ASSIGNMENT_FORMAT,
                        "owners": owners,
                        "standby": sorted(member_plan.standby),
                    }
                ),
            )
            for member_id, member_plan in plans.items()
        }

    def on_assignment(self, assignment: ConsumerProtocolMemberAssignment) -> None:
        body = _read(assignment.user_data, "assignment")
        self.ownership = Ownership(
            generation=self.ownership.generation + 1,
            owners={int(p): str(url) for p, url in body["owners"].items()},
            active=frozenset(p for _topic, parts in assignment.assignment for p in parts),
            standby=frozenset(int(p) for p in body["standby"]),
        )


def _read_member(user_data: bytes) -> Member:
    body = _read(user_data, "member metadata")
    return Member(
        url=str(body["url"]),
        active=frozenset(int(p) for p in body.get("active", ())),
        standby=frozenset(int(p) for p in body.get("standby", ())),
    )


def _read(user_data: bytes, what: str) -> dict[str, Any]:
    try:
        body = orjson.loads(user_data)
        version = body.get("v") if isinstance(body, dict) else None
    except orjson.JSONDecodeError:
        version = None
    if version != ASSIGNMENT_FORMAT:
        raise FormatError(
            f"group {what} of format {version!r}; this streamagg reads format "
            f"{ASSIGNMENT_FORMAT} (are workers of different versions in one group?)"
        )
    return dict(body)
