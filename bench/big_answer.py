"""`python -m bench.big_answer`: a 400-day dtmf export of ~1,000,000 rows, streamed as CSV.

Issue 14's benchmark: the worker must stream it in bounded memory (at most 100 MB above its
idle size) while `/healthz` keeps answering within 50 ms. One customer gets one call in each
(hour, provider) of 400 days × 105 providers; the script measures the worker's resident size
(all its processes, sampled every 50 ms) and `/healthz` latencies (every 50 ms, from another
thread) during the export, and prints them.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import shutil
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

from bench import worker_runs
from bench.env import REPO, Broker, process_tree, rss_bytes
from tests.support.kafka_io import produce
from tests.support.worker import write_tokens

HOURS = 400 * 24 - 48


def cdrs(providers: int) -> list[bytes]:
    first = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS)
    return [
        orjson.dumps(
            {
                "callid": f"{h}-{p}",
                "dt": int((first + timedelta(hours=h)).timestamp()),
                "customer_id": "big",
                "provider_id": f"carrier-{p:03d}",
                "customer_charge": "0.010000",
            }
        )
        for h in range(HOURS)
        for p in range(providers)
    ]


def probe(base_url: str, done: Any, results: Any) -> None:
    """GET /healthz every 50 ms until done; put the latencies (s) on results."""
    latencies = []
    with httpx.Client(timeout=10) as client:
        while not done.is_set():
            began = time.perf_counter()
            client.get(f"{base_url}/healthz")
            latencies.append(time.perf_counter() - began)
            time.sleep(0.05)
    results.put(latencies)


def rss(pid: int) -> int:
    return sum(rss_bytes(p) for p in process_tree(pid))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.big_answer", description=__doc__)
    parser.add_argument("--providers", type=int, default=105, help="rows per hour")
    args = parser.parse_args()
    out = REPO / "bench" / "out" / "big-answer"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    broker = Broker(out / "kafka")
    broker.start()
    worker = None
    try:
        tokens = write_tokens(out / "tokens.json", {worker_runs.TOKEN: ["*"]})
        worker = worker_runs.start_worker(broker.bootstrap, "big", out, tokens)
        worker.wait_ready()
        messages = cdrs(args.providers)
        asyncio.run(produce(broker.bootstrap, "big-cdrs", messages))
        print(f"produced {len(messages):,} CDRs", flush=True)
        worker_runs.measure_throughput(worker, len(messages), 900)
        time.sleep(5)
        pid = worker.process.pid
        idle = rss(pid)
        peak = idle
        # The prober runs in a process of its own: in this one it would share the GIL with the
        # download and measure this script's own waits.
        context = multiprocessing.get_context("spawn")
        done, results = context.Event(), context.Queue()
        prober = context.Process(target=probe, args=(worker.base_url, done, results))
        prober.start()
        now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        params = {
            "from": (now - timedelta(days=400) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:00:00Z"),
            "to": (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:00:00Z"),
            "format": "csv",
        }
        began = time.perf_counter()
        rows = size = 0
        with httpx.stream(
            "GET",
            f"{worker.base_url}/api/v1/customers/big/reports/dtmf",
            params=params,
            headers={"Authorization": f"Bearer {worker_runs.TOKEN}"},
            timeout=600,
        ) as response:
            assert response.status_code == 200, response.read()
            for chunk in response.iter_bytes():
                size += len(chunk)
                rows += chunk.count(b"\n")
                peak = max(peak, rss(pid))
        elapsed = time.perf_counter() - began
        done.set()
        latencies: list[float] = results.get(timeout=30)
        prober.join()
        print(
            f"{rows - 1:,} rows, {size / 1e6:.0f} MB of CSV in {elapsed:.1f} s "
            f"({(rows - 1) / elapsed:,.0f} rows/s); worker RSS idle {idle / 2**20:.0f} MiB, "
            f"peak {peak / 2**20:.0f} MiB (+{(peak - idle) / 2**20:.0f} MiB); /healthz "
            f"{len(latencies)} probes, median {statistics.median(latencies) * 1e3:.1f} ms, "
            f"p99 {sorted(latencies)[int(0.99 * (len(latencies) - 1))] * 1e3:.1f} ms, "
            f"max {max(latencies) * 1e3:.1f} ms, {sum(t > 0.05 for t in latencies)} over 50 ms"
        )
    finally:
        if worker is not None:
            worker_runs.stop_worker(worker)
        broker.stop()


if __name__ == "__main__":
    main()
