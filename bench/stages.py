"""`python -m bench.stages [CDRS]`: CPU per CDR of each stage of the CDR path, without Kafka.

The bench's live-order stream (`streamagg generate`, one day, seed 2026) goes through the
ingest stage's work (decode and triage, split and encode into batch messages) and the state
layer's (decode the batches, dedup, fold each report, write the local RocksDB copy) in one
process, stage by stage; prints the CPU time per CDR of each. The Kafka clients and
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
from streamagg.tables.fold import _is_duplicate, add_expiry_groups
from streamagg.tables.store import PartitionStore
from streamagg.tables.sums import fold_report
from streamagg.tables.transaction import PartitionTransaction

HORIZON_MS = 48 * 3600 * 1000
POLL = 5000  # messages per ingest poll
PARTITIONS = 8


def main(count: int) -> dict[str, float]:
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
            for raw in partition_payloads:
                began = time.process_time()
                records = Batch.decode(raw).records
                began = timed("state: decode batches", began)
                txn = PartitionTransaction(0, store, None, "changelog")
                fresh = [r for r in records if not _is_duplicate(txn, r, HORIZON_MS)]
                accepted = [r.cdr for r in fresh]
                add_expiry_groups(
                    txn,
                    [
                        (r.timestamp_ms, c.customer_id, c.callid)
                        for r, c in zip(fresh, accepted, strict=True)
                    ],
                )
                began = timed("state: dedup", began)
                for report in REPORTS.values():
                    fold_report(txn, report, accepted)
                    began = timed(f"state: fold {report.name}", began)
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
    for stage, micros in main(cdrs).items():
        print(f"{stage:32} {micros:6.2f} µs CPU per CDR")
