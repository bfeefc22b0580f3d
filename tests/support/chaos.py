"""Helpers of the fault tests: a producer that survives broker restarts, reading a topic back
whole, and comparing API reports with the oracle.

The fault tests restart a broker, so they never use the session's shared one: each runs a
``PrivateBroker`` (tests/support/broker.py) on its own port and folder, stopped and started
again on the same data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from tests.support.common import REPORT_IDS, iso, month_start
from tests.support.oracle import ReportOracle
from tests.support.worker import WorkerProcess

# (report, customer, start, end[, tz]): one answer compared with the oracle; UTC unless given.
Check = tuple[str, str, datetime, datetime] | tuple[str, str, datetime, datetime, str]

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
REPORTS = REPORT_IDS


# -- producing through broker restarts ----------------------------------------------------------


class ResilientProducer(threading.Thread):
    """Sends ``chunks`` to ``topic`` from a thread of its own, pausing ``pause`` s after each
    chunk (one value for all, or one per chunk); a chunk with a gate waits for it to be set.

    Every message is sent until the broker acknowledges it. The producer is idempotent, so its
    own retries never duplicate; a message whose send failed as a whole (its batch expired while
    the broker was down) is sent again, which may duplicate it if the broker had written it after
    all. ``resent`` counts those; the test feeds the oracle what the topic holds, not the chunks.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        chunks: Sequence[Sequence[bytes]],
        pause: float | Sequence[float],
        gates: dict[int, threading.Event] | None = None,
        timestamps_ms: Sequence[int | None] | None = None,
    ) -> None:
        super().__init__(name="resilient-producer", daemon=True)
        self.timestamps_ms = timestamps_ms  # one per chunk (None: the broker's clock)
        self.bootstrap = bootstrap
        self.topic = topic
        self.chunks = chunks
        self.pauses = [pause] * len(chunks) if isinstance(pause, int | float) else list(pause)
        self.gates = gates or {}
        self.chunks_sent = 0
        self._progress = threading.Condition()
        self.acked = 0
        self.resent = 0
        self.errors: list[str] = []
        self.failure: BaseException | None = None
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by join_checked
            self.failure = exc

    def abort(self) -> None:
        self._stop_event.set()
        with self._progress:
            self._progress.notify_all()

    def wait_sent(self, chunks: int, timeout: float) -> None:
        """Block until the first ``chunks`` chunks are acknowledged by the broker."""
        deadline = time.monotonic() + timeout
        with self._progress:
            while self.chunks_sent < chunks:
                if self.failure is not None or self._stop_event.is_set():
                    raise AssertionError(f"the producer stopped: {self.failure!r}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{self.chunks_sent} of {chunks} chunks sent in time")
                self._progress.wait(min(left, 1.0))

    def join_checked(self, timeout: float) -> None:
        self.join(timeout)
        if self.is_alive():
            self.abort()
            raise AssertionError(
                f"the producer did not finish within {timeout:.0f} s "
                f"({self.acked} acknowledged; last errors {self.errors[-3:]})"
            )
        if self.failure is not None:
            raise AssertionError(f"the producer failed: {self.failure!r}") from self.failure

    async def _connect(self) -> AIOKafkaProducer:
        while True:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap,
                acks="all",
                enable_idempotence=True,
                linger_ms=20,
                max_batch_size=512 * 1024,
                request_timeout_ms=20000,
            )
            try:
                await producer.start()
                return producer
            except Exception as exc:
                self.errors.append(f"start: {exc!r}")
                await _quietly_stop(producer)
                if self._stop_event.is_set():
                    raise
                await asyncio.sleep(1)

    async def _main(self) -> None:
        producer = await self._connect()
        try:
            for index, chunk in enumerate(self.chunks):
                gate = self.gates.get(index)
                while gate is not None and not gate.is_set():
                    if self._stop_event.is_set():
                        return
                    await asyncio.sleep(0.1)
                pending = list(chunk)
                attempt = 0
                while pending:
                    if self._stop_event.is_set():
                        return
                    if attempt:
                        self.resent += len(pending)
                    attempt += 1
                    futures: list[asyncio.Future[Any]] = []
                    stamp = None if self.timestamps_ms is None else self.timestamps_ms[index]
                    try:
                        for value in pending:
                            futures.append(
                                await producer.send(self.topic, value, timestamp_ms=stamp)
                            )
                    except Exception as exc:
                        self.errors.append(f"send: {exc!r}")
                    results = await asyncio.gather(*futures, return_exceptions=True)
                    failed = [v for v, r in zip(pending, results, strict=False) if _failed(r)]
                    unsent = pending[len(futures) :]
                    errors = [r for r in results if _failed(r)]
                    if errors:
                        self.errors.append(f"ack: {len(errors)} x {errors[0]!r}")
                    self.acked += len(pending) - len(failed) - len(unsent)
                    pending = failed + unsent
                    if pending:
                        # A fresh producer: the old one's sequence state may be unusable now.
                        await _quietly_stop(producer)
                        await asyncio.sleep(1)
                        producer = await self._connect()
                with self._progress:
                    self.chunks_sent = index + 1
                    self._progress.notify_all()
                await asyncio.sleep(self.pauses[index])
        finally:
            await _quietly_stop(producer)


def _failed(result: object) -> bool:
    return isinstance(result, BaseException)


async def _quietly_stop(producer: AIOKafkaProducer) -> None:
    try:
        await asyncio.wait_for(producer.stop(), 30)
    except Exception as exc:  # a producer that cannot reach the broker may not stop cleanly
        log.info("producer stop: %r", exc)


async def partitions_of(bootstrap: str, topic: str) -> list[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = sorted(p["partition"] for t in described for p in t["partitions"])
    assert partitions, f"no topic {topic}: {described}"
    return partitions


async def read_topic(
    bootstrap: str,
    topic: str,
    timeout: float = 120.0,
    committed: bool = False,
    keep: Callable[[Any], bool] | None = None,
) -> list[bytes]:
    """Every message value of ``topic`` up to its current end, partition by partition, each in
    offset order (of committed transactions only, with ``committed``; of the records ``keep``
    keeps, with it)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level="read_committed" if committed else "read_uncommitted",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=32 * 1024 * 1024,
    )
    await consumer.start()
    try:
        partitions = await partitions_of(bootstrap, topic)
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        got: dict[TopicPartition, list[bytes]] = {tp: [] for tp in tps}
        position = {tp: 0 for tp in tps}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while any(position[tp] < ends[tp] for tp in tps):
            if loop.time() > deadline:
                raise AssertionError(f"read {position} of {ends} of {topic} in {timeout:.0f} s")
            polled = await consumer.getmany(timeout_ms=500)
            for tp, records in polled.items():
                for record in records:
                    if record.offset < ends[tp] and (keep is None or keep(record)):
                        got[tp].append(bytes(record.value or b""))
            for tp in tps:  # past transaction markers and aborted records too
                position[tp] = await consumer.position(tp)
        return [value for tp in tps for value in got[tp]]
    finally:
        await consumer.stop()


async def write_foreign(
    bootstrap: str, topic: str, values: Sequence[bytes], timeout: float
) -> None:
    """Send ``values`` to ``topic`` without a streamagg format header (a producer pointed at the
    internal batch topic by mistake), one to each partition in turn, riding out a broker that
    is down or paused (an idempotent producer: a retried send is written once)."""
    partitions = await partitions_of(bootstrap, topic)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    left = list(enumerate(values))
    while left:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=True,
            request_timeout_ms=10_000,
        )
        try:
            await asyncio.wait_for(producer.start(), 15)
            while left:
                index, value = left[0]
                partition = partitions[index % len(partitions)]
                await asyncio.wait_for(
                    producer.send_and_wait(topic, value, partition=partition), 15
                )
                left.pop(0)
        except Exception:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(1)
        finally:
            await _quietly_stop(producer)


# -- reports -------------------------------------------------------------------------------------


def full_range(now: datetime) -> tuple[datetime, datetime]:
    """13 months and more: every CDR of the mix (its calls reach 380 days back)."""
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=395), today + timedelta(days=1)


def check_ranges(report: str, now: datetime) -> list[tuple[datetime, datetime]]:
    """13 months, a month, a day and an hour; the day and hour where the mix is dense (around
    the start of last month: CdrMix puts 30 % of its calls near month boundaries)."""
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    boundary = month_start(now, 1)
    spans = [
        (month_start(now, 12), today + timedelta(days=1)),  # 13 months
        (month_start(now, 2), month_start(now, 1)),  # a month
        (boundary - timedelta(days=1), boundary),  # a day
    ]
    if report != "did-cli":  # per-day report: whole days only
        spans.append((boundary - timedelta(hours=1), boundary))  # an hour
        spans.append((boundary, boundary + timedelta(hours=1)))
    return spans


LOCAL_ZONE = "Asia/Kathmandu"  # UTC+05:45: its days and hours cut UTC hours at a quarter


def local_check_ranges(report: str, now: datetime) -> list[tuple[datetime, datetime]]:
    """The local day of Asia/Kathmandu around the dense month boundary, and for hourly reports
    a local hour there (SPEC §6: the quarter-hours of the state under faults too)."""
    zone = ZoneInfo(LOCAL_ZONE)
    boundary = month_start(now, 1).replace(tzinfo=zone)  # (midnight there: wall time)
    spans = [(boundary - timedelta(days=1), boundary)]
    if report != "did-cli":
        spans.append((boundary + timedelta(hours=5), boundary + timedelta(hours=6)))
    return spans


def api_rows(
    worker: WorkerProcess,
    token: str,
    report: str,
    customer: str,
    start: datetime,
    end: datetime,
    tolerate: Collection[int] = (502, 503, 504),
    seen: Counter[str] | None = None,
    tz: str = "UTC",
) -> list[Any] | None:
    """The report's rows, or None when the worker cannot answer right now (a status in
    ``tolerate``, or not reachable); ``seen`` counts those non-answers by status."""
    try:
        response = worker.get_all_pages(
            f"/api/v1/customers/{customer}/reports/{report}",
            token,
            **{"from": iso(start), "to": iso(end), "tz": tz},
        )
    except Exception as exc:
        if seen is not None:
            seen[type(exc).__name__] += 1
        return None
    if response.status_code in tolerate:
        if seen is not None:
            seen[f"{response.status_code}: {response.text[:200]}"] += 1
        return None
    assert response.status_code == 200, f"{response.status_code}: {response.text}"
    rows: list[Any] = response.json()["rows"]
    return rows


def mismatches(
    workers: Sequence[WorkerProcess],
    token: str,
    oracle: ReportOracle,
    checks: Sequence[Check],
    limit: int = 3,
    tolerate: Collection[int] = (502, 503, 504),
    seen: Counter[str] | None = None,
) -> list[str]:
    """What differs between the workers' answers and the oracle (empty: all equal)."""
    found: list[str] = []
    for worker in workers:
        for check in checks:
            report, customer, start, end, tz = (*check, "UTC")[:5]
            got = api_rows(worker, token, report, customer, start, end, tolerate, seen, tz)
            expected = oracle.report(report, customer, start, end, tz=tz)
            if got != expected:
                head = f"{report} in {tz}" if tz != "UTC" else report
                found.append(describe(worker, head, customer, start, end, got, expected))
                if len(found) >= limit:
                    return found
    return found


def describe(
    worker: WorkerProcess,
    report: str,
    customer: str,
    start: datetime,
    end: datetime,
    got: list[Any] | None,
    expected: list[Any],
) -> str:
    head = f"{worker.base_url} {report} customer {customer} [{iso(start)}, {iso(end)})"
    if got is None:
        return f"{head}: no answer (503 or unreachable)"
    if report.startswith("tech-prefix"):
        total_got = sum(r["total"] for r in got)
        total_exp = sum(r["total"] for r in expected)
        text = (
            f"{head}: total calls {total_got}, expected {total_exp}; got {got}, expected {expected}"
        )
        return text[:4000]
    diff_got = [r for r in got if r not in expected][:3]
    diff_exp = [r for r in expected if r not in got][:3]
    return (
        f"{head}: {len(got)} rows, expected {len(expected)}; "
        f"only in the API {diff_got}; only expected {diff_exp}"
    )


def wait_until_equal(
    workers: Sequence[WorkerProcess],
    token: str,
    oracle: ReportOracle,
    checks: Sequence[Check],
    timeout: float,
    what: str,
    alive: Callable[[], None] | None = None,
    tolerate: Collection[int] = (502, 503, 504),
    seen: Counter[str] | None = None,
) -> float:
    """Poll until every check equals the oracle; returns the seconds it took, fails with the
    last differences after ``timeout``."""
    started = time.monotonic()
    deadline = started + timeout
    last: list[str] = ["never compared"]
    while time.monotonic() < deadline:
        if alive is not None:
            alive()
        last = mismatches(workers, token, oracle, checks, 3, tolerate, seen)
        if not last:
            return time.monotonic() - started
        time.sleep(2)
    raise AssertionError(f"{what}: still different after {timeout:.0f} s:\n" + "\n".join(last))


def utc_now() -> datetime:
    return datetime.now(UTC)


# -- processes -----------------------------------------------------------------------------------


def descendants(pid: int) -> list[int]:
    """The ids of every living process below ``pid`` (children, grandchildren, ...)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def ingest_children(pid: int) -> list[int]:
    """The worker's ingest child process (STREAMAGG_INGEST_MODE=process), if it has one: a
    multiprocessing child below ``pid`` that is not its resource tracker."""
    return [child for child in descendants(pid) if _is_ingest_child(child)]


def _is_ingest_child(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            text = b" ".join(cmdline.read().split(b"\0"))
    except OSError:
        return False
    return b"spawn_main" in text and b"resource_tracker" not in text


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def kill_pids(pids: Sequence[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)


def kill_tree(worker: WorkerProcess) -> list[int]:
    """SIGKILL the worker and every process it started (its ingest child), all at once, as an
    OOM kill of its container would; returns the ids of the processes below it."""
    below = descendants(worker.process.pid) if worker.process is not None else []
    worker.kill()
    kill_pids(below)
    return below


# A message time a producer with a broken clock may send (the fault suite's `stamped-2100`).
YEAR_2100_MS = 4_102_444_800_000

# The columns of each report that only grow as calls are added (averages and ratios do not).
GROWING = {
    "dtmf": ("dtmf_count", "calls"),
    "rate-center": ("call_count",),
    "did-cli": ("count",),
    "tech-prefix": ("total", "answered_calls"),
    "routes": ("attempts", "answered_calls"),
}
_MONEY = re.compile(r"-?[0-9]+\.[0-9]{6}")


def row_identity(row: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The columns that name a row (its text, not its amounts)."""
    return tuple(
        (name, value)
        for name, value in row.items()
        if isinstance(value, str) and not _MONEY.fullmatch(value)
    )


def above_final(
    answers: Sequence[tuple[str, str, list[dict[str, Any]]]],
    final: Callable[[str, str], list[dict[str, Any]]],
    limit: int = 10,
) -> list[str]:
    """Answers given while the stream and the faults ran that show more than the final truth:
    a row the final answer lacks, or a count above the final one. A worker may answer late
    (less), never ahead (a call counted twice, even for a while, or an aborted transaction
    read)."""
    found: list[str] = []
    truths: dict[tuple[str, str], dict[Any, dict[str, Any]]] = {}
    for report, customer, rows in answers:
        truth = truths.get((report, customer))
        if truth is None:
            truth = {row_identity(r): r for r in final(report, customer)}
            truths[(report, customer)] = truth
        for row in rows:
            expected = truth.get(row_identity(row))
            if expected is None:
                found.append(f"{report} {customer}: {row} is not in the final answer")
            else:
                found += [
                    f"{report} {customer}: {name} {row[name]} > {expected[name]} finally, in {row}"
                    for name in GROWING[report]
                    if row[name] > expected[name]
                ]
            if len(found) >= limit:
                return found[:limit]
    return found
