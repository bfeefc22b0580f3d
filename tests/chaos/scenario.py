"""A fault scenario drawn from a seed: the data, the shape of the stream, the faults.

Everything about a scenario is decided here, from its seed alone, so that a failing seed
replays the same data, stream and fault sequence (timings are best effort: processes and the
broker run at their own pace).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

# Fault kinds (see runner.py for what each does).
SIGKILL = "sigkill"  # a worker and its children, then restart it
SIGTERM = "sigterm"  # a clean stop, then restart
KILL_IN_STARTUP = "kill-in-startup"  # restart, kill it again during start-up or recovery
KILL_AFTER_READY = "kill-after-ready"  # restart, kill it the moment /readyz says 200
KILL_TWO = "kill-two"  # two workers, one after the other: kills during the rebalance
BROKER_RESTART = "broker-restart"  # broker stop/start with the workers up
BROKER_RESTART_WORKERS_DOWN = "broker-restart-workers-down"
BROKER_PAUSE = "broker-pause"  # SIGSTOP the broker, SIGCONT after hold
WORKER_PAUSE = "worker-pause"  # SIGSTOP a worker past the session timeout: it comes back a zombie
# Drawn after everything else (a seed's earlier draws are unchanged by them):
LOST_DISK = "lost-disk"  # SIGKILL, its data directory deleted, restart: a new machine or volume
KILL_INGEST_CHILD = "kill-ingest-child"  # SIGKILL of the ingest child only (process mode)
PAUSE_INGEST_CHILD = "pause-ingest-child"  # SIGSTOP of the ingest child only, past its session

SINGLE_WORKER_FAULTS = (
    SIGKILL,
    SIGKILL,
    SIGTERM,
    KILL_IN_STARTUP,
    KILL_AFTER_READY,
    BROKER_RESTART,
    BROKER_RESTART_WORKERS_DOWN,
    BROKER_PAUSE,
    WORKER_PAUSE,
)
MULTI_WORKER_FAULTS = (*SINGLE_WORKER_FAULTS, KILL_TWO, WORKER_PAUSE)

# Failpoints a worker start may carry (streamagg/failpoints.py): name=probability, a SIGKILL
# there; with ":error" an OSError (a full disk, a lost connection) that the worker lives
# through, stopping and recovering the partition (state) or restarting the stage (ingest).
FAILPOINTS = (
    "state.before-kafka-commit=0.03",
    "state.after-kafka-commit=0.03",
    "state.catching-up=0.3",
    "ingest.before-commit=0.02",
    "ingest.after-commit=0.02",
    "state.before-kafka-commit=0.03:error",
    "state.after-kafka-commit=0.03:error",
    "state.catching-up=0.2:error",
    "ingest.before-commit=0.02:error",
    "ingest.after-commit=0.02:error",
)


@dataclass(frozen=True)
class Phase:
    """A stretch of the stream: a burst (as fast as possible) or a trickle (per second)."""

    kind: str  # "burst" | "trickle"
    messages: int
    rate: int = 0  # messages per second of a trickle
    wait_for_faults: bool = False  # start only once the faults of earlier phases are over


@dataclass(frozen=True)
class Fault:
    after_phase: int  # the fault starts this long after that phase's last message was sent
    delay: float
    kind: str
    worker: int = 0
    hold: float = 0.0  # how long the worker or broker stays down or paused

    def describe(self) -> str:
        hold = f" {self.hold:.1f}s" if self.hold else ""
        return f"p{self.after_phase}+{self.delay:.1f}s {self.kind}(w{self.worker}{hold})"


@dataclass(frozen=True)
class Scenario:
    seed: int
    workers: int
    partitions: int
    customers: int
    phases: tuple[Phase, ...]
    faults: tuple[Fault, ...]
    ingest_mode: str = "inline"
    failpoint_chance: float = 0.0  # chance that a worker (re)start carries a failpoint
    wait_ready_first: bool = True  # False: the stream starts while the workers start up
    extra_env: dict[str, str] = field(default_factory=dict)
    # Message times from this many hours ago to now over the stream (0: the broker's clock): the
    # state's open hours close during the faults (tables/rollup.py). Within the dedup horizon.
    message_clock_hours: int = 0
    # The share of calls that start within the message clock's span instead of over 13 months:
    # the hours that close during the faults hold many calls, some arriving while their hour is
    # open, some after it closed.
    recent_calls: float = 0.0
    # One chunk of the stream sent with a message time in the year 2100 (a producer with a
    # broken clock): the dedup horizon and the hours' closing run on message times.
    stamped_ahead: bool = False
    # Messages without a streamagg format header written to the internal batch topic (a producer
    # pointed there by mistake) after this phase's faults: each must reach the DLQ exactly once,
    # from the state's transactions, and stop nothing.
    foreign_batches: int = 0
    foreign_after_phase: int = 0
    # STREAMAGG_COLUMN_SUMS_FROM of the workers (None: the default)
    column_sums_from: int | None = None

    @property
    def messages(self) -> int:
        return sum(phase.messages for phase in self.phases)

    def describe(self) -> str:
        shape = "+".join(f"{p.kind[0]}{p.messages // 1000}k" for p in self.phases)
        faults = ", ".join(f.describe() for f in self.faults) or "no faults"
        fp = f" failpoints {self.failpoint_chance:.0%}" if self.failpoint_chance else ""
        early = "" if self.wait_ready_first else " early"
        clock = f" clock-{self.message_clock_hours}h" if self.message_clock_hours else ""
        if self.recent_calls:
            clock += f" recent-{self.recent_calls:.0%}"
        if self.stamped_ahead:
            clock += " stamped-2100"
        if self.foreign_batches:
            clock += f" foreign-{self.foreign_batches}@p{self.foreign_after_phase}"
        if self.column_sums_from is not None:
            clock += f" columns-from-{self.column_sums_from}"
        return (
            f"{self.workers}w {self.partitions}p {self.ingest_mode} {self.customers}c "
            f"{shape}{early}{fp}{clock}: {faults}"
        )


def draw(seed: int) -> Scenario:
    rng = random.Random(seed)
    workers = rng.choice((1, 1, 2, 3))
    phases = []
    for _ in range(rng.randint(2, 5)):
        if rng.random() < 0.6:
            phases.append(Phase("burst", rng.randrange(3_000, 25_000)))
        else:
            rate = rng.choice((200, 500, 1_000))
            phases.append(Phase("trickle", rate * rng.randint(3, 10), rate=rate))
    kinds = SINGLE_WORKER_FAULTS if workers == 1 else MULTI_WORKER_FAULTS
    faults = []
    for _ in range(rng.randint(1, 5)):
        kind = rng.choice(kinds)
        hold = {
            BROKER_PAUSE: rng.uniform(3, 15),
            WORKER_PAUSE: rng.uniform(12, 20),  # past the 10 s session timeout
            BROKER_RESTART: rng.uniform(1, 6),
            BROKER_RESTART_WORKERS_DOWN: rng.uniform(1, 6),
        }.get(kind, rng.uniform(0, 3))
        faults.append(
            Fault(
                after_phase=rng.randrange(len(phases)),
                delay=rng.uniform(0, 3),
                kind=kind,
                worker=rng.randrange(workers),
                hold=hold,
            )
        )
    faults.sort(key=lambda f: (f.after_phase, f.delay))
    scenario = Scenario(
        seed=seed,
        workers=workers,
        partitions=rng.choice((4, 8)),
        customers=rng.randint(3, 12),
        phases=tuple(phases),
        faults=tuple(faults),
        ingest_mode=rng.choice(("inline", "inline", "process")),
        failpoint_chance=rng.choice((0.0, 0.0, 0.3)),
        wait_ready_first=rng.random() < 0.7,
        # (drawn last: the scenarios of seeds run before it existed are unchanged otherwise)
        message_clock_hours=rng.choice((0, 6, 30)),
    )
    # (drawn after everything else, as the clock was: a seed's other fields are unchanged)
    if scenario.message_clock_hours and rng.random() < 0.5:
        scenario = replace(scenario, recent_calls=0.6)
    # (drawn after that: the faults drawn above stay as they were, one more may join them)
    if rng.random() < 0.4:
        process_mode = scenario.ingest_mode == "process"
        kinds = (LOST_DISK, KILL_INGEST_CHILD, PAUSE_INGEST_CHILD) if process_mode else (LOST_DISK,)
        after_phase, delay, kind = rng.randrange(len(phases)), rng.uniform(0, 3), rng.choice(kinds)
        extra = Fault(
            after_phase=after_phase,
            delay=delay,
            kind=kind,
            worker=rng.randrange(workers),
            # (a paused child outlives its consumer session: its partitions move, if another
            # worker's child is there to take them, and its producers are fenced)
            hold=rng.uniform(12, 20) if kind == PAUSE_INGEST_CHILD else rng.uniform(0, 3),
        )
        faults = sorted((*scenario.faults, extra), key=lambda f: (f.after_phase, f.delay))
        scenario = replace(scenario, faults=tuple(faults))
    # (drawn last of all, from seed 359 on)
    if rng.random() < 0.3:
        scenario = replace(scenario, stamped_ahead=True)
    # (drawn last of all, from seed 459 on)
    if rng.random() < 0.3:
        scenario = replace(
            scenario,
            foreign_batches=rng.randint(1, 3),
            foreign_after_phase=rng.randrange(len(phases)),
        )
    # (drawn last of all, from seed 520 on: the state's transactions summed on columns from
    # their first record, or from a few hundred, instead of from 5,000 records, which the
    # scenarios' bursts rarely reach)
    if rng.random() < 0.6:
        scenario = replace(scenario, column_sums_from=rng.choice((0, 300)))
    return scenario
