"""What every report shares: the fold protocol, group vectors and exact number formatting."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar, Protocol

from streamagg.cdr import Cdr
from streamagg.reports.periods import UTC_ZONE, Zone
from streamagg.reports.view import Chart, Column
from streamagg.tables.buckets import Grain

Groups = dict[str, list[int]]
Row = dict[str, Any]


@dataclass
class QueryContext:
    """What a report needs at query time besides its state."""

    customer_id: str
    resolve_rate_center: Any = None  # Callable[[str], RateCenterRow | None]
    granularity: str = "hour"  # the period of a row, for reports that have one (dtmf)
    zone: Zone = UTC_ZONE  # the time zone of the range and of the periods of rows
    # The first epoch quarter from which no bucket has lost finer buckets to retention: a
    # range's edges may read a coarser bucket less its part outside the range from here on
    # (tables/buckets.py, signed_cover). None: only buckets inside the range are read.
    intact_from: int | None = None


class Report(Protocol):
    """A report is a pure fold: CDR → (group, delta); delta + delta → delta; state → rows;
    and how its rows are shown and documented (reports/view.py)."""

    name: ClassVar[str]  # its id in the API
    grains: ClassVar[tuple[Grain, ...]]
    # Group keys start with the epoch hour; the query hands rows() its periods instead.
    hour_in_group: ClassVar[bool]
    whole_days: ClassVar[bool]  # ranges must be whole (local) days: the report counts per day
    # Periods a row may stand for (`granularity=`), the first the default; () for none.
    granularities: ClassVar[tuple[str, ...]]
    fields: ClassVar[tuple[str, ...]]  # delta()'s entries: the state value's schema (append only)
    title: ClassVar[str]  # the page's title of the report
    short: ClassVar[str]  # its tab
    hint: ClassVar[str]  # one sentence under the tabs
    row_description: ClassVar[str]  # what one row is (OpenAPI)
    order: ClassVar[str]  # how rows are sorted (OpenAPI)
    columns: ClassVar[tuple[Column, ...]]  # every field of a row, in order
    chart: ClassVar[Chart | None]

    def group(self, cdr: Cdr) -> str | None:
        """The group a call adds to, or None when the call is not part of this report."""

    def delta(self, cdr: Cdr) -> list[int]:
        """What one call adds to its group."""

    def rows(self, groups: Groups, context: QueryContext) -> list[Row]:
        """The sorted report rows of the merged state of a range."""


def money(micros: int) -> str:
    """Micro-units as the API writes money: a string with exactly 6 decimals."""
    # One %-format of divmod's pair: 234 ns against an f-string's 379 (a large answer writes
    # three of these per row), hence the percent formats.
    if micros < 0:
        return "-%d.%06d" % divmod(-micros, 1_000_000)  # noqa: UP031
    return "%d.%06d" % divmod(micros, 1_000_000)  # noqa: UP031


def margin(customer_micros: int, provider_micros: int) -> Row:
    """SPEC §6's margin columns: customer − provider charge (exact, may be negative), and its
    share of the customer charge in % (2 decimals, half away from zero; None when the customer
    was charged nothing)."""
    micros = customer_micros - provider_micros
    return {
        "margin": money(micros),
        "margin_pct": ratio(micros * 100, customer_micros, 2) if customer_micros else None,
    }


# Below this, an integer and its quotient by a power of ten are exact as floats' operands.
_EXACT_FLOAT_INT = 2**53


def ratio(numerator: int, denominator: int, places: int) -> float:
    """numerator / denominator rounded half-up (half away from zero for a negative value) to
    places decimals; 0 when denominator is 0."""
    if denominator == 0:
        return 0.0
    # In integers: the rounded value times 10**places, then one correctly rounded division,
    # which gives the float nearest the decimal, as float(Decimal) does (a few times faster: a
    # large answer computes this for every row).
    scale: int = 10**places  # (places >= 0)
    units, rest = divmod(abs(numerator) * scale, abs(denominator))
    if 2 * rest >= abs(denominator):
        units += 1
    if units >= _EXACT_FLOAT_INT:  # (beyond exact float operands: decimal arithmetic)
        exact = Decimal(numerator) / Decimal(denominator)
        return float(exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP))
    negative = (numerator < 0) != (denominator < 0)
    return (-units if negative else units) / scale
