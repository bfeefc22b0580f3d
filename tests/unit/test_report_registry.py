"""One registry drives every surface of a report (issue 17): its class declares the columns,
totals and chart, and the fold, query, API validation, CSV, OpenAPI document and the page's
catalogue all read them. A fifth report that exists only here (tests/support/toy_report.py)
goes through each surface without a line changed elsewhere."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import pytest

from streamagg.batches import Record
from streamagg.cdr import Cdr
from streamagg.reports import REPORTS
from streamagg.reports.base import QueryContext, Report
from streamagg.reports.query import run_query
from streamagg.reports.view import TimeBars, TopBars, catalogue, column_keys, describe
from streamagg.tables.buckets import HOUR, finest
from streamagg.tables.fold import fold_records
from streamagg.web.params import parse_report_query
from streamagg.web.render import rows_to_csv
from tests.support.common import REPORT_IDS
from tests.support.memstore import MemState
from tests.support.toy_report import ToyReport

T0 = int(datetime(2026, 11, 25, 13, tzinfo=UTC).timestamp())
_serial = itertools.count()


def answered(provider: str, seconds: int, hour: int = 0) -> Cdr:
    return Cdr(
        f"c{next(_serial)}", "42", T0 + hour * 3600, provider, 0, 0, "", seconds * 1_000_000,
        True, False, "", "",
    )  # fmt: skip


def test_a_report_class_alone_is_folded_queried_validated_and_written_as_csv(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    toy = ToyReport()
    monkeypatch.setitem(REPORTS, toy.name, toy)
    calls = [answered("P1", 125), answered("P2", 61, hour=1), answered("P1", 59, hour=30)]
    state = MemState()
    fold_records(state, [Record(i, T0 * 1000, c) for i, c in enumerate(calls)], REPORTS, 3600)

    query = parse_report_query(
        "toy-minutes",
        "42",
        {"from": "2026-11-25T13:00:00Z", "to": "2026-11-27T00:00:00Z"},
        retention_days=10_000,
    )
    assert query.report is toy
    rows = run_query(toy, query.start_quarter, query.end_quarter, state.scan, QueryContext("42"))
    # Independent arithmetic: P1 2 + 0 minutes (125 s, 59 s), P2 1 minute (61 s).
    assert rows == [
        {"provider_id": "P1", "minutes": 2, "share": 66.7},
        {"provider_id": "P2", "minutes": 1, "share": 33.3},
    ]
    assert rows_to_csv(toy.columns, rows).splitlines() == [
        "provider_id,minutes,share",
        "P1,2,66.7",
        "P2,1,33.3",
    ]
    ids = [entry["id"] for entry in catalogue(REPORTS.values())["reports"]]
    assert ids[-1] == "toy-minutes"


@pytest.mark.parametrize("report", [*REPORTS.values(), ToyReport()], ids=lambda r: r.name)
def test_every_name_a_report_declares_is_one_of_its_columns(report: Report) -> None:
    """Totals and charts name columns by key: a typo would only show on the page."""
    keys = set(column_keys(report))
    assert len(keys) == len(report.columns)
    named: list[str] = []
    for column in report.columns:
        if column.total is not None:
            named += [k for k in (column.total.of, column.total.per, column.total.by) if k]
    chart = report.chart
    if isinstance(chart, TopBars):
        named += [chart.label, chart.value, *(key for key, _ in chart.details)]
        named += [chart.sort_by] if chart.sort_by else []
        named += [chart.label_with] if chart.label_with else []
        named += [chart.tone.by] if chart.tone else []
    elif isinstance(chart, TimeBars):
        named += [chart.time, *(key for key, _ in chart.series)]
    assert set(named) <= keys


@pytest.mark.parametrize("report", [*REPORTS.values(), ToyReport()], ids=lambda r: r.name)
def test_every_delta_has_the_declared_fields(report: Report) -> None:
    """A state value is read by the declared fields: delta() must produce exactly those."""
    for cdr in (answered("P", 61), answered("", 0)):
        if report.group(cdr) is not None:
            assert len(report.delta(cdr)) == len(report.fields)
    assert len(set(report.fields)) == len(report.fields)


@pytest.mark.parametrize("report", [*REPORTS.values(), ToyReport()], ids=lambda r: r.name)
def test_the_finest_grain_is_the_hour_unless_groups_carry_it(report: Report) -> None:
    """The query reads a finest bucket's quarters by its hour: either the bucket is an hour,
    or (dtmf) each group starts with its own hour (reports/query.py)."""
    assert finest(report.grains) == HOUR or report.hour_in_group


def test_the_oracle_knows_every_report() -> None:
    """The e2e correctness test and the fault suite compare REPORT_IDS against the oracle."""
    assert tuple(REPORTS) == REPORT_IDS


def test_the_catalogue_describes_each_report_for_the_page() -> None:
    entries = {entry["id"]: entry for entry in catalogue(REPORTS.values())["reports"]}
    assert list(entries) == list(REPORTS)
    tech: dict[str, Any] = entries["tech-prefix"]
    assert [c["key"] for c in tech["columns"]] == [
        "tech_prefix",
        "total",
        "answered_calls",
        "asr",
        "acd",
    ]
    by_key = {c["key"]: c for c in tech["columns"]}
    assert by_key["total"]["total"] == {"rule": "sum"}
    assert by_key["asr"]["total"] == {"rule": "ratio", "of": "answered_calls", "per": "total",
                                      "scale": 100}  # fmt: skip
    assert "total" not in by_key["tech_prefix"]
    assert entries["did-cli"]["whole_days"] is True
    assert entries["dtmf"]["whole_days"] is False  # (hours in its groups)
    assert entries["rate-center"]["whole_days"] is False
    assert describe(REPORTS["dtmf"])["chart"]["kind"] == "time-bars"
