"""A transaction's report sums computed on columns (Polars), with no Python work per CDR.

The same sums as ``QuarterSums`` (tables/sums.py), the per-CDR fold, which stays the
definition: every report states its fold twice, per CDR (``group``, ``delta``) and as column
expressions (``group_column``, ``delta_columns``), and a property test holds the two equal.
What a large transaction costs in Python is then one pass over the CDRs to lay them out as
columns, and one step per state key written (BENCHMARKS.md, issue 15, eleventh session).

Polars sums in 64-bit integers; the state's sums are exact at any size. A report whose deltas
could pass 2**63 in a transaction's sum (amounts near the contract's largest, thousands of
times) is summed per CDR instead (``column_sums`` returns None).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, cast

import polars as pl
from msgspec.structs import astuple

from streamagg.cdr import Cdr
from streamagg.tables.buckets import DAY, HOUR, MONTH, QUARTER_SECONDS, Grain, coarser, finest
from streamagg.tables.keys import SEP
from streamagg.tables.sums import KeyValue, ReportFold, add_encoded

# The CDR fields a report's columns may use (every field of Cdr but the call id, in order).
_SCHEMA = {
    "customer_id": pl.String,
    "start": pl.Int64,
    "provider_id": pl.String,
    "customer_charge": pl.Int64,
    "provider_charge": pl.Int64,
    "tech_prefix": pl.String,
    "duration": pl.Int64,
    "answered": pl.Boolean,
    "has_dtmf": pl.Boolean,
    "nanp_number": pl.String,
    "cli": pl.String,
    "did_owner": pl.String,
    "sip_code": pl.Int64,
    "pdd_ms": pl.Int64,
}
FIELDS = tuple(_SCHEMA)
_CDR_FIELDS = len(Cdr.__struct_fields__)
assert Cdr.__struct_fields__[1:] == FIELDS, "FIELDS follows Cdr's fields"
_LIMIT = 2**63 - 1


class ColumnarFold(ReportFold, Protocol):
    """A report whose fold is also stated as column expressions over a frame of FIELDS."""

    def group_column(self) -> pl.Expr:
        """The group of each CDR, as ``group``; null where ``group`` is None."""

    def delta_columns(self) -> list[pl.Expr]:
        """The entries of each CDR's delta, as ``delta`` (integers or booleans), each in 64
        bits for every CDR (fields, flags, sums of a few fields; their sums over a
        transaction are checked)."""


def is_columnar(report: object) -> bool:
    return hasattr(report, "group_column") and hasattr(report, "delta_columns")


def cdr_frame(cdrs: Sequence[Cdr]) -> pl.DataFrame:
    """The CDRs as columns (one pass over them per field)."""
    columns = list(zip(*map(astuple, cdrs), strict=True)) if cdrs else [()] * _CDR_FIELDS
    return pl.DataFrame(dict(zip(FIELDS, columns[1:], strict=True)), schema=_SCHEMA)


def column_sums(report: ReportFold, frame: pl.DataFrame) -> ColumnSums | None:
    """The report's sums on columns, or None when its deltas' sums over the frame could pass
    64 bits (the largest delta entry times the number of CDRs)."""
    if not is_columnar(report):
        return None
    fold = cast(ColumnarFold, report)
    if frame.height:
        deltas = enumerate(fold.delta_columns())
        largest = frame.select(d.cast(pl.Int64).abs().max().alias(f"v{i}") for i, d in deltas)
        if max(int(value or 0) for value in largest.row(0)) * frame.height > _LIMIT:
            return None
    return ColumnSums(fold, frame)


# (key, value) pairs, both bytes: a value encoded as the state keeps it (tables/keys.py)
Encoded = list[tuple[bytes, bytes]]


def report_sums(
    frame: pl.DataFrame, report: ColumnarFold, open_from: int | None
) -> tuple[Encoded, Encoded]:
    """What ``QuarterSums.write`` adds to the state, encoded: the finest grain's values by
    quarter (``encode_split_value``) and the coarser grains' sums (``encode_vector``)."""
    width = len(report.fields)
    names = [f"v{i}" for i in range(width)]
    deltas = report.delta_columns()
    quarterly = (
        frame.select(
            pl.col("customer_id").alias("customer"),
            (pl.col("start") // QUARTER_SECONDS).alias("quarter"),
            report.group_column().alias("group"),
            *[delta.cast(pl.Int64).alias(name) for delta, name in zip(deltas, names, strict=True)],
        )
        .filter(pl.col("group").is_not_null())
        .group_by("customer", "quarter", "group")
        .agg(pl.col(names).sum())
        .with_columns(hour=pl.col("quarter") // 4, part=pl.col("quarter") % 4)
    )
    fine = finest(report.grains)
    split = (
        quarterly.select(
            _key(report.name, fine, _bucket(fine, pl.col("hour"))),
            pl.col("part"),
            pl.concat_str(pl.col("part"), pl.lit(":"), _vector(names)).alias("segment"),
        )
        .sort("key", "part")
        .group_by("key", maintain_order=True)
        .agg(pl.col("segment").str.join(";").cast(pl.Binary))
    )
    sums: Encoded = []
    if len(report.grains) > 1:
        closed = quarterly
        if open_from is not None:
            closed = closed.filter(pl.col("hour") < open_from)
        for grain in coarser(report.grains):
            level = (
                closed.with_columns(bucket=_bucket(grain, pl.col("hour")))
                .group_by("customer", "bucket", "group")
                .agg(pl.col(names).sum())
                .select(_key(report.name, grain, pl.col("bucket")), _vector(names).cast(pl.Binary))
            )
            sums += _pairs(level)
    return _pairs(split), sums


def _vector(names: list[str]) -> pl.Expr:
    """keys.encode_vector of the columns as an expression (a string)."""
    return pl.concat_str([pl.col(name) for name in names], separator=",")


def _pairs(frame: pl.DataFrame) -> Encoded:
    """A two-column frame's rows as tuples (by columns: twice as fast as iter_rows)."""
    keys, values = (series.to_list() for series in frame.get_columns())
    return list(zip(keys, values, strict=True))


def _bucket(grain: Grain, hour: pl.Expr) -> pl.Expr:
    """Grain.bucket as an expression."""
    if grain == HOUR:
        return hour
    if grain == DAY:
        return hour // 24
    assert grain == MONTH
    moment = pl.from_epoch(hour * 3600, time_unit="s")
    return moment.dt.year().cast(pl.Int64) * 12 + moment.dt.month().cast(pl.Int64) - 1


def _key(report: str, grain: Grain, bucket: pl.Expr) -> pl.Expr:
    """keys.report_key as an expression (bytes)."""
    return (
        pl.concat_str(
            pl.lit(f"R{SEP}{report}{SEP}{grain.code}"),
            bucket.cast(pl.String).str.zfill(8),
            pl.lit(SEP),
            pl.col("customer"),
            pl.lit(SEP),
            pl.col("group"),
        )
        .cast(pl.Binary)
        .alias("key")
    )


class ColumnSums:
    """QuarterSums' sums of a transaction's CDRs, computed on columns."""

    def __init__(self, report: ColumnarFold, frame: pl.DataFrame) -> None:
        self.report = report
        self._frame = frame

    def write(self, txn: KeyValue, open_from: int | None = None) -> int:
        split, sums = report_sums(self._frame, self.report, open_from)
        add_encoded(txn, self.report, split, sums)
        return len(split) + len(sums)
