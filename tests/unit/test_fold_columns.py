"""Sums on columns (tables/fold_columns.py) against the per-CDR fold, which defines them.

Invariant: a transaction folded on columns writes exactly the state keys and values the
per-CDR fold writes, whatever the CDRs (every field over its contract's range), the state
before (values to add to, hours already in their days and months) and the message times
(which hours the fold closes)."""

from __future__ import annotations

import itertools
from typing import ClassVar

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from streamagg.batches import Record
from streamagg.cdr import MAX_DURATION, Cdr
from streamagg.cdr.general import MAX_MICROS
from streamagg.cdr.model import MAX_PDD_MS, NO_PDD, NO_SIP_CODE
from streamagg.reports import REPORTS
from streamagg.reports.rate_center import RateCenterReport
from streamagg.tables.fold import BatchFold
from streamagg.tables.fold_columns import cdr_frame, column_sums, is_columnar
from streamagg.tables.keys import decode_vector
from tests.support.generated import partitions_of
from tests.support.memstore import MemState
from tests.support.toy_report import ToyReport

HORIZON_S = 48 * 3600
T0 = 1_795_608_000  # 2026-11-25T12:00:00Z
_serial = itertools.count()

amounts = st.one_of(st.integers(0, 10**9), st.integers(-MAX_MICROS, MAX_MICROS))
calls = st.builds(
    Cdr,
    callid=st.builds(lambda: f"c{next(_serial)}") | st.sampled_from(["a", "b", "c"]),
    customer_id=st.sampled_from(["42", "43", "é 9"]),
    # (October and November; most often the hours around T0, which the messages' times close
    # or leave open; starts a few minutes apart share a quarter)
    start=st.integers(T0 - 30 * 86_400, T0 + 3 * 86_400)
    | st.integers(T0 - 4 * 3_600, T0 + 2 * 3_600)
    | st.sampled_from([T0, T0 + 899, T0 + 900]),
    provider_id=st.sampled_from(["", "7", "prov\x1fX"]),
    customer_charge=amounts,
    provider_charge=amounts,
    tech_prefix=st.sampled_from(["", "1#", "ü#"]),
    duration=st.integers(0, MAX_DURATION * 1_000_000) | st.sampled_from([6_000_000, 6_000_001]),
    answered=st.booleans(),
    has_dtmf=st.booleans(),
    nanp_number=st.sampled_from(["", "2125551234", "2125559999", "3105550000"]),
    cli=st.sampled_from(["", "6465550100", "6465550101"]),
    did_owner=st.sampled_from(["", "7", "42"]),
    sip_code=st.sampled_from([NO_SIP_CODE, 200, 486, 404, 503, 600, 699]),
    pdd_ms=st.sampled_from([NO_PDD, 0, MAX_PDD_MS]) | st.integers(0, MAX_PDD_MS),
)


def _fold(state: MemState, records: list[Record], on_columns: bool) -> BatchFold:
    fold = BatchFold(state, REPORTS, HORIZON_S, on_columns)
    fold.add(records)
    assert list(fold.finish())  # (every step done)
    return fold


@settings(max_examples=200, deadline=None)
@given(
    st.lists(calls, max_size=30),
    st.lists(calls, min_size=1, max_size=60),
    st.integers(0, 3 * 3_600_000) | st.integers(0, 4 * 86_400_000),
)
def test_sums_on_columns_write_what_the_per_cdr_fold_writes(
    before: list[Cdr], cdrs: list[Cdr], spread_ms: int
) -> None:
    stamp = (T0 - 3_600) * 1000
    earlier = [Record(i, stamp - 86_400_000 + i * 1000, c) for i, c in enumerate(before)]
    records = [Record(i, stamp + i * spread_ms // 60, c) for i, c in enumerate(cdrs)]
    per_cdr, columnar = MemState(), MemState()
    for state in (per_cdr, columnar):
        _fold(state, earlier, on_columns=False)
    reference = _fold(per_cdr, records, on_columns=False)
    fold = _fold(columnar, records, on_columns=True)
    assert fold.outcome.on_columns and not reference.outcome.on_columns
    assert columnar.data == per_cdr.data
    assert fold.outcome.keys_written == reference.outcome.keys_written


def test_every_report_states_its_fold_on_columns() -> None:
    """A report without column expressions would send every large transaction back to the
    per-CDR fold (correct, but slower): the shipped reports all have them."""
    assert all(is_columnar(report) for report in REPORTS.values())


def test_a_report_without_columns_is_summed_per_cdr_beside_the_others() -> None:
    reports = {**REPORTS, "toy-minutes": ToyReport()}
    records = [Record(i, T0 * 1000, _call(i, 1, duration=61_000_000 * i)) for i in range(50)]
    states = MemState(), MemState()
    for state, on_columns in zip(states, (False, True), strict=True):
        fold = BatchFold(state, reports, HORIZON_S, on_columns)
        fold.add(records)
        assert list(fold.finish()) == list(reports)
        assert not fold.outcome.on_columns  # (not every report was)
    assert states[0].data == states[1].data
    assert any(key.startswith(b"R\x1ftoy-minutes") for key in states[1].data)


def test_the_shipped_reports_agree_on_the_bench_generators_calls() -> None:
    """Larger and more varied than the property's examples: 12,000 calls of `streamagg
    generate` (40 customers, every field's spellings, duplicates) over 13 months and over one
    day, in transactions of 4,000."""
    for days in (1, 395):
        shares = partitions_of(12_000, days)
        states = MemState(), MemState()
        for state, on_columns in zip(states, (False, True), strict=True):
            for share in shares:
                for first in range(0, len(share), 4_000):
                    chunk = share[first : first + 4_000]
                    records = [Record(i, T0 * 1000, c) for i, c in enumerate(chunk)]
                    assert _fold(state, records, on_columns).outcome.on_columns is on_columns
        assert len(states[0].data) > 10_000
        assert states[0].data == states[1].data


def test_sums_that_could_pass_64_bits_stay_exact() -> None:
    """10,000 calls of the contract's largest charge: 10**19 micro-units, past 2**63. Such a
    report is summed per CDR, in exact integers."""
    cdrs = [_call(i, MAX_MICROS) for i in range(10_000)]
    assert column_sums(REPORTS["rate-center"], cdr_frame(cdrs)) is None
    assert column_sums(REPORTS["rate-center"], cdr_frame(cdrs[:9_000])) is not None
    assert column_sums(REPORTS["tech-prefix"], cdr_frame(cdrs)) is not None  # (no charges)
    state = MemState()
    fold = _fold(state, [Record(i, T0 * 1000, c) for i, c in enumerate(cdrs)], on_columns=True)
    assert not fold.outcome.on_columns
    (month,) = [v for k, v in state.data.items() if k.startswith(b"R\x1frate-center\x1fm")]
    assert decode_vector(month) == [10_000 * MAX_MICROS, 0, 10_000]


class _BothCharges(RateCenterReport):
    """A report whose delta adds two fields: its own sums are what may pass 64 bits."""

    fields: ClassVar[tuple[str, ...]] = ("both_charges",)

    def delta(self, cdr: Cdr) -> list[int]:
        return [cdr.customer_charge + cdr.provider_charge]

    def delta_columns(self) -> list[pl.Expr]:
        return [pl.col("customer_charge") + pl.col("provider_charge")]


def test_the_bound_is_the_reports_own_deltas_not_the_fields() -> None:
    """5,000 calls of the largest charge on both sides: each field sums within 64 bits, the
    report's delta (their sum) does not."""
    cdrs = [_call(i, MAX_MICROS, provider_charge=MAX_MICROS) for i in range(5_000)]
    assert column_sums(REPORTS["rate-center"], cdr_frame(cdrs)) is not None
    assert column_sums(_BothCharges(), cdr_frame(cdrs)) is None
    state = MemState()
    fold = BatchFold(state, {"rate-center": _BothCharges()}, HORIZON_S, on_columns=True)
    fold.add([Record(i, T0 * 1000, c) for i, c in enumerate(cdrs)])
    list(fold.finish())
    (month,) = [v for k, v in state.data.items() if k.startswith(b"R\x1frate-center\x1fm")]
    assert decode_vector(month) == [5_000 * 2 * MAX_MICROS]


def _call(i: int, charge: int, provider_charge: int = 0, duration: int = 0) -> Cdr:
    # (an hour before T0: rolled into its day and month by the fold of T0's messages)
    return Cdr(
        f"big-{i}",
        "42",
        T0 - 7_200,
        "7",
        charge,
        provider_charge,
        "1#",
        duration,
        duration > 0,
        False,
        "2125551234",
        "",
        "",
    )
