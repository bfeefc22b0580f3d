"""The bench's data, made once per run: one CDR topic, its DID inventory and rate centers.

The topic holds two seed-fixed streams of `streamagg generate`: a *history* spread over the
13 months before the run (for the 13-month queries) and a *dense* day (yesterday, UTC) that
carries most of the volume. Event times are relative to the run's UTC date, so the data stays
inside the 400-day retention whenever the bench runs; --seed and the day offsets are fixed.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

HISTORY_DAYS = 395  # 13 months back from today, inside the 400-day retention
SEED_HISTORY = 1313
SEED_DENSE = 2026
SEED_LIVE = 4242
CDR_PARTITIONS = 4


@dataclass
class Dataset:
    bootstrap: str
    name: str  # prefix of topics and groups (worker_env's `name`)
    out: Path
    history: int
    dense: int
    today: datetime  # UTC midnight of the run's date

    @property
    def topic(self) -> str:
        return f"{self.name}-cdrs"

    @property
    def dids_topic(self) -> str:
        return f"{self.name}-dids"

    @property
    def total(self) -> int:
        return self.history + self.dense

    @property
    def dids_csv(self) -> Path:
        return self.out / "dids.csv"

    @property
    def ratecenters_csv(self) -> Path:
        return self.out / "ratecenters.csv"

    @property
    def day(self) -> datetime:
        """The dense day: yesterday, UTC."""
        return self.today - timedelta(days=1)

    def env(self, topic: str | None = None) -> dict[str, str]:
        return {
            **os.environ,
            "STREAMAGG_BROKER": f"kafka://{self.bootstrap}",
            "STREAMAGG_TOPIC": topic or self.topic,
            "STREAMAGG_DIDS_TOPIC": self.dids_topic,
        }

    def generate_args(self, seed: int, count: int, start: datetime, span_s: float) -> list[str]:
        return [
            "--seed",
            str(seed),
            "--count",
            str(count),
            "--rate",
            "0",
            "--start",
            start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "--event-step",
            f"{span_s / count:.6f}",
        ]


def utc_today() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def streamagg(args: list[str], env: dict[str, str], log: Path) -> None:
    with log.open("ab") as out:
        done = subprocess.run(
            [sys.executable, "-m", "streamagg.cli", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"streamagg {' '.join(args)} failed, see {log}")


def live_stream(
    env: dict[str, str], rate: float, seconds: float, seed: int, log: Path
) -> subprocess.Popen[bytes]:
    """Start `streamagg generate --rate` (event time = now) for ``seconds``, output to log."""
    command = [
        sys.executable,
        "-m",
        "streamagg.cli",
        "generate",
        "--rate",
        f"{rate:.0f}",
        "--duration",
        f"{seconds:.0f}",
        "--seed",
        str(seed),
    ]
    with log.open("ab") as out:
        return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


async def _create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


def create_topic(bootstrap: str, topic: str, partitions: int = CDR_PARTITIONS) -> None:
    """An input topic, empty (the live stream of a freshness run writes into it)."""
    asyncio.run(_create_topic(bootstrap, topic, partitions))


def produce(data: Dataset, log: Path) -> dict[str, float]:
    """Fill the topic once; returns how long each step took (s)."""
    import time

    timings = {}
    asyncio.run(_create_topic(data.bootstrap, data.topic, CDR_PARTITIONS))
    env = data.env()
    streamagg(
        [
            "generate",
            "--reference-only",
            "--dids-out",
            str(data.dids_csv),
            "--ratecenters-out",
            str(data.ratecenters_csv),
        ],
        env,
        log,
    )
    streamagg(["dids", "load", str(data.dids_csv)], env, log)
    started = time.monotonic()
    history_start = data.today - timedelta(days=HISTORY_DAYS)
    span = (data.day - history_start).total_seconds()
    streamagg(
        ["generate", *data.generate_args(SEED_HISTORY, data.history, history_start, span)], env, log
    )
    streamagg(
        ["generate", *data.generate_args(SEED_DENSE, data.dense, data.day, 86400.0)], env, log
    )
    timings["produce_s"] = time.monotonic() - started
    return timings


async def _end_offsets(bootstrap: str, topic: str) -> int:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        metadata = await consumer._client.fetch_all_metadata()
        parts = [TopicPartition(topic, p) for p in metadata.partitions_for_topic(topic) or ()]
        ends = await consumer.end_offsets(parts)
        return sum(ends.values())
    finally:
        await consumer.stop()


def topic_size(bootstrap: str, topic: str) -> int:
    return asyncio.run(_end_offsets(bootstrap, topic))
