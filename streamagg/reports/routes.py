"""Route quality: per provider and tech prefix, ASR, ACD, NER, short calls, PDD and SIP codes.

What a NOC reads to find the provider or route that fails (SPEC §6): NER (ITU-T E.425) counts
the calls the network completed — answered, or ended by the called user — so a drop of NER is
the network's fault where a drop of ASR may be the callees'. The state keeps one group per
(provider, tech prefix, final SIP code): the codes of a row are the attempts of its groups.
"""

from __future__ import annotations

from typing import ClassVar

import polars as pl

from streamagg.cdr import NO_PDD, NO_SIP_CODE, Cdr
from streamagg.cdr.model import EFFECTIVE_SIP_CODES
from streamagg.reports.base import Groups, QueryContext, Row, ratio
from streamagg.reports.view import Chart, Column, Tone, TopBars, Total, asr_acd_columns
from streamagg.tables.buckets import DAY, HOUR, MONTH, Grain
from streamagg.tables.sums import add_vector

ATTEMPTS, ANSWERED, ANSWERED_MICROS, EFFECTIVE, SHORT, PDD_SUM, PDD_CALLS = range(7)
SHORT_CALL_MICROS = 6_000_000  # an answered call of at most 6 s is a short call
TOP_CODES = 5


class RoutesReport:
    name: ClassVar[str] = "routes"
    grains: ClassVar[tuple[Grain, ...]] = (HOUR, DAY, MONTH)
    hour_in_group: ClassVar[bool] = False
    whole_days: ClassVar[bool] = False
    granularities: ClassVar[tuple[str, ...]] = ()
    fields: ClassVar[tuple[str, ...]] = (
        "attempts",
        "answered",
        "answered_micros",
        "effective",
        "short_calls",
        "pdd_ms_sum",
        "pdd_calls",
    )
    title: ClassVar[str] = "Route quality"
    short: ClassVar[str] = "Routes"
    hint: ClassVar[str] = (
        "Per provider and tech prefix: ASR, ACD, NER (network effectiveness), short calls, "
        "post-dial delay and the most frequent final SIP codes."
    )
    row_description: ClassVar[str] = "One (provider, tech prefix) with at least one attempt"
    order: ClassVar[str] = "Sorted by `attempts` descending, then `provider_id`, then `tech_prefix`"
    columns: ClassVar[tuple[Column, ...]] = (
        Column(
            "provider_id",
            "Provider",
            "text",
            'The carrier the calls were routed to; "" when the CDR had none',
        ),
        Column("tech_prefix", "Tech prefix", "code", example="123#", schema={"maxLength": 32}),
        *asr_acd_columns("attempts"),
        Column(
            "ner",
            "NER %",
            "ratio",
            "Calls answered or ended by the called user (final SIP code 200, 486, 600, 603, "
            "480 or 487, or answered by the duration rule) / attempts × 100, 2 decimals "
            "(ITU-T E.425)",
            96.5,
            places=2,
            schema={"maximum": 100},
            total=Total("weighted", by="attempts"),
        ),
        Column(
            "scr",
            "Short calls %",
            "ratio",
            "Answered calls of at most 6 s / answered calls × 100, 2 decimals; 0 when none "
            "answered",
            3.1,
            places=2,
            schema={"maximum": 100},
            total=Total("weighted", by="answered_calls"),
        ),
        Column(
            "pdd_avg_ms",
            "PDD (ms)",
            "ratio",
            "Mean post-dial delay of the calls that carry `pdd_ms`, 0 decimals; null when none",
            2350,
            nullable=True,
        ),
        Column(
            "codes",
            "SIP codes",
            "codes",
            "The 5 most frequent final SIP codes of the calls that carry one, most frequent "
            'first, ties by code; in CSV one cell, e.g. "486:12 200:7"',
        ),
    )
    chart: ClassVar[Chart | None] = TopBars(
        "NER by provider and tech prefix",
        label="provider_id",
        label_with="tech_prefix",
        value="ner",
        top=20,
        unit=" %",
        details=(("attempts", " attempts"),),
        scale_max=100,
        tone=Tone("ner", below=((70, "bad"), (85, "warn")), otherwise="good"),
    )

    def group(self, cdr: Cdr) -> str | None:
        code = "" if cdr.sip_code == NO_SIP_CODE else str(cdr.sip_code)
        return f"{cdr.provider_id}\x1f{cdr.tech_prefix}\x1f{code}"

    def delta(self, cdr: Cdr) -> list[int]:
        answered = cdr.answered
        has_pdd = cdr.pdd_ms != NO_PDD
        return [
            1,
            int(answered),
            cdr.duration if answered else 0,
            int(cdr.effective),
            int(answered and cdr.duration <= SHORT_CALL_MICROS),
            cdr.pdd_ms if has_pdd else 0,
            int(has_pdd),
        ]

    def group_column(self) -> pl.Expr:
        code = pl.col("sip_code")
        code_text = pl.when(code == NO_SIP_CODE).then(pl.lit("")).otherwise(code.cast(pl.String))
        return pl.concat_str(
            "provider_id", pl.lit("\x1f"), "tech_prefix", pl.lit("\x1f"), code_text
        )

    def delta_columns(self) -> list[pl.Expr]:
        answered, duration = pl.col("answered"), pl.col("duration")
        code, pdd = pl.col("sip_code"), pl.col("pdd_ms")
        effective = (
            pl.when(code == NO_SIP_CODE)
            .then(answered)
            .otherwise(code.is_in(sorted(EFFECTIVE_SIP_CODES)))
        )
        has_pdd = pdd != NO_PDD
        return [
            pl.lit(1),
            answered,
            pl.when(answered).then(duration).otherwise(0),
            effective,
            answered & (duration <= SHORT_CALL_MICROS),
            pl.when(has_pdd).then(pdd).otherwise(0),
            has_pdd,
        ]

    def rows(self, groups: Groups, context: QueryContext) -> list[Row]:
        totals: dict[tuple[str, str], list[int]] = {}
        codes: dict[tuple[str, str], dict[int, int]] = {}
        for group, v in groups.items():
            provider, prefix, code = group.split("\x1f", 2)
            add_vector(totals, (provider, prefix), v)
            route_codes = codes.setdefault((provider, prefix), {})
            if code:
                route_codes[int(code)] = route_codes.get(int(code), 0) + v[ATTEMPTS]
        rows = [_row(p, t, v, codes[(p, t)]) for (p, t), v in totals.items()]
        rows.sort(key=lambda row: (-row["attempts"], row["provider_id"], row["tech_prefix"]))
        return rows


def _row(provider: str, prefix: str, v: list[int], codes: dict[int, int]) -> Row:
    top = sorted(codes.items(), key=lambda item: (-item[1], item[0]))[:TOP_CODES]
    return {
        "provider_id": provider,
        "tech_prefix": prefix,
        "attempts": v[ATTEMPTS],
        "answered_calls": v[ANSWERED],
        # Every ratio comes from the summed counts of the whole range, never averaged.
        "asr": ratio(v[ANSWERED] * 100, v[ATTEMPTS], 2),
        "acd": ratio(v[ANSWERED_MICROS], v[ANSWERED] * 1_000_000, 1),
        "ner": ratio(v[EFFECTIVE] * 100, v[ATTEMPTS], 2),
        "scr": ratio(v[SHORT] * 100, v[ANSWERED], 2),
        "pdd_avg_ms": int(ratio(v[PDD_SUM], v[PDD_CALLS], 0)) if v[PDD_CALLS] else None,
        "codes": [{"code": code, "count": count} for code, count in top],
    }
