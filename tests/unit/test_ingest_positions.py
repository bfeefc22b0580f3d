"""Where the ingest reads on after a fetch found its position out of the partition's range
(the consumer runs with auto_offset_reset=none; tests/e2e/test_retention_loss.py drives the
deleted-records case through a real broker, a truncated log cannot be made there)."""

from __future__ import annotations

import logging

import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from streamagg.agents.ingest import IngestStage
from streamagg.agents.ingest_partitions import TransactionalPartitions
from streamagg.metrics import create_metrics
from streamagg.settings import Settings

TOPIC = "cdr-events"
DELETED, TRUNCATED, OTHER = (TopicPartition(TOPIC, n) for n in range(3))


class FirstOffsets:
    """The consumer calls the partitions make here: first offsets asked, seeks made."""

    def __init__(self, firsts: dict[TopicPartition, int]) -> None:
        self.firsts = firsts
        self.sought: dict[TopicPartition, int] = {}

    async def beginning_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.firsts[tp] for tp in tps}

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.sought[tp] = offset


async def test_a_deleted_position_counts_the_loss_from_the_committed_offset_and_reads_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = CollectorRegistry()
    stage = IngestStage(Settings(topic=TOPIC), create_metrics(registry), lambda did: "")
    consumer = FirstOffsets({DELETED: 500, TRUNCATED: 0, OTHER: 0})
    partitions = TransactionalPartitions(stage, consumer)
    # Committed 120 and 900; the poll that failed had read on to 300 and 950.
    partitions.next_offsets.update({DELETED: 120, TRUNCATED: 900, OTHER: 40})

    with caplog.at_level(logging.WARNING, logger="streamagg.agents"):
        await partitions.skip_deleted({DELETED: 300, TRUNCATED: 950})

    # Everything from the committed offset on is read again: the loss starts there, not at 300.
    lost = registry.get_sample_value("streamagg_messages_lost_total", {"topic": TOPIC})
    assert lost == 500 - 120
    # A position past the end (a truncated or recreated log): no loss, read from its start.
    assert consumer.sought == {DELETED: 500, TRUNCATED: 0}
    assert partitions.next_offsets == {DELETED: 500, TRUNCATED: 0, OTHER: 40}
    assert [r.getMessage() for r in caplog.records] == [
        "ingest: cdr-events[0] messages [120, 500) were deleted by the topic's retention before "
        "they were read; their CDRs are missing from the reports",
        "ingest: cdr-events[1] offset 950 is past the partition's end; reading it from 0",
    ]


async def test_a_partition_no_longer_owned_is_left_alone() -> None:
    registry = CollectorRegistry()
    stage = IngestStage(Settings(topic=TOPIC), create_metrics(registry), lambda did: "")
    consumer = FirstOffsets({})
    partitions = TransactionalPartitions(stage, consumer)

    await partitions.skip_deleted({DELETED: 300})  # (revoked between the poll and now)

    assert consumer.sought == {}
    assert registry.get_sample_value("streamagg_messages_lost_total", {"topic": TOPIC}) == 0
