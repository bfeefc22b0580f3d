"""streamagg_event_loop_lag_seconds (app.watch_event_loop): a step that holds the worker's event
loop shows as the lag of the next timer."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import CollectorRegistry

from streamagg.app import watch_event_loop
from streamagg.metrics import create_metrics

NAME = "streamagg_event_loop_lag_seconds"


async def test_a_step_that_holds_the_loop_shows_as_lag() -> None:
    registry = CollectorRegistry()
    watcher = asyncio.create_task(watch_event_loop(create_metrics(registry), every=0.02))
    try:
        await asyncio.sleep(0.1)
        before = registry.get_sample_value(f"{NAME}_bucket", {"le": "+Inf"}) or 0.0
        late_before = before - (registry.get_sample_value(f"{NAME}_bucket", {"le": "0.25"}) or 0)
        time.sleep(0.3)  # one step holding the loop (a fold, a RocksDB write)
        await asyncio.sleep(0.1)
    finally:
        watcher.cancel()
    count = registry.get_sample_value(f"{NAME}_bucket", {"le": "+Inf"}) or 0.0
    late = count - (registry.get_sample_value(f"{NAME}_bucket", {"le": "0.25"}) or 0.0)
    assert before >= 1, "the watcher observes while nothing holds the loop"
    assert late - late_before >= 1, "the held step is one observation of at least 0.25 s"
    assert (registry.get_sample_value(f"{NAME}_sum") or 0.0) >= 0.25
