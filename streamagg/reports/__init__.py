"""The four reports of SPEC §2, each a pure fold with its query-time rows."""

from streamagg.reports.base import Report
from streamagg.reports.did_cli import DidCliReport
from streamagg.reports.dtmf import DtmfReport
from streamagg.reports.rate_center import RateCenterReport
from streamagg.reports.tech_prefix import TechPrefixReport

REPORTS: dict[str, Report] = {
    report.name: report
    for report in (DtmfReport(), RateCenterReport(), DidCliReport(), TechPrefixReport())
}

__all__ = ["REPORTS", "Report"]
