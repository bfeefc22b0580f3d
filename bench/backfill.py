"""The backfill workload: 13 months of history in random order (a replay of an export).

Live traffic arrives in time order, so a batch touches few buckets; a backfill or the replay
of an export touches a different hour, day and month with almost every CDR. The topic holds
BACKFILL_CDRS messages of `streamagg generate`'s stream spread over the 13 months before the
run (seed SEED_BACKFILL, the same customers, DIDs and rate centers as the main data), shuffled
with the same seed, produced once.
"""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta

from bench.data import CDR_PARTITIONS, HISTORY_DAYS, _create_topic
from streamagg.cli.cdrgen import CdrGenerator, GeneratorOptions
from tests.support.kafka_io import produce_keyed

NAME = "backfill"
TOPIC = f"{NAME}-cdrs"
BACKFILL_CDRS = 300_000
SEED_BACKFILL = 1717


def messages(count: int, today: datetime) -> list[tuple[bytes | None, bytes]]:
    start = today - timedelta(days=HISTORY_DAYS)
    span = (today - timedelta(days=1) - start).total_seconds()
    options = GeneratorOptions(
        seed=SEED_BACKFILL, count=count, start=start.timestamp(), event_step=span / count
    )
    shuffled = list(CdrGenerator(options).messages())
    random.Random(SEED_BACKFILL).shuffle(shuffled)
    return shuffled


async def _send(bootstrap: str, stream: list[tuple[bytes | None, bytes]]) -> None:
    await _create_topic(bootstrap, TOPIC, CDR_PARTITIONS)
    await produce_keyed(bootstrap, TOPIC, stream)


def produce(bootstrap: str, today: datetime, count: int = BACKFILL_CDRS) -> int:
    """Fill the backfill topic; returns the number of messages."""
    stream = messages(count, today)
    asyncio.run(_send(bootstrap, stream))
    return len(stream)
