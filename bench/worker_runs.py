"""A streamagg worker under the bench: throughput, RSS, API latency, freshness, recovery."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import httpx

from bench.env import cpu_seconds, machine_busy_seconds, process_tree, rss_bytes
from bench.rates import Throughput, throughput
from tests.support.worker import WorkerProcess, free_port, http_get, worker_env

TOKEN = "bench-token"
STUCK_503_S = 30.0
STALL_S = 120.0  # no progress for this long (start-up included): the worker is stuck
_COUNT_RE = re.compile(r'^streamagg_cdrs_total\{outcome="(\w+)"\} ([0-9.e+]+)$', re.M)
LATENCY = "streamagg_processing_latency_seconds"
LOOP_LAG = "streamagg_event_loop_lag_seconds"


def start_worker(bootstrap: str, name: str, out: Path, tokens: Path, **extra: str) -> WorkerProcess:
    data_dir = out / "worker" / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = worker_env(bootstrap, name, data_dir, port, tokens, **extra)
    return WorkerProcess(env, data_dir, port, out / "worker.log").start()


def kill_leftovers(pids: list[int]) -> None:
    """The children of a SIGKILLed worker (its ingest process) die with it or soon after; any
    still there after 5 s is killed by its pid."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(rss_bytes(pid) for pid in pids):
        time.sleep(0.1)
    for pid in pids:
        if rss_bytes(pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def stop_worker(worker: WorkerProcess) -> None:
    if worker.process is None:
        return
    tree = process_tree(worker.process.pid) if worker.process.poll() is None else []
    worker.stop()
    kill_leftovers(tree[1:])


def lag_by_topic(text: str) -> dict[str, float]:
    """streamagg_consumer_lag_messages summed per topic."""
    lags: dict[str, float] = {}
    for labels, value in re.findall(
        r"^streamagg_consumer_lag_messages\{([^}]*)\} (\S+)$", text, re.M
    ):
        topic = re.search(r'topic="([^"]*)"', labels)
        name = topic.group(1) if topic else "?"
        lags[name] = lags.get(name, 0.0) + float(value)
    return lags


def applied(text: str) -> tuple[float, float]:
    """(CDRs counted, internal batches applied) so far."""
    batches = re.search(r"^streamagg_batches_applied_total (\S+)$", text, re.M)
    return sum(counts(text).values()), float(batches.group(1)) if batches else 0.0


def metrics_text(worker: WorkerProcess) -> str:
    return http_get(f"{worker.base_url}/metrics", timeout=5).text


def counts(text: str) -> dict[str, float]:
    return {outcome: float(value) for outcome, value in _COUNT_RE.findall(text)}


def processed(worker: WorkerProcess) -> int:
    try:
        return int(sum(counts(metrics_text(worker)).values()))
    except httpx.HTTPError:
        return 0


class Baseline(NamedTuple):
    """CPU and time where counting starts."""

    worker_cpu: float  # seconds, every process of the worker
    machine_cpu: float  # seconds, every process of the machine
    started: float  # epoch seconds
    each: dict[int, float]  # seconds by worker process
    broker_pid: int | None
    broker_cpu: float  # seconds (0 when its pid is not known)


def baseline(
    worker: WorkerProcess, timeout: float = 180.0, broker_pid: int | None = None
) -> Baseline:
    """Where CPU counting starts: once the worker answers /metrics (start-up done; recovery,
    the DID inventory and every CDR's work still to come). With ``broker_pid``, the broker's
    CPU is counted too."""
    deadline = time.monotonic() + timeout
    while True:
        if worker.process.poll() is not None:
            raise RuntimeError(f"worker exited:\n{worker.tail()}")
        try:
            metrics_text(worker)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    tree = process_tree(worker.process.pid)
    each = {pid: cpu_seconds([pid]) for pid in tree}
    broker_cpu = cpu_seconds([broker_pid]) if broker_pid is not None else 0.0
    return Baseline(
        sum(each.values()), machine_busy_seconds(), time.time(), each, broker_pid, broker_cpu
    )


def measure_throughput(
    worker: WorkerProcess, total: int, timeout: float, since: Baseline | None = None
) -> tuple[Throughput, dict]:
    """Poll /metrics until accepted + rejected + duplicate reaches total.

    CPU counts from ``since`` (default: ``baseline()`` now): counting from the first progress
    instead would leave out the first state cycle's work while counting its CDRs, and a
    backlog's first cycle can be a large share of the run."""
    pid = worker.process.pid
    cpu_at_start, machine_at_start, started, each_at_start, broker_pid, broker_at_start = (
        since or baseline(worker)
    )
    samples: list[tuple[float, int]] = []
    deadline = time.monotonic() + timeout
    last_progress = time.monotonic()
    done = 0
    while done < total:
        if time.monotonic() > deadline:
            raise TimeoutError(f"worker processed {done:,} of {total:,} in {timeout:.0f} s")
        if worker.process.poll() is not None:
            raise RuntimeError(f"worker exited:\n{worker.tail()}")
        done = processed(worker)
        now = time.time()
        if samples and done > samples[-1][1]:
            last_progress = time.monotonic()
        elif time.monotonic() - last_progress > STALL_S:
            raise RuntimeError(
                f"worker stuck at {done:,} of {total:,} CDRs for {STALL_S:.0f} s:\n{worker.tail()}"
            )
        samples.append((now, done))
        time.sleep(0.1)
    tree = process_tree(pid)
    cpu_used = cpu_seconds(tree) - cpu_at_start
    elapsed = time.time() - started
    machine = {
        "cores_busy": (machine_busy_seconds() - machine_at_start) / elapsed,
        "worker_cores": cpu_used / elapsed,
        # The state layer (the main process) and the ingest stage (its children: a child
        # restarted during the run counts from its start).
        "state_cores": (cpu_seconds([pid]) - each_at_start.get(pid, 0.0)) / elapsed,
        "ingest_cores": sum(
            cpu_seconds([child]) - each_at_start.get(child, 0.0) for child in tree[1:]
        )
        / elapsed,
    }
    if broker_pid is not None:
        broker_cpu = cpu_seconds([broker_pid]) - broker_at_start
        machine["broker_cores"] = broker_cpu / elapsed
        machine["broker_us_per_cdr"] = broker_cpu / total * 1e6
    return throughput(samples, total, cpu_used), {**counts(metrics_text(worker)), **machine}


def rss(worker: WorkerProcess) -> dict[str, int]:
    """RSS of the worker's main process and of its children (the ingest stage)."""
    tree = process_tree(worker.process.pid)
    main = rss_bytes(tree[0])
    return {
        "main": main,
        "children": sum(rss_bytes(pid) for pid in tree[1:]),
        "processes": len(tree),
    }


def latency_histogram(worker: WorkerProcess, name: str = LATENCY) -> list[tuple[float, float]]:
    """A histogram of the worker (default: streamagg_processing_latency_seconds) as cumulative
    (le, count) pairs."""
    found = re.findall(
        rf'^{name}_bucket\{{le="([^"]+)"\}} ([0-9.e+]+)$', metrics_text(worker), re.M
    )
    return sorted((float("inf") if le == "+Inf" else float(le), float(n)) for le, n in found)


def histogram_quantile(
    before: list[tuple[float, float]], after: list[tuple[float, float]], q: float
) -> float:
    """Quantile of the observations between two scrapes, Prometheus-style (upper bucket edge
    interpolation)."""
    old = dict(before)
    buckets = [(le, count - old.get(le, 0.0)) for le, count in after]
    if not buckets or buckets[-1][1] <= 0:
        return float("nan")
    rank = q * buckets[-1][1]
    lower_le, lower_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if le == float("inf"):
                return lower_le
            span = count - lower_count
            return lower_le + (le - lower_le) * ((rank - lower_count) / span if span else 1.0)
        lower_le, lower_count = le, count
    return float("nan")


def query_latency(
    worker: WorkerProcess,
    customer: str,
    ranges: dict[str, tuple[str, ...]],
    reports: list[str],
    repeat: int,
    unavailable: list[str],
    row_counts: dict[str, dict[str, int]],
) -> dict[str, dict[str, list[float]]]:
    """Seconds per answered request, per range and report, over one keep-alive connection.
    A range is (from, to) or (from, to, tz).

    A 503 (the worker not ready) is not timed: its message goes to `unavailable`, and the
    request is retried once /readyz says 200 again.
    """
    headers = {"Authorization": f"Bearer {TOKEN}"}
    result: dict[str, dict[str, list[float]]] = {}
    rows: dict[tuple[str, str], int] = {}
    with httpx.Client(base_url=worker.base_url, headers=headers, timeout=30) as client:

        def timed(url: str, params: dict[str, str]) -> float:
            first_503 = None
            while True:
                began = time.perf_counter()
                response = client.get(url, params=params)
                elapsed = time.perf_counter() - began
                if response.status_code != 503:
                    response.raise_for_status()
                    rows[url, params["from"]] = len(response.json()["rows"])
                    return elapsed
                unavailable.append(response.text)
                first_503 = first_503 or time.monotonic()
                if time.monotonic() - first_503 > STUCK_503_S:
                    # /readyz says 200 but queries keep getting 503: restart the worker.
                    unavailable.append(f"still 503 after {STUCK_503_S:.0f} s: worker restarted")
                    restart(worker)
                    first_503 = None
                worker.wait_ready()
                time.sleep(0.2)

        for label, (start, end, *zone) in ranges.items():
            result[label] = {}
            for report in reports:
                url = f"/api/v1/customers/{customer}/reports/{report}"
                params = {"from": start, "to": end, **({"tz": zone[0]} if zone else {})}
                timed(url, params)  # warm-up
                result[label][report] = [timed(url, params) for _ in range(repeat)]
                row_counts.setdefault(label, {})[report] = rows[url, start]
    return result


def restart(worker: WorkerProcess) -> None:
    """SIGTERM (graceful), then start again on the same data folder and port."""
    stop_worker(worker)
    worker.start()
    worker.wait_ready()


def recovery(worker: WorkerProcess, timeout: float = 300.0) -> dict[str, float]:
    """SIGKILL the worker, restart it on the same data folder; time until /readyz is 200."""
    tree = process_tree(worker.process.pid)
    worker.kill()
    kill_leftovers(tree[1:])
    began = time.monotonic()
    worker.start()
    worker.wait_ready(timeout)
    ready = time.monotonic() - began
    group = f"{worker.env['STREAMAGG_APP_ID']}-state"
    return {"ready_s": ready, **group_join_wait(worker.log_path, group)}


def group_join_wait(log: Path, group: str) -> dict[str, float]:
    """From the worker log: how long the restarted worker waited to (re)join the state layer's
    consumer group (the killed member's session must expire first)."""
    stamp = r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\]"
    text = log.read_text(errors="replace")
    joining = re.findall(stamp + rf".*\(Re-\)joining group {re.escape(group)} ", text)
    joined = re.findall(stamp + rf".*Joined group '{re.escape(group)}'", text)
    if not joining or not joined:
        return {}

    def seconds(value: str) -> float:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S,%f").timestamp()

    wait = seconds(joined[-1]) - seconds(joining[-1])
    return {"group_join_s": wait} if wait >= 0 else {}


def wait_first(worker: WorkerProcess, timeout: float = 180.0) -> None:
    """Until the worker has processed its first CDRs."""
    deadline = time.monotonic() + timeout
    while processed(worker) == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
