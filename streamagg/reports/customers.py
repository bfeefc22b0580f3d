"""The customers that have data: each partition keeps its customers' latest call start
(``C␟customer`` keys, written by the fold); the API's list merges them over the partitions."""

from __future__ import annotations

from streamagg.reports.range_sums import Scan
from streamagg.tables.keys import CUSTOMERS_RANGE, decode_int


def latest_calls(scan: Scan) -> dict[str, int]:
    """customer → start (epoch seconds) of its latest accepted call, in one partition."""
    low, high = CUSTOMERS_RANGE
    return {key[len(low) :].decode(): decode_int(raw, 0) for key, raw in scan(low, high)}
