"""Group by Tech Prefix: attempts, answered calls, ASR and ACD per routing tech prefix."""

from __future__ import annotations

from typing import ClassVar

import polars as pl

from streamagg.cdr import Cdr
from streamagg.reports.base import Groups, QueryContext, Row, ratio
from streamagg.reports.view import Chart, Column, Tone, TopBars, asr_acd_columns
from streamagg.tables.buckets import DAY, HOUR, MONTH, Grain

TOTAL, ANSWERED, ANSWERED_MICROS = range(3)


class TechPrefixReport:
    name: ClassVar[str] = "tech-prefix"
    grains: ClassVar[tuple[Grain, ...]] = (HOUR, DAY, MONTH)
    hour_in_group: ClassVar[bool] = False
    whole_days: ClassVar[bool] = False
    granularities: ClassVar[tuple[str, ...]] = ()
    fields: ClassVar[tuple[str, ...]] = ("attempts", "answered", "answered_micros")
    title: ClassVar[str] = "Group by Tech Prefix"
    short: ClassVar[str] = "Tech Prefix"
    hint: ClassVar[str] = "Per routing tech prefix: attempts, answered calls, ASR and ACD."
    row_description: ClassVar[str] = 'One routing tech prefix ("" included)'
    order: ClassVar[str] = "Sorted by `total` descending, then `tech_prefix`"
    columns: ClassVar[tuple[Column, ...]] = (
        Column("tech_prefix", "Tech prefix", "code", example="123#", schema={"maxLength": 32}),
        *asr_acd_columns("total"),
    )
    chart: ClassVar[Chart | None] = TopBars(
        "ASR by tech prefix",
        label="tech_prefix",
        value="asr",
        top=20,
        unit=" %",
        details=(("total", " attempts"),),
        scale_max=100,
        tone=Tone("asr", below=((30, "bad"), (50, "warn")), otherwise="good"),
    )

    def group(self, cdr: Cdr) -> str | None:
        return cdr.tech_prefix

    def delta(self, cdr: Cdr) -> list[int]:
        if cdr.answered:
            return [1, 1, cdr.duration]
        return [1, 0, 0]

    def group_column(self) -> pl.Expr:
        return pl.col("tech_prefix")

    def delta_columns(self) -> list[pl.Expr]:
        answered = pl.col("answered")
        return [pl.lit(1), answered, pl.when(answered).then("duration").otherwise(0)]

    def rows(self, groups: Groups, context: QueryContext) -> list[Row]:
        rows: list[Row] = [
            {
                "tech_prefix": prefix,
                "total": v[TOTAL],
                "answered_calls": v[ANSWERED],
                # Both ratios come from the summed counts of the whole range, never averaged.
                "asr": ratio(v[ANSWERED] * 100, v[TOTAL], 2),
                "acd": ratio(v[ANSWERED_MICROS], v[ANSWERED] * 1_000_000, 1),
            }
            for prefix, v in groups.items()
        ]
        rows.sort(key=lambda row: (-row["total"], row["tech_prefix"]))
        return rows
