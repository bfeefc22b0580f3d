"""A fifth report that exists only in tests: what adding one takes (docs/adding-a-report.md)."""

from __future__ import annotations

from typing import ClassVar

from streamagg.cdr import Cdr
from streamagg.reports.base import Groups, QueryContext, Row, ratio
from streamagg.reports.view import Chart, Column, TopBars
from streamagg.tables.buckets import DAY, HOUR, MONTH, Grain


class ToyReport:
    """Answered minutes per provider, and each provider's share of them."""

    name: ClassVar[str] = "toy-minutes"
    grains: ClassVar[tuple[Grain, ...]] = (HOUR, DAY, MONTH)
    hour_in_group: ClassVar[bool] = False
    whole_days: ClassVar[bool] = False
    granularities: ClassVar[tuple[str, ...]] = ()
    fields: ClassVar[tuple[str, ...]] = ("minutes",)
    title: ClassVar[str] = "Minutes per provider"
    short: ClassVar[str] = "Minutes"
    hint: ClassVar[str] = "Answered minutes (rounded down) per provider."
    row_description: ClassVar[str] = "One provider with answered calls"
    order: ClassVar[str] = "Sorted by `minutes` descending, then `provider_id`"
    columns: ClassVar[tuple[Column, ...]] = (
        Column("provider_id", "Provider", "text"),
        Column("minutes", "Minutes", "count"),
        Column("share", "Share %", "ratio", places=1),
    )
    chart: ClassVar[Chart | None] = TopBars("Minutes by provider", "provider_id", "minutes")

    def group(self, cdr: Cdr) -> str | None:
        return cdr.provider_id if cdr.answered else None

    def delta(self, cdr: Cdr) -> list[int]:
        return [cdr.duration // 60_000_000]

    def rows(self, groups: Groups, context: QueryContext) -> list[Row]:
        everything = sum(v[0] for v in groups.values())
        rows: list[Row] = [
            {"provider_id": p, "minutes": v[0], "share": ratio(v[0] * 100, everything, 1)}
            for p, v in groups.items()
        ]
        rows.sort(key=lambda row: (-row["minutes"], row["provider_id"]))
        return rows
