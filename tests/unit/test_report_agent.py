"""The report agent (agents/aggregate.py) folds a backlog in slices and serves the event loop
between them, writing what one fold of every record writes."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry

from streamagg.agents import aggregate
from streamagg.agents.aggregate import ReportAgent
from streamagg.batches import BATCH_HEADERS, Batch, Record
from streamagg.cdr import Cdr
from streamagg.errors import FormatError
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
    agent = ReportAgent(create_metrics(CollectorRegistry()), HORIZON_S, "dlq")
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


@pytest.mark.parametrize(("column_sums_from", "on_columns"), [(0, True), (301, False), (300, True)])
async def test_a_transaction_from_column_sums_from_records_is_summed_on_columns(
    column_sums_from: int, on_columns: bool
) -> None:
    """STREAMAGG_COLUMN_SUMS_FROM: a transaction of at least that many records (duplicates
    included) sums its reports on columns; the state is the same either way."""
    records = calls(300)
    agent = ReportAgent(create_metrics(CollectorRegistry()), HORIZON_S, "dlq", column_sums_from)
    state = MemState()
    applied = await agent.apply(cast(Any, state), messages(records, 100))
    assert applied.fold.on_columns is on_columns
    whole = MemState()
    fold_records(whole, records, REPORTS, HORIZON_S)
    assert state.data == whole.data


async def test_a_message_that_is_no_streamagg_batch_goes_to_the_dead_letter_topic() -> None:
    """A producer pointed at the internal batch topic by mistake (a raw CDR, no format header)
    stopped the partition for good: every retry failed on the same message. It holds no
    accepted CDR: it goes to the dead-letter topic in the same transaction, counted rejected,
    and the batches around it are folded as if it were not there."""
    registry = CollectorRegistry()
    agent = ReportAgent(create_metrics(registry), HORIZON_S, "cdr-dlq")
    records = calls(40)
    good = messages(records, 20)
    stray = SimpleNamespace(
        value=b'{"callid": "x", "dt": 1795608000, "customer_id": "7"}',
        headers=[("other", b"1")],
        key=b"7",
        topic="app-cdr-batches",
        partition=3,
        offset=12,
    )
    state = MemState()
    applied = await agent.apply(cast(Any, state), [good[0], stray, good[1]])
    agent.committed(applied)
    whole = MemState()
    fold_records(whole, records, REPORTS, HORIZON_S)
    assert state.data == whole.data
    assert (applied.messages, applied.foreign) == (2, 1)
    ((topic, key, value, headers),) = state.aside
    assert (topic, key, value) == ("cdr-dlq", b"7", stray.value)
    assert dict(headers) == {
        "error": aggregate.FOREIGN_REASON.encode(),
        "source": b"app-cdr-batches/3/12",
    }
    rejected = registry.get_sample_value("streamagg_cdrs_total", {"outcome": "rejected"})
    assert rejected == 1


async def test_a_streamagg_batch_that_does_not_decode_still_stops_the_partition() -> None:
    """(A genuine batch of a newer format, or a damaged one: skipping it would lose its CDRs.)"""
    agent = ReportAgent(create_metrics(CollectorRegistry()), HORIZON_S, "cdr-dlq")
    newer = SimpleNamespace(value=b"\x92", headers=[("streamagg-format", b"9")])
    with pytest.raises(FormatError, match="format 9"):
        await agent.apply(cast(Any, MemState()), [newer])
