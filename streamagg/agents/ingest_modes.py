"""The ingest stage as the worker sees it, whichever process runs it (STREAMAGG_INGEST_MODE).

`create_ingest` returns an `Ingest`: in a child process (`IngestProcess`, the default on two
cores or more) or in the worker's own event loop (`InlineIngest`). Either way the DID
inventory is read to its end before the first CDR (SPEC §2), and the worker only runs, stops
and asks it whether it is connected.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from streamagg.agents.ingest import IngestStage
from streamagg.agents.ingest_process import IngestProcess, run_after_inventory
from streamagg.metrics import Metrics
from streamagg.reference.dids import DidInventory
from streamagg.settings import Settings

log = logging.getLogger(__name__)


class Ingest(Protocol):
    running: asyncio.Event  # set while connected to Kafka and forwarding

    @property
    def inventory_loaded(self) -> bool: ...

    async def run(self) -> None:
        """Read the DID inventory, then ingest until stopped or cancelled."""

    async def stop(self) -> None:
        """Stop ingesting; returns without blocking the event loop."""


class InlineIngest:
    """The DID inventory and the ingest stage in the worker's own event loop."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.inventory = DidInventory(settings)
        self.stage = IngestStage(settings, metrics, self.inventory.owner)
        self.running = self.stage.running

    @property
    def inventory_loaded(self) -> bool:
        return self.inventory.loaded

    async def run(self) -> None:
        await run_after_inventory(self.inventory, self.stage)

    async def stop(self) -> None:
        self.stage.stop()


def create_ingest(settings: Settings, metrics: Metrics) -> Ingest:
    if settings.ingest_in_child_process:
        return IngestProcess(settings, metrics)
    return InlineIngest(settings, metrics)
