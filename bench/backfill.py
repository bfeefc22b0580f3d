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

from aiokafka import AIOKafkaProducer

from bench.data import CDR_PARTITIONS, HISTORY_DAYS, _create_topic
from streamagg.tools.cdrgen import CdrGenerator, GeneratorOptions

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
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1024 * 1024, acks="all"
    )
    await producer.start()
    try:
        pending = []
        for key, value in stream:
            pending.append(await producer.send(TOPIC, value=value, key=key))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


def produce(bootstrap: str, today: datetime, count: int = BACKFILL_CDRS) -> int:
    """Fill the backfill topic; returns the number of messages."""
    stream = messages(count, today)
    asyncio.run(_send(bootstrap, stream))
    return len(stream)
