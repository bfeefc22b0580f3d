"""The fault suite's check that no answer given during a run shows more than the final truth
(tests/support/chaos.py, above_final): it must catch a count ahead and a row that never was."""

from __future__ import annotations

from typing import Any

from tests.support.chaos import GROWING, above_final, row_identity
from tests.support.common import REPORT_IDS

FINAL: dict[str, list[dict[str, Any]]] = {
    "tech-prefix": [
        {"tech_prefix": "123#", "total": 10, "answered_calls": 6, "asr": 60.0, "acd": 31.5},
        {"tech_prefix": "", "total": 4, "answered_calls": 1, "asr": 25.0, "acd": 12.0},
    ],
    "dtmf": [
        {
            "dt": "2026-11-30T08:00:00Z",
            "provider_id": "p1",
            "customer_charge": "1.500000",
            "provider_charge": "0.900000",
            "dtmf_count": 2,
            "calls": 5,
        }
    ],
}


def final(report: str, customer: str) -> list[dict[str, Any]]:
    return FINAL[report]


def test_every_report_names_its_growing_columns() -> None:
    assert set(GROWING) == set(REPORT_IDS)


def test_answers_behind_or_equal_pass() -> None:
    behind = [dict(FINAL["tech-prefix"][0], total=7, answered_calls=6, asr=85.71)]
    earlier_money = [dict(FINAL["dtmf"][0], customer_charge="0.300000", calls=1, dtmf_count=0)]
    answers = [
        ("tech-prefix", "c1", behind),
        ("tech-prefix", "c1", FINAL["tech-prefix"]),
        ("dtmf", "c1", earlier_money),
        ("dtmf", "c1", []),
    ]
    assert above_final(answers, final) == []


def test_a_count_ahead_of_the_final_one_is_caught() -> None:
    ahead = [dict(FINAL["tech-prefix"][1], total=5)]
    found = above_final([("tech-prefix", "c1", ahead)], final)
    assert len(found) == 1 and "total 5 > 4" in found[0]


def test_a_row_the_final_answer_lacks_is_caught() -> None:
    ghost = [dict(FINAL["dtmf"][0], provider_id="p2")]
    found = above_final([("dtmf", "c1", ghost)], final)
    assert len(found) == 1 and "not in the final answer" in found[0]


def test_a_row_is_named_by_its_text_not_by_its_money() -> None:
    row = FINAL["dtmf"][0]
    assert row_identity(row) == (("dt", row["dt"]), ("provider_id", "p1"))
