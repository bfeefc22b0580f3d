"""DID as CLI: calls presenting one of the system's DIDs as caller ID, per owner account."""

from __future__ import annotations

from typing import ClassVar

from streamagg.cdr import Cdr
from streamagg.reports.base import Groups, QueryContext, Row
from streamagg.tables.buckets import DAY, MONTH, Grain


class DidCliReport:
    name: ClassVar[str] = "did-cli"
    grains: ClassVar[tuple[Grain, ...]] = (DAY, MONTH)
    columns: ClassVar[tuple[str, ...]] = ("account", "dest_cli", "count", "foreign")
    hour_in_group: ClassVar[bool] = False

    def group(self, cdr: Cdr) -> str | None:
        # The owner is looked up when the CDR is processed (SPEC §2), then frozen in the group.
        return f"{cdr.did_owner}\x1f{cdr.cli}" if cdr.did_owner else None

    def delta(self, cdr: Cdr) -> list[int]:
        return [1]

    def rows(self, groups: Groups, context: QueryContext) -> list[Row]:
        rows: list[Row] = []
        for group, v in groups.items():
            account, did = group.split("\x1f", 1)
            rows.append(
                {
                    "account": account,
                    "dest_cli": did,
                    "count": v[0],
                    "foreign": account != context.customer_id,
                }
            )
        rows.sort(key=lambda row: (row["account"], -row["count"], row["dest_cli"]))
        return rows
