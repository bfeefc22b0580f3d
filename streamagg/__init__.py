"""streamagg: live CDR reports for VoIP carriers, computed from Kafka with Faust."""

import os

# Polars (the sums of large transactions: tables/fold_columns.py) works on one thread: a
# worker's processes keep the cores busy already (its state, its ingest child, often the
# broker), and Kafka partitions, not threads, spread the load (BENCHMARKS.md, issue 15). Set
# before Polars is first imported; an operator's own POLARS_MAX_THREADS wins.
os.environ.setdefault("POLARS_MAX_THREADS", "1")

from streamagg.errors import StreamaggError
from streamagg.settings import Settings

__all__ = ["Settings", "StreamaggError"]
__version__ = "0.1.0"
