"""The routes report (SPEC §6) on hand-made CDRs: every figure worked out by hand below."""

from __future__ import annotations

from streamagg.cdr import NO_PDD, NO_SIP_CODE, Cdr
from streamagg.reports.routes import RoutesReport
from tests.unit.test_reports import call, rows_of

S = 1_000_000  # micro-seconds per second

ROUTES = RoutesReport()


def attempt(
    provider: str, code: int, seconds: float = 0, pdd: int = NO_PDD, prefix: str = "1#"
) -> Cdr:
    answered = code == 200 if code != NO_SIP_CODE else seconds > 0
    return call(
        provider_id=provider,
        tech_prefix=prefix,
        sip_code=code,
        answered=answered,
        duration=int(seconds * S),
        pdd_ms=pdd,
    )


def test_one_route_counts_asr_acd_ner_short_calls_pdd_and_codes() -> None:
    calls = [
        attempt("P1", 200, 4, pdd=1000),  # answered, short (≤ 6 s), effective
        attempt("P1", 200, 6, pdd=2000),  # answered, short (exactly 6 s), effective
        attempt("P1", 200, 60),  # answered, effective, no PDD
        attempt("P1", 486, pdd=3001),  # busy: effective, not answered
        attempt("P1", 487),  # cancelled by the caller: effective
        attempt("P1", 503),  # network failure: not effective
        attempt("P1", 503),
        attempt("P1", NO_SIP_CODE, 30),  # no code, talk time: answered and effective
        attempt("P1", NO_SIP_CODE, 0),  # no code, no talk: neither
    ]
    (row,) = rows_of(ROUTES, calls)
    assert row == {
        "provider_id": "P1",
        "tech_prefix": "1#",
        "attempts": 9,
        "answered_calls": 4,  # three 200s and the no-code call with talk time
        "asr": 44.44,  # 4 / 9 = 44.444…
        "acd": 25.0,  # (4 + 6 + 60 + 30) / 4
        "ner": 66.67,  # 200 ×3, 486, 487, no-code answered = 6 of 9
        "scr": 50.0,  # 2 of 4 answered calls last ≤ 6 s
        "pdd_avg_ms": 2000,  # (1000 + 2000 + 3001) / 3 = 2000.33
        "codes": [  # calls without a code are not among the codes
            {"code": 200, "count": 3},
            {"code": 503, "count": 2},
            {"code": 486, "count": 1},
            {"code": 487, "count": 1},
        ],
    }


def test_rows_per_provider_and_prefix_sorted_by_attempts_then_names() -> None:
    calls = [
        attempt("P2", 404, prefix="9#"),
        attempt("P1", 404, prefix="9#"),
        attempt("P1", 404, prefix="1#"),
        *[attempt("P3", 480, prefix="1#") for _ in range(3)],
    ]
    rows = rows_of(ROUTES, calls)
    assert [(r["provider_id"], r["tech_prefix"], r["attempts"]) for r in rows] == [
        ("P3", "1#", 3),
        ("P1", "1#", 1),
        ("P1", "9#", 1),
        ("P2", "9#", 1),
    ]
    # 480 is the callee's "temporarily unavailable": effective; 404 is not.
    assert [r["ner"] for r in rows] == [100.0, 0.0, 0.0, 0.0]
    # Nothing answered: ACD and SCR are 0, and no PDD was carried.
    assert {(r["acd"], r["scr"], r["pdd_avg_ms"]) for r in rows} == {(0.0, 0.0, None)}


def test_at_most_five_codes_most_frequent_first_ties_by_code() -> None:
    counts = {603: 2, 500: 2, 404: 5, 480: 1, 408: 2, 502: 3, 600: 1}
    calls = [attempt("P", code) for code, n in counts.items() for _ in range(n)]
    (row,) = rows_of(ROUTES, calls)
    assert row["codes"] == [
        {"code": 404, "count": 5},
        {"code": 502, "count": 3},
        {"code": 408, "count": 2},
        {"code": 500, "count": 2},
        {"code": 603, "count": 2},
    ]


def test_pdd_rounds_half_up_to_whole_milliseconds() -> None:
    (row,) = rows_of(ROUTES, [attempt("P", 200, 10, pdd=1), attempt("P", 200, 10, pdd=2)])
    assert row["pdd_avg_ms"] == 2  # 1.5 → 2
