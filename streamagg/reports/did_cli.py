"""DID as CLI: calls presenting one of the system's DIDs as caller ID, per owner account."""

from __future__ import annotations

from typing import ClassVar

import polars as pl

from streamagg.cdr import Cdr
from streamagg.reports.base import Groups, QueryContext, Row
from streamagg.reports.view import Chart, Column, Tone, TopBars
from streamagg.tables.buckets import DAY, HOUR, MONTH, Grain


class DidCliReport:
    name: ClassVar[str] = "did-cli"
    grains: ClassVar[tuple[Grain, ...]] = (HOUR, DAY, MONTH)  # (hours: local days)
    hour_in_group: ClassVar[bool] = False
    whole_days: ClassVar[bool] = True  # (SPEC §2: counted per day)
    granularities: ClassVar[tuple[str, ...]] = ()
    fields: ClassVar[tuple[str, ...]] = ("calls",)
    title: ClassVar[str] = "DID as CLI"
    short: ClassVar[str] = "DID as CLI"
    hint: ClassVar[str] = (
        "The system's DIDs presented as caller ID, by owner account. Whole days only."
    )
    row_description: ClassVar[str] = "One (owner account, DID) presented as caller ID"
    order: ClassVar[str] = "Sorted by `account`, then `count` descending, then `dest_cli`"
    columns: ClassVar[tuple[Column, ...]] = (
        Column("account", "Owner account", "text", "The account owning the DID"),
        Column(
            "dest_cli",
            "DID",
            "code",
            "The normalised DID (digits; NANP numbers as 10 digits)",
            "2015550100",
        ),
        Column("count", "Calls", "count"),
        Column(
            "foreign",
            "Foreign",
            "flag",
            "True when the owner is not the customer who placed the calls",
        ),
    )
    chart: ClassVar[Chart | None] = TopBars(
        "DIDs presented as caller ID",
        label="dest_cli",
        value="count",
        sort_by="count",
        details=(("account", ""),),
        tone=Tone(
            "foreign",
            yes="warn",
            no="base",
            legend=(("base", "Customer's own DID"), ("warn", "Foreign DID")),
        ),
    )

    def group(self, cdr: Cdr) -> str | None:
        # The owner is looked up when the CDR is processed (SPEC §2), then frozen in the group.
        return f"{cdr.did_owner}\x1f{cdr.cli}" if cdr.did_owner else None

    def delta(self, cdr: Cdr) -> list[int]:
        return [1]

    def group_column(self) -> pl.Expr:
        owner = pl.col("did_owner")
        return pl.when(owner != "").then(pl.concat_str(owner, pl.lit("\x1f"), "cli"))

    def delta_columns(self) -> list[pl.Expr]:
        return [pl.lit(1)]

    def rows(self, groups: Groups, context: QueryContext) -> list[Row]:
        rows: list[Row] = []
        for group, v in groups.items():
            account, did = group.split("\x1f", 1)
            rows.append(
                {
                    "account": account,
                    "dest_cli": did,
                    "count": v[0],
                    "foreign": account != context.customer_id,
                }
            )
        rows.sort(key=lambda row: (row["account"], -row["count"], row["dest_cli"]))
        return rows
