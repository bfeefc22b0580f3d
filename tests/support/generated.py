"""Calls of the bench's generator, decoded and split by customer partition, for fold tests
and in-process benchmarks."""

from __future__ import annotations

import time

from aiokafka.structs import ConsumerRecord

from streamagg.agents.ingest import triage
from streamagg.batches import customer_partition
from streamagg.cdr import Cdr, TimePolicy
from streamagg.cli.cdrgen import CdrGenerator, GeneratorOptions


def partitions_of(count: int, days: float, partitions: int = 8) -> list[list[Cdr]]:
    """`streamagg generate`'s calls (seed 2026) over the last ``days`` days, decoded as the
    ingest stage does, by customer partition."""
    now = time.time()
    span = days * 86400
    options = GeneratorOptions(seed=2026, count=count, start=now - span, event_step=span / count)
    generator = CdrGenerator(options)
    stamp = int(now * 1000)
    messages = [
        ConsumerRecord("cdr-events", 0, i, stamp, 0, key, value, None, 0, len(value), [])
        for i, (key, value) in enumerate(generator.messages())
    ]
    owners = dict(generator.did_inventory())
    policy = TimePolicy(retention_days=max(400, int(days) + 2))
    poll = triage(messages, now=now, policy=policy, did_owner=lambda cli: owners.get(cli, ""))
    shares: list[list[Cdr]] = [[] for _ in range(partitions)]
    for record in poll.records:
        shares[customer_partition(record.cdr.customer_id, partitions)].append(record.cdr)
    return shares
