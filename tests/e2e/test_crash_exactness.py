"""Nothing lost, nothing counted twice: a worker SIGKILLed again and again, and its broker
restarted, while 200,000 CDRs stream in.

The test runs its own broker (it restarts it), one worker on it, and a producer thread that
survives the broker restart. The oracle is fed what the input topic holds at the end, read back
whole, so a message the producer had to send again is accounted for as the duplicate it is.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import ADMIN_TOKEN
from tests.support.cdr_mix import CdrMix, rate_center_table, resolver, utc_now_hour
from tests.support.chaos import (
    REPORTS,
    PrivateBroker,
    ResilientProducer,
    alive,
    check_ranges,
    descendants,
    full_range,
    kill_pids,
    kill_tree,
    mismatches,
    read_topic,
    wait_until_equal,
)
from tests.support.kafka_io import produce_dids
from tests.support.oracle import ReportOracle
from tests.support.worker import WorkerProcess, free_port, worker_env, write_tokens

pytestmark = pytest.mark.timeout(900)

SEED = 4242
MESSAGES = 200_000
CHUNK = 4_000
KILLS = 3
# A restarted worker waits for the group to drop its killed predecessor (the session timeout).
RESTART_READY_S = 180.0


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    broker = PrivateBroker(tmp_path / "kafka").start()
    try:
        yield broker
    finally:
        broker.stop()


class Crew:
    """The test's workers and every process they started, killed at the end whatever happens."""

    def __init__(self) -> None:
        self.workers: list[WorkerProcess] = []
        self.pids: set[int] = set()

    def remember(self, worker: WorkerProcess) -> None:
        if worker.process is not None:
            self.pids.update(descendants(worker.process.pid))

    def cleanup(self) -> None:
        for worker in self.workers:
            self.remember(worker)
            worker.stop()
        kill_pids(sorted(pid for pid in self.pids if alive(pid)))


@pytest.fixture
def crew() -> Iterator[Crew]:
    team = Crew()
    try:
        yield team
    finally:
        team.cleanup()


def start_worker(
    broker: PrivateBroker, name: str, tmp_path: Path, crew: Crew, **extra: str
) -> WorkerProcess:
    data_dir = tmp_path / "worker" / "data"
    data_dir.mkdir(parents=True)
    tokens = write_tokens(tmp_path / "tokens.json", {ADMIN_TOKEN: ["*"]})
    env = worker_env(broker.bootstrap, name, data_dir, free_port(), tokens, **extra)
    worker = WorkerProcess(env, data_dir, int(env["STREAMAGG_WEB_PORT"]), tmp_path / "worker.log")
    crew.workers.append(worker)
    return worker.start()


def log_excerpt(worker: WorkerProcess, words: tuple[str, ...], lines: int = 40) -> str:
    text = worker.log_path.read_text(errors="replace").splitlines()
    hits = [line for line in text if any(word in line for word in words)]
    return "\n".join(hits[-lines:])


@pytest.mark.slow
def test_no_cdr_lost_or_counted_twice_through_sigkills_and_a_broker_restart(
    private_broker: PrivateBroker, crew: Crew, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    now = utc_now_hour()
    mix = CdrMix(seed=SEED, now=now, customers=40, invalid_fraction=0.002)
    messages = mix.messages(MESSAGES)
    chunks = [messages[i : i + CHUNK] for i in range(0, len(messages), CHUNK)]
    csv_text, table, outside = rate_center_table()
    rate_file = tmp_path / "ratecenters.csv"
    rate_file.write_text(csv_text)
    name = f"crash-exactness-{uuid.uuid4().hex[:10]}"
    bootstrap = private_broker.bootstrap
    asyncio.run(produce_dids(bootstrap, f"{name}-dids", mix.dids))

    worker = start_worker(
        private_broker, name, tmp_path, crew, STREAMAGG_RATECENTERS=str(rate_file)
    )
    worker.wait_ready()
    topic = worker.env["STREAMAGG_TOPIC"]
    events: list[str] = []
    t0 = time.monotonic()

    def note(what: str) -> None:
        events.append(f"{time.monotonic() - t0:6.1f} s  {what} (producer acked {producer.acked})")

    def still_running(context: str) -> None:
        assert worker.process is not None
        if worker.process.poll() is not None:
            raise AssertionError(
                f"the worker exited ({worker.process.returncode}) {context}; events:\n"
                + "\n".join(events)
                + f"\n{worker.tail(80)}"
            )

    producer = ResilientProducer(bootstrap, topic, chunks, pause=3.0)
    producer.start()
    try:
        broker_restart_after = rng.randrange(KILLS)
        for kill in range(KILLS):
            time.sleep(rng.uniform(2.0, 15.0))
            crew.remember(worker)
            kill_tree(worker)
            note(f"SIGKILL #{kill + 1}")
            time.sleep(rng.uniform(0.0, 3.0))
            worker.start()
            note("worker restarted")
            if kill == broker_restart_after:
                worker.wait_ready(RESTART_READY_S)
                note("worker ready")
                time.sleep(rng.uniform(2.0, 10.0))
                private_broker.stop()
                note("broker stopped")
                time.sleep(rng.uniform(1.0, 5.0))
                private_broker.start()
                note("broker started")
                time.sleep(5.0)
                still_running("after the broker restart")
        producer.join_checked(timeout=420)
        note(f"producer done, {producer.resent} sends repeated")
        worker.wait_ready(RESTART_READY_S)
        note("worker ready")
        still_running("at the end")
    finally:
        producer.abort()

    # The oracle sees exactly what reached the topic, in partition-offset order.
    values = asyncio.run(read_topic(bootstrap, topic))
    assert len(values) >= MESSAGES, f"the topic holds {len(values)} of {MESSAGES} messages"
    oracle = ReportOracle(values, did_owner=mix.dids, rate_centers=resolver(table, outside))
    assert oracle.accepted_count() > 180_000 and oracle.duplicate_count() > 2_000

    everything = [("tech-prefix", c, *full_range(now)) for c in oracle.customers()]
    try:
        settled = wait_until_equal(
            [worker],
            ADMIN_TOKEN,
            oracle,
            everything,
            timeout=300,
            what="the per-customer totals of all CDRs",
            alive=lambda: still_running("while the reports settle"),
        )
        note(f"reports settled after {settled:.0f} s")
        customers = oracle.customers()
        watched = customers[:6] + customers[-4:]
        checks = [
            (report, customer, start, end)
            for customer in watched
            for report in REPORTS
            for start, end in check_ranges(report, now)
        ]
        assert len(checks) >= 160
        different = mismatches([worker], ADMIN_TOKEN, oracle, checks, limit=10)
        assert not different, "\n".join(different)
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}\nevents:\n"
            + "\n".join(events)
            + "\nworker log (warnings, errors, recovery):\n"
            + log_excerpt(worker, ("WARNING", "ERROR", "Recovery]: Worker ready"))
        ) from exc
    print("\n".join(events))


def test_a_sigkilled_worker_leaves_no_process_behind(
    worker_factory: Callable[..., WorkerProcess],
) -> None:
    """With the ingest stage in a child process, SIGKILL of the worker alone (as the kernel's
    OOM killer would) must not leave that child consuming and producing on its own."""
    worker = worker_factory(STREAMAGG_INGEST_MODE="process")
    worker.wait_ready()
    assert worker.process is not None
    below = descendants(worker.process.pid)
    assert below, "the worker runs its ingest stage in a child process"
    try:
        worker.kill()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(alive(pid) for pid in below):
            time.sleep(0.5)
        left = [pid for pid in below if alive(pid)]
        assert not left, f"processes of the killed worker still running 20 s later: {left}"
    finally:
        kill_pids([pid for pid in below if alive(pid)])
