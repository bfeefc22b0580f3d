"""The report agent (agents/aggregate.py) folds a backlog in slices and serves the event loop
between them, writing what one fold of every record writes."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

from prometheus_client import CollectorRegistry

from streamagg.agents import aggregate
from streamagg.agents.aggregate import ReportAgent
from streamagg.batches import BATCH_HEADERS, Batch, Record
from streamagg.cdr import Cdr
from streamagg.metrics import create_metrics
from streamagg.reports import REPORTS
from streamagg.tables.fold import fold_records
from tests.support.memstore import MemState

HORIZON_S = 48 * 3600
T0 = 1_795_608_000  # 2026-11-25T12:00:00Z


def calls(count: int) -> list[Record]:
    """Calls of three customers over a few hours, every tenth one a duplicate id."""
    made = []
    for i in range(count):
        cdr = Cdr(
            callid=f"call-{i - i % 10 if i % 10 == 9 else i}",
            customer_id=str(40 + i % 3),
            start=T0 + 7 * i,
            provider_id=str(i % 4),
            customer_charge=1_000 * i,
            provider_charge=700 * i,
            tech_prefix=f"{i % 5}#",
            duration=1_000_000 * (i % 60),
            answered=i % 3 != 0,
            has_dtmf=i % 7 == 0,
            nanp_number=f"212555{i % 10_000:04d}",
            cli="6465550100",
            did_owner="41",
        )
        made.append(Record(i, T0 * 1000 + i, cdr))
    return made


def messages(records: list[Record], per_message: int) -> list[Any]:
    return [
        SimpleNamespace(
            value=Batch("cdrs/0", records[i : i + per_message]).encode(), headers=BATCH_HEADERS
        )
        for i in range(0, len(records), per_message)
    ]


async def test_a_backlog_is_folded_in_slices_with_the_event_loop_served_between(
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr(aggregate, "FOLD_SLICE_CDRS", 100)
    records = calls(950)  # ten slices
    agent = ReportAgent(create_metrics(CollectorRegistry()), HORIZON_S)
    turns = 0
    done = asyncio.Event()

    async def count_turns() -> None:
        nonlocal turns
        while not done.is_set():
            turns += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(count_turns())
    await asyncio.sleep(0)
    sliced = MemState()
    try:
        before = turns
        applied = await agent.apply(cast(Any, sliced), messages(records, 300))
        during = turns - before
    finally:
        done.set()
        await ticker
    # The other task ran between every slice and after every report's writes.
    assert during >= 10 + len(REPORTS)
    whole = MemState()
    expected = fold_records(whole, records, REPORTS, HORIZON_S)
    assert sliced.data == whole.data
    assert len(applied.fold.accepted) == len(expected.accepted) == 950 - 95
    assert applied.fold.duplicates == 95
    assert applied.messages == 4
