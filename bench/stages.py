"""`python -m bench.stages [CDRS] [TRANSACTION]`: CPU per CDR of each stage, without Kafka.

The bench's live-order stream (`streamagg generate`, one day, seed 2026) goes through the
ingest stage's work (decode and triage, split and encode into batch messages) and the state
layer's (decode the batches, dedup, each report's sums and writes, the local RocksDB copy) in
one process, stage by stage, each partition's share in state transactions of up to
TRANSACTION records (20,000: a worker catching up; a few hundred: a live stream, summed per
CDR; 5,000 and more are summed on columns, tables/fold_columns.py); prints the CPU time per
CDR of each. The first report's figure includes the transaction's shared work before it
(expiry groups, latest calls; on columns, laying the CDRs out as columns). The Kafka clients and
transactions are left out: this is for comparing a change of one stage, on one machine, in
one run (BENCHMARKS.md, "Issue 15").
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from aiokafka.structs import ConsumerRecord

from streamagg.agents.ingest import _encode_bounded, triage
from streamagg.batches import Batch, split_into_batches
from streamagg.cdr import TimePolicy
from streamagg.cli.cdrgen import CdrGenerator, GeneratorOptions
from streamagg.reports import REPORTS
from streamagg.settings import COLUMN_SUMS_FROM
from streamagg.tables.fold import BatchFold
from streamagg.tables.store import PartitionStore
from streamagg.tables.transaction import PartitionTransaction

HORIZON_MS = 48 * 3600 * 1000
POLL = 5000  # messages per ingest poll
PARTITIONS = 8


def main(count: int, transaction: int = 20_000) -> dict[str, float]:
    now = time.time()
    generator = CdrGenerator(
        GeneratorOptions(seed=2026, count=count, start=now - 86400, event_step=86400 / count)
    )
    stamp = int(now * 1000)
    messages = [
        ConsumerRecord("cdr-events", 0, i, stamp, 0, key, value, None, 0, len(value), [])
        for i, (key, value) in enumerate(generator.messages())
    ]
    owners = dict(generator.did_inventory())
    cpu: dict[str, float] = {}
    writes: dict[str, int] = {}  # keys written, by kind (tables/keys.py)

    def timed(stage: str, began: float) -> float:
        ended = time.process_time()
        cpu[stage] = cpu.get(stage, 0.0) + ended - began
        return ended

    payloads: list[list[bytes]] = [[] for _ in range(PARTITIONS)]
    for first in range(0, count, POLL):
        began = time.process_time()
        poll = triage(
            messages[first : first + POLL],
            now=now,
            policy=TimePolicy(),
            did_owner=lambda cli: owners.get(cli, ""),
        )
        began = timed("ingest: decode and triage", began)
        for partition, batch in split_into_batches("cdr-events/0", poll.records, PARTITIONS, 4000):
            payloads[partition] += _encode_bounded(batch)
        timed("ingest: split and encode", began)
    with tempfile.TemporaryDirectory() as folder:
        store = PartitionStore(Path(folder) / "p")
        for partition_payloads in payloads:
            began = time.process_time()
            records = [r for raw in partition_payloads for r in Batch.decode(raw).records]
            timed("state: decode batches", began)
            for first in range(0, len(records), transaction):
                began = time.process_time()
                chunk = records[first : first + transaction]
                txn = PartitionTransaction(0, store, None, "changelog")
                on_columns = len(chunk) >= COLUMN_SUMS_FROM
                fold = BatchFold(txn, REPORTS, HORIZON_MS // 1000, on_columns)
                fold.add(chunk)
                began = timed("state: dedup (+ per-CDR sums)", began)
                for step in fold.finish():
                    began = timed(f"state: {step}", began)
                for key in txn._changes:
                    writes[key[:1].decode()] = writes.get(key[:1].decode(), 0) + 1
                store.apply(txn._changes, 0)
                timed("state: RocksDB write", began)
        store.close()
    print(
        "keys written per CDR:", {kind: round(n / count, 3) for kind, n in sorted(writes.items())}
    )
    return {stage: seconds / count * 1e6 for stage, seconds in cpu.items()}


if __name__ == "__main__":
    cdrs = int(sys.argv[1]) if len(sys.argv) > 1 else 300_000
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
    print(f"{cdrs:,} CDRs, state transactions of up to {size:,} records (a partition's share)")
    for stage, micros in main(cdrs, size).items():
        print(f"{stage:32} {micros:6.2f} µs CPU per CDR")
