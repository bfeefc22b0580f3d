"""Freshness: a CDR produced → visible in the API, while a live stream runs at a given rate.

A background `streamagg generate --rate R` (event time = now) loads the worker; a probe sends
marker CDRs for a customer of its own, one every PROBE_INTERVAL_S, each with dt = now, and
polls that customer's tech-prefix report until the marker is counted.
"""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
from aiokafka import AIOKafkaProducer

from bench.data import live_stream
from tests.support.worker import WorkerProcess

_LAG_RE = re.compile(r"^streamagg_consumer_lag_messages\{[^}]*\} ([0-9.e+]+)$", re.M)
PROBE_CUSTOMER = "990001"
PROBE_INTERVAL_S = 0.5
POLL_S = 0.01
VISIBLE_TIMEOUT_S = 30.0  # a probe not visible by then ends the probing (the worker fell behind)


def hour_text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:00:00Z")


async def lag(client: httpx.AsyncClient) -> float:
    """The worker's input lag (sum of streamagg_consumer_lag_messages)."""
    text = (await client.get("/metrics", timeout=10)).text
    return sum(float(v) for v in _LAG_RE.findall(text))


async def _probe(
    bootstrap: str,
    topic: str,
    worker: WorkerProcess,
    token: str,
    probes: int,
    run_id: str,
    lags: list[float],
    lost: list[int],
    unavailable: list[int],
) -> list[float]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    now = datetime.now(UTC)
    params = {
        "from": hour_text(now - timedelta(hours=2)),
        "to": hour_text(now + timedelta(hours=2)),
    }
    url = f"/api/v1/customers/{PROBE_CUSTOMER}/reports/tech-prefix"
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    try:
        async with httpx.AsyncClient(base_url=worker.base_url, headers=headers) as client:

            async def seen() -> int:
                response = await client.get(url, params=params, timeout=10)
                if response.status_code == 503:  # not ready: not visible yet
                    unavailable.append(1)
                    return -1
                response.raise_for_status()
                return sum(row["total"] for row in response.json()["rows"])

            baseline = await seen()
            while baseline < 0:
                await asyncio.sleep(0.5)
                baseline = await seen()
            for index in range(probes):
                began = time.time()
                value = {
                    "callid": f"{run_id}-{index}",
                    "customer_id": PROBE_CUSTOMER,
                    "dt": began,
                    "tech_prefix": "probe#",
                    "duration": 1,
                    "sip_code": 200,
                }
                await producer.send_and_wait(
                    topic, orjson.dumps(value), key=PROBE_CUSTOMER.encode()
                )
                while await seen() < baseline + index + 1:
                    if time.time() - began > VISIBLE_TIMEOUT_S:
                        lost.append(index)
                        break
                    await asyncio.sleep(POLL_S)
                if lost:
                    lags.append(await lag(client))
                    break
                latencies.append(time.time() - began)
                lags.append(await lag(client))
                await asyncio.sleep(max(0.0, PROBE_INTERVAL_S - (time.time() - began)))
    finally:
        await producer.stop()
    return latencies


def measure(
    bootstrap: str,
    topic: str,
    worker: WorkerProcess,
    token: str,
    env: dict[str, str],
    rate: float,
    seconds: float,
    seed: int,
    log: Path,
) -> dict[str, object]:
    """Run the live stream and the probe together; the probe starts once the stream runs."""
    # (outlasts the probing, which slow probes stretch; stopped after it)
    live = live_stream(env, rate, seconds * 3 + 15, seed, log)
    try:
        time.sleep(5)  # the generator's start-up, then its steady rate
        probes = int(seconds / PROBE_INTERVAL_S)
        lags: list[float] = []
        lost: list[int] = []
        unavailable: list[int] = []
        latencies = asyncio.run(
            _probe(bootstrap, topic, worker, token, probes, f"probe{seed}", lags, lost, unavailable)
        )
    finally:
        live.terminate()
        live.wait(timeout=30)
    return {
        "latencies": latencies,
        "rate": rate,
        "probes": probes,
        "lags": lags,
        "lost": lost,
        "answers_503": len(unavailable),
    }
