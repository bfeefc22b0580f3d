"""How a report is shown and documented, declared next to its fold: columns, totals and chart.

A report's columns (`Column`) are the one list every surface reads: the JSON rows and CSV
header, the page's table and totals row, the OpenAPI row schema (web/openapi.py) and the
catalogue the page loads from ``GET /api/v1/reports`` (`catalogue`). A new report declares them
once; nothing else lists them (docs/adding-a-report.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from streamagg.reports.periods import zone_names

if TYPE_CHECKING:
    from streamagg.reports.base import Report

# text: a name; code: an identifier shown in a fixed-width face; hour: an ISO hour start;
# money: an exact decimal string; count: a non-negative integer; ratio: a rounded number;
# flag: a boolean; codes: SIP codes with their counts, [{"code": 486, "count": 12}, …].
Kind = Literal["text", "code", "hour", "money", "count", "ratio", "flag", "codes"]


@dataclass(frozen=True)
class Total:
    """How the page's totals row sums a column; a column without one shows nothing there.

    ``sum``: the sum of the rows (exact for money). ``ratio``: ``of`` summed × ``scale`` /
    ``per`` summed (an ASR from the counts, never an average of ratios). ``weighted``: the
    rows' values weighted by the column ``by`` (an ACD from per-row ACDs and answered calls).
    """

    rule: Literal["sum", "ratio", "weighted"]
    of: str = ""
    per: str = ""
    scale: int = 1
    by: str = ""

    def as_json(self) -> dict[str, Any]:
        fields = {"of": self.of, "per": self.per, "by": self.by}
        out: dict[str, Any] = {"rule": self.rule, **{k: v for k, v in fields.items() if v}}
        if self.rule == "ratio":
            out["scale"] = self.scale
        return out


SUM = Total("sum")


def asr_acd_columns(attempts: str) -> tuple[Column, Column, Column, Column]:
    """Attempts, answered calls, ASR and ACD: the columns every route-quality report shares;
    ``attempts`` names its attempts column."""
    return (
        Column(attempts, "Attempts", "count", "Attempts (CDRs)"),
        Column("answered_calls", "Answered", "count"),
        Column(
            "asr",
            "ASR %",
            "ratio",
            f"answered_calls / {attempts} × 100, 2 decimals",
            51.2,
            places=2,
            schema={"maximum": 100},
            total=Total("ratio", of="answered_calls", per=attempts, scale=100),
        ),
        Column(
            "acd",
            "ACD (s)",
            "ratio",
            "Seconds of talk per answered call, 1 decimal; 0 when none answered",
            184.3,
            places=1,
            # Row ACDs are rounded to 0.1 s; weighting them by answered calls is as exact as
            # they allow.
            total=Total("weighted", by="answered_calls"),
        ),
    )


def margin_columns() -> tuple[Column, Column]:
    """The margin columns of SPEC §6 (reports with charges: dtmf, rate-center)."""
    return (
        Column(
            "margin",
            "Margin",
            "money",
            "customer_charge − provider_charge; negative when the call cost more than it earned",
        ),
        Column(
            "margin_pct",
            "Margin %",
            "ratio",
            "margin / customer_charge × 100, 2 decimals (half away from zero); null when "
            "customer_charge is 0",
            places=2,
            nullable=True,
            signed=True,
            total=Total("ratio", of="margin", per="customer_charge", scale=100),
        ),
    )


@dataclass(frozen=True)
class Column:
    key: str
    label: str  # the page's column header
    kind: Kind
    description: str = ""  # the OpenAPI row schema's
    example: Any = None
    places: int = 0  # ratio: decimals
    schema: Mapping[str, Any] = field(default_factory=dict)  # more JSON Schema (pattern, …)
    total: Total | None = None  # None: SUM for count and money, nothing otherwise
    nullable: bool = False  # null when a row has no value (e.g. no call carried the field)
    signed: bool = False  # ratio: may be negative (a margin)

    @property
    def totalled(self) -> Total | None:
        if self.total is not None:
            return self.total
        return SUM if self.kind in ("count", "money") else None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"key": self.key, "label": self.label, "type": self.kind}
        if self.kind == "ratio":
            out["places"] = self.places
        if self.nullable:
            out["nullable"] = True
        if self.signed:
            out["signed"] = True
        if (total := self.totalled) is not None:
            out["total"] = total.as_json()
        return out


@dataclass(frozen=True)
class Tone:
    """The colour of a chart bar: ``by`` a flag column (``yes``/``no``), or by thresholds on a
    number (the first ``(limit, tone)`` whose limit the value is below, else ``otherwise``)."""

    by: str
    yes: str = ""
    no: str = ""
    below: tuple[tuple[float, str], ...] = ()
    otherwise: str = "base"
    legend: tuple[tuple[str, str], ...] = ()  # (tone, text)

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"by": self.by, "otherwise": self.otherwise}
        if self.yes or self.no:
            out |= {"yes": self.yes, "no": self.no}
        if self.below:
            out["below"] = [list(pair) for pair in self.below]
        if self.legend:
            out["legend"] = [list(pair) for pair in self.legend]
        return out


@dataclass(frozen=True)
class TopBars:
    """Horizontal bars of the first ``top`` rows (by ``sort_by`` descending when set, else in
    the answer's order): ``label`` (and ``label_with``) names a bar, ``value`` sizes it,
    ``details`` follow it (a text after a value of 1 loses its plural "s")."""

    title: str
    label: str
    value: str
    top: int = 12
    label_with: str = ""  # a second column shown in the label (provider and tech prefix)
    sort_by: str = ""
    unit: str = ""  # written after the value, e.g. " %"
    details: tuple[tuple[str, str], ...] = ()  # (column, text after its value)
    scale_max: float | None = None
    tone: Tone | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": "top-bars",
            "title": self.title,
            "label": self.label,
            "value": self.value,
            "top": self.top,
            "unit": self.unit,
            "details": [list(pair) for pair in self.details],
        }
        if self.sort_by:
            out["sort_by"] = self.sort_by
        if self.label_with:
            out["label_with"] = self.label_with
        if self.scale_max is not None:
            out["scale_max"] = self.scale_max
        if self.tone is not None:
            out["tone"] = self.tone.as_json()
        return out


@dataclass(frozen=True)
class TimeBars:
    """Bars over time, one group per distinct ``time`` (an hour column), a bar per series."""

    title: str
    time: str
    series: tuple[tuple[str, str], ...]  # (column, legend text)

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": "time-bars",
            "title": self.title,
            "time": self.time,
            "series": [list(pair) for pair in self.series],
        }


Chart = TopBars | TimeBars


def csv_cell(column: Column, value: Any) -> Any:
    """A row value as one CSV cell: SIP codes as "486:12 200:7", the rest as they are."""
    if column.kind == "codes":
        return " ".join(f"{entry['code']}:{entry['count']}" for entry in value)
    return value


def column_keys(report: Report) -> tuple[str, ...]:
    return tuple(column.key for column in report.columns)


def schema_name(report: Report) -> str:
    """The stem of the report's OpenAPI schema names: rate-center → RateCenter."""
    return "".join(part.capitalize() for part in report.name.split("-"))


def describe(report: Report) -> dict[str, Any]:
    """One report as the page needs it (the items of ``GET /api/v1/reports``)."""
    return {
        "id": report.name,
        "title": report.title,
        "short": report.short,
        "hint": report.hint,
        "whole_days": report.whole_days,
        "granularities": list(report.granularities),
        "columns": [column.as_json() for column in report.columns],
        "chart": report.chart.as_json() if report.chart is not None else None,
    }


def catalogue(reports: Iterable[Report]) -> dict[str, Any]:
    """What the page is built from: the reports, and the time zones `tz` takes."""
    return {"reports": [describe(report) for report in reports], "time_zones": zone_names()}
