"""State bytes per CDR: the keys and values the fold writes, by kind, on the bench's two
workloads (a day in time order; 13 months in random order).

Pure Python, no Kafka: the generator's CDRs are decoded, given their DID owners and folded in
batches of BATCH records into a dict, as a partition's transactions would write them; the
sizes are those of the final state (what RocksDB and the changelog's compacted topic keep,
before compression). Run it in two trees to compare layouts:

    python -m bench.state_size                     # this tree
    cd OTHER && PYTHONPATH=OTHER python /path/to/bench/state_size.py
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):  # (run by path from another tree: that tree's streamagg)
    sys.path.insert(0, str(Path.cwd()))

from bench.backfill import messages as backfill_messages
from streamagg.batches import Record
from streamagg.cdr import Rejection, decode_cdr
from streamagg.cli.cdrgen import CdrGenerator, GeneratorOptions
from streamagg.numbers import normalise_number
from streamagg.reports import REPORTS
from streamagg.tables.fold import fold_records

BATCH = 500  # records per fold (a live batch of the ingest stage is of this order)
DEDUP_HOURS = 48


def live_day(count: int, today: datetime) -> list[bytes]:
    """`count` CDRs of yesterday in time order (the bench's dense day)."""
    start = today - timedelta(days=1)
    options = GeneratorOptions(
        seed=2026, count=count, start=start.timestamp(), event_step=86400 / count
    )
    return [value for _, value in CdrGenerator(options).messages()]


def owners() -> dict[str, str]:
    generator = CdrGenerator(GeneratorOptions(seed=2026, count=1))
    return {normalise_number(did): account for did, account in generator.did_inventory()}


def fold_all(
    values: list[bytes], now: float, batch: int = BATCH
) -> tuple[dict[bytes, bytes], int, int]:
    """The state after folding every accepted CDR; (state, accepted, keys written)."""
    state: dict[bytes, bytes] = {}

    class Txn:
        get = state.get

        @staticmethod
        def set(key: bytes, value: bytes) -> None:
            state[key] = value

        @staticmethod
        def scan(low: bytes, high: bytes) -> Iterator[tuple[bytes, bytes]]:
            return iter(sorted((k, v) for k, v in state.items() if low <= k < high))

        @staticmethod
        def last(low: bytes, high: bytes) -> bytes | None:
            return max((k for k in state if low <= k < high), default=None)

    did_owner = owners()
    records = []
    for offset, value in enumerate(values):
        cdr = decode_cdr(value, now=now)
        if isinstance(cdr, Rejection):
            continue
        if cdr.cli:
            cdr.did_owner = did_owner.get(cdr.cli, "")
        records.append(Record(offset, int(now * 1000) + offset, cdr))
    written = 0
    for first in range(0, len(records), batch):
        outcome = fold_records(Txn(), records[first : first + batch], REPORTS, DEDUP_HOURS * 3600)
        written += outcome.keys_written
    return state, len(records), written


def kind_of(key: bytes) -> str:
    if key[:1] == b"R":
        return "R " + key.split(b"\x1f", 2)[1].decode()
    return key[:1].decode(errors="replace") or "?"


def measure(name: str, values: list[bytes], now: float, batch: int = BATCH) -> list[str]:
    began = time.process_time()  # (CPU time: steadier than wall time beside other work)
    state, accepted, written = fold_all(values, now, batch)
    elapsed = time.process_time() - began
    size: Counter[str] = Counter()
    keys: Counter[str] = Counter()
    for key, value in state.items():
        kind = kind_of(key)
        size[kind] += len(key) + len(value)
        keys[kind] += 1
    lines = [
        f"### {name}, batches of {batch:,}: {accepted:,} CDRs accepted, "
        f"{written / accepted:.2f} report keys written per CDR, "
        f"decode and fold {elapsed:.1f} s of CPU",
        "",
        "| kind | keys | keys per CDR | bytes per CDR |",
        "|---|---:|---:|---:|",
    ]
    for kind in sorted(size):
        lines.append(
            f"| {kind} | {keys[kind]:,} | {keys[kind] / accepted:.3f} | "
            f"{size[kind] / accepted:.1f} |"
        )
    total = sum(size.values())
    lines.append(
        f"| **all** | {len(state):,} | {len(state) / accepted:.3f} | {total / accepted:.1f} |"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000, help="CDRs per workload")
    parser.add_argument("--batch", type=int, default=BATCH, help="records per fold")
    args = parser.parse_args()
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    now = time.time()
    for name, values in (
        ("live order (one day)", live_day(args.count, today)),
        (
            "history in random order (13 months)",
            [v for _, v in backfill_messages(args.count, today)],
        ),
    ):
        print("\n".join(measure(name, values, now, args.batch)), end="\n\n")


if __name__ == "__main__":
    main()
