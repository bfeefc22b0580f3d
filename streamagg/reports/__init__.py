"""The reports (SPEC §2 and §6), each a pure fold with its query-time rows, in the page's order.

A report is one module here plus one line below: docs/adding-a-report.md."""

from streamagg.reports.base import Report
from streamagg.reports.did_cli import DidCliReport
from streamagg.reports.dtmf import DtmfReport
from streamagg.reports.rate_center import RateCenterReport
from streamagg.reports.routes import RoutesReport
from streamagg.reports.tech_prefix import TechPrefixReport

REPORTS: dict[str, Report] = {
    report.name: report
    for report in (
        DtmfReport(),
        RateCenterReport(),
        DidCliReport(),
        TechPrefixReport(),
        RoutesReport(),
    )
}

__all__ = ["REPORTS", "Report"]
