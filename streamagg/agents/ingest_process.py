"""Run the ingest stage in a child process, so that a worker uses two cores.

Decoding and validating CDRs (the ingest stage) and folding batches into the tables (the Faust
report agent) each take about half of a worker's CPU; Python runs one of them at a time per
process. The child runs the ingest stage with its own DID inventory and sends the parent a
snapshot of its state twice a second: whether it runs, whether the inventory is loaded, and its
metrics (rejected CDRs, input messages lost to retention, input lag), which the parent shows on
its own /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from streamagg.gc_tuning import tune_collector
from streamagg.kafka_clients import LagSeries
from streamagg.log_limits import limit_repeats, report_held_repeats
from streamagg.metrics import Metrics, create_metrics
from streamagg.settings import Settings

if TYPE_CHECKING:
    from streamagg.agents.ingest import IngestStage
    from streamagg.reference.dids import DidInventory

log = logging.getLogger(__name__)

SNAPSHOT_SECONDS = 0.5
RESTART_SECONDS = 3.0
STOP_SECONDS = 10.0  # how long the child has to finish its transaction after SIGTERM


@dataclass
class IngestSnapshot:
    running: bool = False
    inventory_loaded: bool = False
    dids: int = 0
    rejected: float = 0.0
    lost: dict[str, float] = field(default_factory=dict)  # topic → messages lost to retention
    lag: dict[tuple[str, str], float] = field(default_factory=dict)


def _child_main(settings: Settings, conn: Connection) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s ingest[%(process)d] %(name)s: %(message)s",
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_child(settings, conn))


async def _child(settings: Settings, conn: Connection) -> None:
    from streamagg.agents.ingest import IngestStage
    from streamagg.reference.dids import DidInventory

    registry = CollectorRegistry()
    metrics = create_metrics(registry)
    inventory = DidInventory(settings)
    stage = IngestStage(settings, metrics, inventory.owner)
    tune_collector()
    repeats = asyncio.create_task(report_held_repeats(limit_repeats("aiokafka")))

    parent = os.getppid()

    async def report() -> None:
        while True:
            if os.getppid() != parent:  # the worker died (even by SIGKILL): so do we
                stage.stop()
                return
            snapshot = IngestSnapshot(
                running=stage.running.is_set(),
                inventory_loaded=inventory.loaded,
                dids=len(inventory),
                rejected=registry.get_sample_value("streamagg_cdrs_total", {"outcome": "rejected"})
                or 0.0,
                lost={
                    topic: value
                    for (topic,), value in _samples(
                        registry, "streamagg_messages_lost_total", "topic"
                    ).items()
                },
                lag=_samples(registry, "streamagg_consumer_lag_messages", "topic", "partition"),
            )
            try:
                conn.send(snapshot)
            except OSError:  # the worker closed its end: it is gone or restarting us
                stage.stop()
                return
            await asyncio.sleep(SNAPSHOT_SECONDS)

    reporter = asyncio.create_task(report())
    try:
        await run_after_inventory(inventory, stage)
    finally:
        reporter.cancel()
        repeats.cancel()


async def run_after_inventory(inventory: DidInventory, stage: IngestStage) -> None:
    """Read the DID inventory to its end, then run the stage (SPEC §2: no CDR is processed
    before that); the inventory's reader stops with the stage."""
    await inventory.start()
    try:
        await inventory.wait_loaded()
        log.info("DID inventory loaded (%d DIDs); starting the ingest stage", len(inventory))
        await stage.run()
    finally:
        await inventory.stop()


def _samples(registry: CollectorRegistry, name: str, *labels: str) -> dict[Any, float]:
    """The samples ``name`` of the registry, by the values of their ``labels`` (a tuple)."""
    return {
        tuple(sample.labels[label] for label in labels): sample.value
        for family in registry.collect()
        for sample in family.samples
        if sample.name == name
    }


class _GrowthMirror:
    """Shows a counter of the child on the parent's: what each snapshot adds to the last one,
    per label value (a restarted child counts from 0 again: ``restart``)."""

    def __init__(self, counter: Any, label: str) -> None:
        self._counter = counter
        self._label = label
        self._seen: dict[str, float] = {}

    def restart(self) -> None:
        self._seen = {}

    def show(self, values: dict[str, float]) -> None:
        for value_of_label, value in values.items():
            seen = self._seen.get(value_of_label, 0.0)
            if value > seen:
                self._counter.labels(**{self._label: value_of_label}).inc(value - seen)
        self._seen = dict(values)


class IngestProcess:
    """The parent's handle on the ingest child: starts it, mirrors its state, restarts it."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.running = asyncio.Event()
        self.snapshot = IngestSnapshot()
        self._process: Any = None
        self._conn: Connection | None = None
        self._rejected = _GrowthMirror(metrics.cdrs, "outcome")
        self._lost = _GrowthMirror(metrics.messages_lost, "topic")
        self._lag = LagSeries(metrics.consumer_lag)
        metrics.messages_lost.labels(topic=settings.topic)  # (at 0 from the start: the alert)
        self._stopping = False

    @property
    def inventory_loaded(self) -> bool:
        return self.snapshot.inventory_loaded

    def _spawn(self) -> None:
        context = multiprocessing.get_context("spawn")
        parent_end, child_end = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_child_main,
            args=(self.settings, child_end),
            name="streamagg-ingest",
            daemon=True,
        )
        self._process.start()
        child_end.close()
        self._conn = parent_end
        self._rejected.restart()
        self._lost.restart()
        log.info("ingest stage started in process %d", self._process.pid)

    async def run(self) -> None:
        """Keep the child alive and mirror its snapshots until stopped."""
        loop = asyncio.get_running_loop()
        while not self._stopping:
            if self._process is None or not self._process.is_alive():
                if self._process is not None:
                    log.warning(
                        "ingest process exited with %s; restarting in %.0f s",
                        self._process.exitcode,
                        RESTART_SECONDS,
                    )
                    self._mirror(IngestSnapshot())
                    await asyncio.sleep(RESTART_SECONDS)
                self._spawn()
            conn = self._conn
            assert conn is not None
            has_data = await loop.run_in_executor(None, conn.poll, 1.0)
            if has_data:
                try:
                    self._mirror(conn.recv())
                except (EOFError, OSError):
                    await asyncio.sleep(0.1)

    def _mirror(self, snapshot: IngestSnapshot) -> None:
        self.snapshot = snapshot
        if snapshot.running:
            self.running.set()
        else:
            self.running.clear()
        self._rejected.show({"rejected": snapshot.rejected})
        self._lost.show(snapshot.lost)
        # (A partition the child's rebalance moved away loses its series here too.)
        self._lag.show_only(snapshot.lag)

    async def stop(self) -> None:
        """Ask the child to stop (SIGTERM), kill it after STOP_SECONDS; the wait runs in a
        thread, so the worker's event loop serves on meanwhile."""
        self._stopping = True
        process = self._process
        if process is None or not process.is_alive():
            return
        process.terminate()
        await asyncio.to_thread(process.join, STOP_SECONDS)
        if process.is_alive():
            process.kill()
            await asyncio.to_thread(process.join, STOP_SECONDS)
