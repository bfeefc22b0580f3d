"""DTMF: charges and DTMF-carrying calls per hour and provider."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

from streamagg.cdr import Cdr
from streamagg.reports.base import Groups, QueryContext, Row, money
from streamagg.tables.buckets import DAY, Grain

CUSTOMER_CHARGE, PROVIDER_CHARGE, DTMF_CALLS, CALLS = range(4)


def hour_label(epoch_hour: int) -> str:
    return datetime.fromtimestamp(epoch_hour * 3600, UTC).strftime("%Y-%m-%dT%H:00:00Z")


class DtmfReport:
    name: ClassVar[str] = "dtmf"
    # Rows are per hour already, so a day bucket holds its 24 hours; rollups would not shrink
    # the answer, and a day key keeps a 13-month query to ~400 reads.
    grains: ClassVar[tuple[Grain, ...]] = (DAY,)
    columns: ClassVar[tuple[str, ...]] = (
        "dt",
        "provider_id",
        "customer_charge",
        "provider_charge",
        "dtmf_count",
        "calls",
    )
    hour_in_group: ClassVar[bool] = True

    def group(self, cdr: Cdr) -> str | None:
        return f"{cdr.hour}\x1f{cdr.provider_id}"

    def delta(self, cdr: Cdr) -> list[int]:
        return [cdr.customer_charge, cdr.provider_charge, int(cdr.has_dtmf), 1]

    def rows(self, groups: Groups, context: QueryContext) -> list[Row]:
        keyed = []
        for group, v in groups.items():
            hour, provider = group.split("\x1f", 1)
            keyed.append((int(hour), provider, v))
        keyed.sort(key=lambda item: (item[0], item[1]))
        return [
            {
                "dt": hour_label(hour),
                "provider_id": provider,
                "customer_charge": money(v[CUSTOMER_CHARGE]),
                "provider_charge": money(v[PROVIDER_CHARGE]),
                "dtmf_count": v[DTMF_CALLS],
                "calls": v[CALLS],
            }
            for hour, provider, v in keyed
        ]
