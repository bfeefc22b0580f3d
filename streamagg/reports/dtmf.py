"""DTMF: charges and DTMF-carrying calls per hour and provider."""

from __future__ import annotations

from typing import ClassVar

import polars as pl

from streamagg.cdr import Cdr
from streamagg.reports.base import Groups, QueryContext, Row, margin, money
from streamagg.reports.periods import label
from streamagg.reports.view import Chart, Column, TimeBars, margin_columns
from streamagg.tables.buckets import DAY, Grain

CUSTOMER_CHARGE, PROVIDER_CHARGE, DTMF_CALLS, CALLS = range(4)


class DtmfReport:
    name: ClassVar[str] = "dtmf"
    # Rows are per hour already, so a day bucket holds its 24 hours; rollups would not shrink
    # the answer, and a day key keeps a 13-month query to ~400 reads.
    grains: ClassVar[tuple[Grain, ...]] = (DAY,)
    hour_in_group: ClassVar[bool] = True
    whole_days: ClassVar[bool] = False
    granularities: ClassVar[tuple[str, ...]] = ("hour", "day", "month")
    fields: ClassVar[tuple[str, ...]] = (
        "customer_charge",
        "provider_charge",
        "dtmf_calls",
        "calls",
    )
    title: ClassVar[str] = "DTMF"
    short: ClassVar[str] = "DTMF"
    hint: ClassVar[str] = (
        "Per hour and provider: charges, calls, and calls that carried DTMF key presses."
    )
    row_description: ClassVar[str] = "One (hour, provider) with at least one call"
    order: ClassVar[str] = "Sorted by `dt`, then `provider_id`"
    columns: ClassVar[tuple[Column, ...]] = (
        Column(
            "dt",
            "Period start",
            "hour",
            "Start of the hour, or with `granularity` the day or the month, in the time zone "
            "`tz` with its offset at that instant (Z in UTC); a period cut by the range holds "
            "the range's part only",
            "2026-11-25T08:00:00-05:00",
        ),
        Column(
            "provider_id",
            "Provider",
            "text",
            'The carrier the calls were routed to; "" when the CDR had none',
        ),
        Column("customer_charge", "Customer charge", "money"),
        Column("provider_charge", "Provider charge", "money"),
        Column("dtmf_count", "DTMF calls", "count", "Calls with non-empty `dtmf`"),
        Column("calls", "Calls", "count", "All calls"),
        *margin_columns(),  # (after the first columns: CSV readers by position keep working)
    )
    chart: ClassVar[Chart | None] = TimeBars(
        "Calls and DTMF calls over time", "dt", (("calls", "Calls"), ("dtmf_count", "DTMF calls"))
    )

    def group(self, cdr: Cdr) -> str | None:
        return f"{cdr.hour}\x1f{cdr.provider_id}"

    def delta(self, cdr: Cdr) -> list[int]:
        return [cdr.customer_charge, cdr.provider_charge, int(cdr.has_dtmf), 1]

    def group_column(self) -> pl.Expr:
        return pl.concat_str(
            (pl.col("start") // 3600).cast(pl.String), pl.lit("\x1f"), "provider_id"
        )

    def delta_columns(self) -> list[pl.Expr]:
        return [pl.col("customer_charge"), pl.col("provider_charge"), pl.col("has_dtmf"), pl.lit(1)]

    def rows(self, groups: Groups, context: QueryContext) -> list[Row]:
        # (the query has put each group in its period: {period start}␟{provider})
        periods: list[tuple[int, str, list[int]]] = []
        for group, vector in groups.items():
            start, provider = group.split("\x1f", 1)
            periods.append((int(start), provider, vector))
        periods.sort()  # (by start, then provider: a group is unique, vectors never compared)
        zone = context.zone
        labels = {start: label(start, zone) for start in {period[0] for period in periods}}
        return [
            {
                "dt": labels[start],
                "provider_id": provider,
                "customer_charge": money(v[CUSTOMER_CHARGE]),
                "provider_charge": money(v[PROVIDER_CHARGE]),
                "dtmf_count": v[DTMF_CALLS],
                "calls": v[CALLS],
                **margin(v[CUSTOMER_CHARGE], v[PROVIDER_CHARGE]),
            }
            for start, provider, v in periods
        ]
