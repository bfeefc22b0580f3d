"""The raw ceiling: aiokafka `getmany` + `orjson.loads` of every message, nothing else.

Run as `python -m bench.ceiling BOOTSTRAP TOPIC COUNT`; prints JSON {samples, cpu_seconds}.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid

import orjson
from aiokafka import AIOKafkaConsumer


async def consume(bootstrap: str, topic: str, count: int) -> list[tuple[float, int]]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-ceiling-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=32 * 1024 * 1024,
    )
    await consumer.start()
    samples = [(time.time(), 0)]
    done = 0
    loads = orjson.loads
    try:
        while done < count:
            batches = await consumer.getmany(timeout_ms=1000, max_records=20000)
            for records in batches.values():
                for record in records:
                    loads(record.value)
                done += len(records)
            if batches:
                samples.append((time.time(), done))
    finally:
        await consumer.stop()
    return samples


def main() -> None:
    bootstrap, topic, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    samples = asyncio.run(consume(bootstrap, topic, count))
    times = os.times()
    print(json.dumps({"samples": samples, "cpu_seconds": times.user + times.system}))


if __name__ == "__main__":
    main()
