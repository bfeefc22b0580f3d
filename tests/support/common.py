"""Small things every test layer and the bench share: one definition each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

# kafka-local reads these; a private broker is started with them cleared, so that a developer's
# own settings (their port, their folder) never leak into a test's broker.
BROKER_VARS = (
    "KAFKA_DIR",
    "KAFKA_PORT",
    "KAFKA_SASL_PORT",
    "KAFKA_SASL_USER",
    "KAFKA_SASL_PASSWORD",
)
# The report ids of SPEC §2, as the tests' oracle knows them (not read from streamagg's code).
REPORT_IDS = ("dtmf", "rate-center", "did-cli", "tech-prefix", "routes")


def iso(moment: datetime) -> str:
    """An instant as the API's from/to parameters spell it in UTC (a naive datetime is UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def month_start(moment: datetime, months_back: int = 0) -> datetime:
    """Midnight of the first day of moment's month, months_back months earlier."""
    first = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    for _ in range(months_back):
        first = (first - timedelta(days=1)).replace(day=1)
    return first


def without_margin(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows without SPEC §6's margin columns, for tests about the other columns (the margin
    has tests of its own: test_reports.py, test_oracle.py)."""
    return [{k: v for k, v in row.items() if k not in ("margin", "margin_pct")} for row in rows]
