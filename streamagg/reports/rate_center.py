"""USA Rate Center: charges and calls per dialed NANP prefix, rate centers joined at query time."""

from __future__ import annotations

from typing import ClassVar

import polars as pl

from streamagg.cdr import Cdr
from streamagg.reports.base import Groups, QueryContext, Row, margin, money
from streamagg.reports.view import Chart, Column, TopBars, margin_columns
from streamagg.tables.buckets import DAY, HOUR, MONTH, Grain

CUSTOMER_CHARGE, PROVIDER_CHARGE, CALLS = range(3)


class RateCenterReport:
    name: ClassVar[str] = "rate-center"
    grains: ClassVar[tuple[Grain, ...]] = (HOUR, DAY, MONTH)
    hour_in_group: ClassVar[bool] = False
    whole_days: ClassVar[bool] = False
    granularities: ClassVar[tuple[str, ...]] = ()
    fields: ClassVar[tuple[str, ...]] = ("customer_charge", "provider_charge", "calls")
    title: ClassVar[str] = "USA Rate Center"
    short: ClassVar[str] = "Rate Center"
    hint: ClassVar[str] = "Per dialed NANP prefix and its US rate center: charges and call count."
    row_description: ClassVar[str] = (
        "One dialed NANP prefix (NPA-NXX, or NPA-NXX-X where its block differs)"
    )
    order: ClassVar[str] = "Sorted by `call_count` descending, then `prefix`"
    columns: ClassVar[tuple[Column, ...]] = (
        Column("prefix", "Prefix", "code", example="201200", schema={"pattern": "^[0-9]{6,7}$"}),
        Column(
            "rc",
            "Rate center",
            "text",
            "Rate center; UNKNOWN when the reference data does not know the prefix",
            "JERSEY CITY",
        ),
        Column("state", "State", "text", example="NJ"),
        Column("customer_charge", "Customer charge", "money"),
        Column("provider_charge", "Provider charge", "money"),
        Column("call_count", "Calls", "count"),
        *margin_columns(),  # (after the first columns: CSV readers by position keep working)
    )
    chart: ClassVar[Chart | None] = TopBars(
        "Calls by prefix",
        label="prefix",
        value="call_count",
        details=(("rc", ","), ("state", "")),
    )

    def group(self, cdr: Cdr) -> str | None:
        # State keeps the NPA-NXX-X block so that new thousands-block data applies to history.
        return cdr.nanp_number[:7] if cdr.nanp_number else None

    def delta(self, cdr: Cdr) -> list[int]:
        return [cdr.customer_charge, cdr.provider_charge, 1]

    def group_column(self) -> pl.Expr:
        number = pl.col("nanp_number")
        return pl.when(number != "").then(number.str.slice(0, 7))

    def delta_columns(self) -> list[pl.Expr]:
        return [pl.col("customer_charge"), pl.col("provider_charge"), pl.lit(1)]

    def rows(self, groups: Groups, context: QueryContext) -> list[Row]:
        resolve = context.resolve_rate_center
        merged: dict[str, tuple[str, str, list[int]]] = {}
        for block, v in groups.items():
            if resolve is None:
                prefix, rc, state = block[:6], "UNKNOWN", "UNKNOWN"
            else:
                found = resolve(block)
                if found is None:  # outside the US
                    continue
                prefix, rc, state = found.prefix, found.rc, found.state
            entry = merged.get(prefix)
            if entry is None:
                merged[prefix] = (rc, state, list(v))
            else:
                for i, value in enumerate(v):
                    entry[2][i] += value
        rows: list[Row] = [
            {
                "prefix": prefix,
                "rc": rc,
                "state": state,
                "customer_charge": money(v[CUSTOMER_CHARGE]),
                "provider_charge": money(v[PROVIDER_CHARGE]),
                "call_count": v[CALLS],
                **margin(v[CUSTOMER_CHARGE], v[PROVIDER_CHARGE]),
            }
            for prefix, (rc, state, v) in merged.items()
        ]
        rows.sort(key=lambda row: (-row["call_count"], row["prefix"]))
        return rows
