"""`python -m bench.column_sums [CDRS] [TRANSACTION] [DAYS]`: report sums per CDR against on
columns, the same transactions, in one process.

The bench generator's CDRs (seed 2026) over the last DAYS days (1: the live-order day; 400:
history) are split by customer partition into transactions of TRANSACTION records; each is
summed and written into an empty dict-backed state both ways (tables/sums.py, per CDR;
tables/fold_columns.py, on columns), the two states are checked equal, and the CPU per CDR of
each is printed. This is where the default of STREAMAGG_COLUMN_SUMS_FROM comes from.
"""

from __future__ import annotations

import gc
import sys
import time

from streamagg.reports import REPORTS
from streamagg.tables.fold_columns import cdr_frame, column_sums
from streamagg.tables.sums import QuarterSums
from tests.support.generated import partitions_of
from tests.support.memstore import MemState

PARTITIONS = 8


def main(count: int, transaction: int, days: float) -> tuple[float, float]:
    shares = partitions_of(count, days, PARTITIONS)
    open_from = int(time.time() // 3600) - 2  # (older hours go to their days and months)
    per_cdr = on_columns = 0.0
    gc.disable()  # (as a worker's state cycle: gc_tuning.collector_paused)
    for share in shares:
        for first in range(0, len(share), transaction):
            cdrs = share[first : first + transaction]
            one, other = MemState(), MemState()
            began = time.process_time()
            for report in REPORTS.values():
                sums = QuarterSums(report)
                sums.add(cdrs)
                sums.write(one, open_from)
            middle = time.process_time()
            frame = cdr_frame(cdrs)
            for report in REPORTS.values():
                sums = column_sums(report, frame)
                assert sums is not None, "a report summed per CDR"
                sums.write(other, open_from)
            ended = time.process_time()
            assert one.data == other.data, "the two sums differ"
            per_cdr += middle - began
            on_columns += ended - middle
    gc.enable()
    total = sum(map(len, shares))
    return per_cdr / total * 1e6, on_columns / total * 1e6


if __name__ == "__main__":
    cdrs = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
    days = float(sys.argv[3]) if len(sys.argv) > 3 else 1
    one_by_one, columns = main(cdrs, size, days)
    print(
        f"{cdrs:,} CDRs over {days:g} days, transactions of up to {size:,}: per CDR "
        f"{one_by_one:.2f} µs, on columns {columns:.2f} µs of CPU per CDR (same state)"
    )
