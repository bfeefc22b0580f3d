"""Run a scenario: a private broker, its workers, the stream and the faults; then the verdict.

The invariants checked at the end of every scenario (docs/exactly-once.md names them):

- every report of every customer over several ranges (UTC, and local days and hours of
  Asia/Kathmandu, UTC+05:45) equals the oracle's (DuckDB over the raw
  input topic as it stands at the end), to the last decimal — no CDR lost, none counted twice;
- the committed dead-letter topic holds every rejected message exactly once;
- no answer during the run was a 5xx other than 503, and a single worker that has just said it
  is ready answered every query (no 503 after readiness);
- no answer during the run showed more than the final truth: every row it held is in the
  oracle's answer, with counts at most the oracle's (late is allowed, ahead never: no call
  counted twice even for a while, no aborted transaction read).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.chaos import scenario as S
from tests.support.broker import PrivateBroker
from tests.support.cdr_mix import CdrMix, rate_center_table, resolver, utc_now_hour
from tests.support.chaos import (
    LOCAL_ZONE,
    REPORTS,
    YEAR_2100_MS,
    Check,
    ResilientProducer,
    above_final,
    check_ranges,
    descendants,
    full_range,
    ingest_children,
    iso,
    kill_pids,
    kill_tree,
    local_check_ranges,
    mismatches,
    read_topic,
    wait_until_equal,
    write_foreign,
)
from tests.support.kafka_io import produce_dids
from tests.support.oracle import ReportOracle
from tests.support.worker import WorkerProcess, free_port, http_get, worker_env, write_tokens

TOKEN = "chaos-admin-token"
READY_TIMEOUT_S = 240.0
SETTLE_TIMEOUT_S = 300.0


@dataclass
class Crew:
    """The scenario's workers; ``down`` holds the ones a fault keeps down on purpose."""

    workers: list[WorkerProcess] = field(default_factory=list)
    down: set[int] = field(default_factory=set)
    pids: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def remember(self, index: int) -> None:
        process = self.workers[index].process
        if process is not None:
            self.pids.add(process.pid)
            self.pids.update(descendants(process.pid))

    def cleanup(self) -> None:
        for index, worker in enumerate(self.workers):
            self.remember(index)
            worker.stop()
        kill_pids(sorted(self.pids))


class Run:
    """One scenario against a broker of its own (see the module docstring)."""

    def __init__(self, scenario: S.Scenario, tmp_path: Path) -> None:
        self.scenario = scenario
        self.tmp = tmp_path
        self.rng = random.Random(scenario.seed * 7919)
        self.name = f"chaos-{scenario.seed}-{uuid.uuid4().hex[:8]}"
        self.broker = PrivateBroker(tmp_path / "kafka")
        self.crew = Crew()
        self.events: list[str] = []
        self.violations: list[str] = []
        self.statuses: Counter[str] = Counter()
        # The prober's answers (report, customer, rows over the full range), while it all ran.
        self.answers: list[tuple[str, str, list[dict[str, Any]]]] = []
        self.t0 = time.monotonic()
        self._stop = threading.Event()
        self.now = utc_now_hour()
        self.mix = CdrMix(
            seed=scenario.seed,
            now=self.now,
            customers=scenario.customers,
            invalid_fraction=0.003,
            recent_fraction=scenario.recent_calls,
            recent_hours=scenario.message_clock_hours,
        )

    # -- the run ------------------------------------------------------------------------------

    def execute(self) -> None:
        self.broker.start()
        try:
            self._execute()
        finally:
            self._stop.set()
            self.crew.cleanup()
            self.broker.stop()

    def _execute(self) -> None:
        scenario = self.scenario
        csv_text, table, outside = rate_center_table()
        (self.tmp / "ratecenters.csv").write_text(csv_text)
        self.resolve = resolver(table, outside)
        asyncio.run(produce_dids(self.broker.bootstrap, f"{self.name}-dids", self.mix.dids))
        tokens = write_tokens(self.tmp / "tokens.json", {TOKEN: ["*"]})
        for index in range(scenario.workers):
            data_dir = self.tmp / f"worker{index}" / "data"
            data_dir.mkdir(parents=True)
            env = worker_env(
                self.broker.bootstrap,
                self.name,
                data_dir,
                free_port(),
                tokens,
                STREAMAGG_PARTITIONS=str(scenario.partitions),
                STREAMAGG_RATECENTERS=str(self.tmp / "ratecenters.csv"),
                STREAMAGG_INGEST_MODE=scenario.ingest_mode,
                **scenario.extra_env,
                **column_sums_env(scenario),
            )
            port = int(env["STREAMAGG_WEB_PORT"])
            log = self.tmp / f"worker{index}.log"
            self.crew.workers.append(WorkerProcess(env, data_dir, port, log))
            self._start(index)
        if scenario.wait_ready_first:
            for index in range(scenario.workers):
                self._wait_ready(self.crew.workers[index])
            self.note("all workers ready")

        phases = [self.mix.messages(p.messages) for p in scenario.phases]
        chunks, pauses, ends = [], [], []
        for phase, messages in zip(scenario.phases, phases, strict=True):
            size = max(1, phase.rate // 2) if phase.kind == "trickle" else 2_000
            for i in range(0, len(messages), size):
                chunks.append(messages[i : i + size])
                pauses.append(0.5 if phase.kind == "trickle" else 0.0)
            ends.append(len(chunks))
        gates = [threading.Event() for _ in scenario.phases]
        for gate, phase in zip(gates, scenario.phases, strict=True):
            if not phase.wait_for_faults:
                gate.set()
        producer = ResilientProducer(
            self.broker.bootstrap,
            f"{self.name}-cdrs",
            chunks,
            pause=pauses,
            gates={start: gates[i] for i, start in enumerate([0, *ends[:-1]])},
            timestamps_ms=message_times(scenario, len(chunks)),
        )
        background = [
            threading.Thread(target=self._supervise, daemon=True),
            threading.Thread(target=self._probe, daemon=True),
        ]
        producer.start()
        for thread in background:
            thread.start()
        try:
            for phase_index, phase in enumerate(scenario.phases):
                if phase.wait_for_faults:  # as an operator would: go on once it is back
                    for index in range(len(self.crew.workers)):
                        self._ready_and_answering(index)
                gates[phase_index].set()
                producer.wait_sent(ends[phase_index], timeout=600)
                self.note(f"phase {phase_index} sent")
                phase_started = time.monotonic()
                for fault in scenario.faults:
                    if fault.after_phase == phase_index:
                        time.sleep(max(0.0, phase_started + fault.delay - time.monotonic()))
                        self.apply(fault)
                if scenario.foreign_batches and phase_index == scenario.foreign_after_phase:
                    asyncio.run(
                        write_foreign(
                            self.broker.bootstrap,
                            f"{self.name}-cdr-batches",
                            [b'{"foreign": "%d-%d"}' % (scenario.seed, i)
                             for i in range(scenario.foreign_batches)],
                            timeout=180,
                        )
                    )  # fmt: skip
                    self.note(f"{scenario.foreign_batches} foreign messages on the batch topic")
            producer.join_checked(timeout=600)
        finally:
            producer.abort()
        self.note(f"stream done ({producer.resent} sends repeated)")
        self.finish()

    # -- faults -------------------------------------------------------------------------------

    def apply(self, fault: S.Fault) -> None:
        self.note(f"fault {fault.describe()}")
        index = fault.worker
        kind = fault.kind
        if kind == S.SIGKILL:
            self._kill(index)
            time.sleep(fault.hold)
            self._start(index)
        elif kind == S.SIGTERM:
            with self._held_down(index):
                self.crew.workers[index].stop()
                time.sleep(fault.hold)
            self._start(index)
        elif kind == S.KILL_IN_STARTUP:
            self._kill(index)
            self._start(index)
            time.sleep(self.rng.uniform(0.2, 6.0))
            self._kill(index)
            self._start(index)
        elif kind == S.KILL_AFTER_READY:
            self._kill(index)
            self._start(index)
            self._ready_and_answering(index)
            self._kill(index)
            time.sleep(fault.hold)
            self._start(index)
        elif kind == S.KILL_TWO:
            other = (index + 1) % len(self.crew.workers)
            self._kill(index)
            time.sleep(self.rng.uniform(0.0, 5.0))
            self._kill(other)
            time.sleep(fault.hold)
            self._start(index)
            self._start(other)
        elif kind == S.BROKER_RESTART:
            self.broker.stop()
            time.sleep(fault.hold)
            self.broker.start()
        elif kind == S.BROKER_RESTART_WORKERS_DOWN:
            for i in range(len(self.crew.workers)):
                self._kill(i)
            self.broker.stop()
            time.sleep(fault.hold)
            self.broker.start()
            for i in range(len(self.crew.workers)):
                self._start(i)
        elif kind == S.BROKER_PAUSE:
            pid = int((self.broker.directory / "kafka.pid").read_text())
            os.kill(pid, signal.SIGSTOP)
            time.sleep(fault.hold)
            os.kill(pid, signal.SIGCONT)
        elif kind == S.WORKER_PAUSE:
            self._signal_tree(index, signal.SIGSTOP)
            time.sleep(fault.hold)
            self._signal_tree(index, signal.SIGCONT)
        elif kind == S.LOST_DISK:
            self._kill(index)
            data_dir = self.crew.workers[index].data_dir
            shutil.rmtree(data_dir)
            data_dir.mkdir()
            self.note(f"w{index} data directory deleted")
            time.sleep(fault.hold)
            self._start(index)
        elif kind == S.KILL_INGEST_CHILD:
            for pid in self._ingest_children(index):
                os.kill(pid, signal.SIGKILL)
        elif kind == S.PAUSE_INGEST_CHILD:
            paused = self._ingest_children(index)
            for pid in paused:
                os.kill(pid, signal.SIGSTOP)
            time.sleep(fault.hold)
            for pid in paused:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
        else:
            raise AssertionError(f"unknown fault {kind}")
        self.note(f"fault {kind} done")

    @contextlib.contextmanager
    def _held_down(self, index: int):  # type: ignore[no-untyped-def]
        with self.crew.lock:
            self.crew.down.add(index)
        try:
            yield
        finally:
            with self.crew.lock:
                self.crew.down.discard(index)

    def _kill(self, index: int) -> None:
        with self.crew.lock:
            self.crew.down.add(index)
            self.crew.remember(index)
            kill_tree(self.crew.workers[index])
        self.note(f"w{index} SIGKILLed")

    def _start(self, index: int, only_if_down: bool = False) -> None:
        """Start the worker (again) unless it runs; ``only_if_down``: only if it died by
        itself (the supervisor's restart must not race a fault that keeps it down)."""
        worker = self.crew.workers[index]
        with self.crew.lock:
            running = worker.process is not None and worker.process.poll() is None
            if running or (only_if_down and index in self.crew.down):
                return
            worker.env.pop("STREAMAGG_FAILPOINTS", None)
            if self.rng.random() < self.scenario.failpoint_chance:
                worker.env["STREAMAGG_FAILPOINTS"] = self.rng.choice(S.FAILPOINTS)
            if worker.process is not None:
                self.note(f"w{index} exited ({worker.process.returncode})")
            worker.start()
            self.crew.down.discard(index)
        self.note(f"w{index} started {worker.env.get('STREAMAGG_FAILPOINTS', '')}".rstrip())

    def _ingest_children(self, index: int) -> list[int]:
        """The worker's ingest child, if it runs one (an OOM kill may pick it alone; a stall
        may freeze it alone)."""
        process = self.crew.workers[index].process
        if process is None or process.poll() is not None:
            self.note(f"w{index} not running: no ingest child")
            return []
        children = ingest_children(process.pid)
        self.note(f"w{index} ingest child {children}")
        return children

    def _signal_tree(self, index: int, sig: signal.Signals) -> None:
        process = self.crew.workers[index].process
        if process is not None and process.poll() is None:
            for pid in [process.pid, *descendants(process.pid)]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)

    def _supervise(self) -> None:
        """Restart a worker a failpoint killed (a crash nobody asked for is a crash too)."""
        while not self._stop.wait(0.5):
            for index in range(len(self.crew.workers)):
                self._start(index, only_if_down=True)

    # -- probes -------------------------------------------------------------------------------

    def _query(self, worker: WorkerProcess, report: str, customer: str) -> httpx.Response:
        start, end = full_range(self.now)
        return http_get(
            f"{worker.base_url}/api/v1/customers/{customer}/reports/{report}",
            params={"from": iso(start), "to": iso(end)},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=20,
        )

    def _probe(self) -> None:
        """Ask random questions all along: a 5xx other than 503 is a violation."""
        rng = random.Random(self.scenario.seed)
        while not self._stop.wait(0.3):
            worker = rng.choice(self.crew.workers)
            customer = rng.choice(self.mix.customer_ids)
            report = rng.choice(REPORTS)
            try:
                response = self._query(worker, report, customer)
            except httpx.HTTPError as exc:
                self.statuses[type(exc).__name__] += 1
                continue
            self.statuses[str(response.status_code)] += 1
            if response.status_code == 200:
                self.answers.append((report, customer, response.json()["rows"]))
            if response.status_code >= 500 and response.status_code != 503:
                self.violation(
                    f"{worker.base_url} answered {response.status_code}: {response.text[:300]}"
                )

    def _ready_and_answering(self, index: int) -> None:
        """Wait for /readyz; then, with one worker, every report must answer 200 at once."""
        worker = self.crew.workers[index]
        self._wait_ready(worker)
        pid = worker.process.pid if worker.process else None
        self.note(f"w{index} ready")
        if len(self.crew.workers) > 1:
            return
        for report in REPORTS:
            for customer in self.mix.customer_ids[:3]:
                try:
                    response = self._query(worker, report, customer)
                except httpx.HTTPError:
                    return  # killed (a failpoint) right after: nothing to hold it to
                same = worker.process is not None and worker.process.pid == pid
                # (a partition an injected error stopped is rightly unavailable until recovered)
                injected = response.status_code == 503 and "failpoint" in response.text
                if (
                    response.status_code != 200
                    and same
                    and not injected
                    and worker.process.poll() is None
                ):
                    self.violation(
                        f"ready, then {response.status_code} for {report}: {response.text[:300]}"
                    )
                    return

    def _wait_ready(self, worker: WorkerProcess) -> None:
        """A worker a failpoint kills meanwhile is restarted by the supervisor: wait on."""
        worker.wait_ready(READY_TIMEOUT_S, tolerate_exit=True)

    # -- the verdict --------------------------------------------------------------------------

    def finish(self) -> None:
        with self.crew.lock:
            down = sorted(self.crew.down)
        for index in down:
            self._start(index)
        for index in range(len(self.crew.workers)):
            self._ready_and_answering(index)
        bootstrap = self.broker.bootstrap
        values = asyncio.run(read_topic(bootstrap, f"{self.name}-cdrs"))
        assert len(values) >= self.scenario.messages, f"{len(values)} messages in the topic"
        oracle = ReportOracle(values, did_owner=self.mix.dids, rate_centers=self.resolve)
        customers = oracle.customers()
        totals = [("tech-prefix", c, *full_range(self.now)) for c in customers]
        settled = wait_until_equal(
            self.crew.workers,
            TOKEN,
            oracle,
            totals,
            SETTLE_TIMEOUT_S,
            "every customer's total of calls",
            alive=self._no_worker_gone,
        )
        self.note(f"totals equal the oracle after {settled:.0f} s")
        checks: list[Check] = [
            (report, customer, start, end)
            for customer in customers
            for report in REPORTS
            for start, end in check_ranges(report, self.now)
        ]
        checks += [
            (report, customer, start, end, LOCAL_ZONE)
            for customer in customers
            for report in REPORTS
            for start, end in local_check_ranges(report, self.now)
        ]
        different = mismatches(self.crew.workers[:1], TOKEN, oracle, checks, limit=10)
        assert not different, "reports differ from the oracle:\n" + "\n".join(different)
        dlq = asyncio.run(read_topic(bootstrap, f"{self.name}-dlq", committed=True))
        # (the foreign messages as written to the batch topic: each copy dead-lettered once)
        foreign = asyncio.run(
            read_topic(bootstrap, f"{self.name}-cdr-batches", keep=is_foreign, committed=True)
        )
        assert len(foreign) >= self.scenario.foreign_batches
        rejected = oracle.rejected() + foreign
        assert sorted(dlq) == sorted(rejected), (
            f"the committed DLQ holds {len(dlq)} messages, {len(rejected)} were rejected"
            f" ({len(foreign)} of them foreign messages of the batch topic)"
        )
        self._stop.set()
        start, end = full_range(self.now)
        ahead = above_final(
            self.answers, lambda report, customer: oracle.report(report, customer, start, end)
        )
        assert not ahead, "answers during the run showed more than the final truth:\n" + (
            "\n".join(ahead)
        )
        assert not self.violations, "\n".join(self.violations[:10])
        self.note(
            f"verdict: equal ({len(checks)} checks, {len(dlq)} DLQ, {len(self.answers)} answers "
            f"during the run never above the final ones, {dict(self.statuses)})"
        )

    def _no_worker_gone(self) -> None:
        if self.violations:
            raise AssertionError("\n".join(self.violations[:10]))

    # -- notes --------------------------------------------------------------------------------

    def note(self, what: str) -> None:
        self.events.append(f"{time.monotonic() - self.t0:7.1f} s  {what}")

    def violation(self, what: str) -> None:
        self.note(f"VIOLATION {what}")
        self.violations.append(what)

    def report(self, lines: int = 30) -> str:
        logs = []
        for index, worker in enumerate(self.crew.workers):
            text = (
                worker.log_path.read_text(errors="replace").splitlines()
                if worker.log_path.exists()
                else []
            )
            hits = [
                line
                for line in text
                if any(w in line for w in ("ERROR", "WARNING", "failpoint", "recovered", "stopped"))
            ]
            logs.append(f"--- w{index} ({worker.log_path}):\n" + "\n".join(hits[-lines:]))
        return "events:\n" + "\n".join(self.events) + "\n" + "\n".join(logs)


def run_scenario(scenario: S.Scenario, tmp_path: Path, replay: Callable[[], str]) -> list[str]:
    """Run it; on failure raise with the scenario, the events, the logs and the replay command."""
    run = Run(scenario, tmp_path)
    try:
        run.execute()
    except BaseException as exc:
        raise AssertionError(
            f"seed {scenario.seed} failed: {scenario.describe()}\n{exc}\n{run.report()}\n"
            f"replay: {replay()}"
        ) from exc
    return run.events


def is_foreign(record: Any) -> bool:
    """A message of the batch topic that streamagg did not write (no format header)."""
    return not any(name == "streamagg-format" for name, _value in record.headers or ())


def message_times(scenario: S.Scenario, chunks: int) -> list[int | None] | None:
    """Each chunk's message time (None: the broker's clock): the scenario's message clock, and
    with ``stamped_ahead`` one chunk in the middle of the stream stamped in the year 2100."""
    clock = message_clock(scenario, chunks)
    if not scenario.stamped_ahead:
        return list(clock) if clock is not None else None
    times: list[int | None] = list(clock) if clock is not None else [None] * chunks
    times[chunks // 2] = YEAR_2100_MS
    return times


def message_clock(scenario: S.Scenario, chunks: int) -> list[int] | None:
    """Message times that run from ``message_clock_hours`` ago to now over the stream, chunk
    by chunk (None: the broker's clock). The newest message time then closes hour after hour
    while the faults happen, moving the state's first open hour (tables/rollup.py), and stays
    within the dedup horizon of every duplicate."""
    if not scenario.message_clock_hours:
        return None
    now_ms = int(time.time() * 1000)
    span_ms = scenario.message_clock_hours * 3_600_000
    return [now_ms - span_ms + span_ms * i // max(1, chunks - 1) for i in range(chunks)]


def column_sums_env(scenario: S.Scenario) -> dict[str, str]:
    if scenario.column_sums_from is None:
        return {}
    return {"STREAMAGG_COLUMN_SUMS_FROM": str(scenario.column_sums_from)}
