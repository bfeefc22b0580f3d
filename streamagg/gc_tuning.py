"""The cyclic garbage collector's settings in a worker's processes.

A fold allocates a short-lived list or tuple per call and report, and keeps a transaction's
sums (tens of thousands of containers) alive until they are written: with CPython's default
thresholds (700, 10, 10) the collector ran ~4,400 times during a 360,000-CDR catch-up and
took ~22 % of the state process's CPU, most of it in full collections walking those sums
(BENCHMARKS.md). Nothing on the CDR path relies on the collector: its objects form no
cycles and are freed by reference counting. So a worker's processes collect young objects
every 50,000 container allocations instead of 700, and never walk again what exists when
their services start (imported modules, Faust's services, the web app), which lives as long as
the process. Full collections still come about every 10 million allocations (about a million
CDRs), so that the reference cycles other code makes (asyncio futures holding exceptions, a
closed connection's callbacks) cannot pile up for long.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

# Allocations of containers between young collections; young collections per middle one;
# middle ones per full one (CPython also waits for a full one until a quarter of the old
# objects are new).
THRESHOLDS = (50_000, 20, 10)


def tune_collector() -> None:
    """Call once, when the process's services start (their long-lived objects exist)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic collection inside (reference counting frees as always); the collector runs
    again after, when the block's short-lived objects are gone.

    A state cycle holds its batches, its transactions' changes and each report's sums alive
    while it folds: a young collection in the middle walks all of them, and in a worker they
    took ~19 ms each, ~2 s of a 1,200,000-CDR run (BENCHMARKS.md). After the cycle the same
    collection finds almost nothing young."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
