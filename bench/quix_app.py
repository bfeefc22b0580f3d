"""The same four aggregations on Quix Streams (bench-only dependency `quixstreams`).

Per message: streamagg's own decoder (`decode_cdr`: the same validation and normalisation),
the DID-inventory lookup, dedup on (customer, callid) in state, then one stateful update per
report in per-customer hour buckets (did-cli: day buckets) — Quix's state is per message key,
and the topic is keyed by customer. State goes to RocksDB with changelog topics (Quix's
defaults), at-least-once.

Run as `python -m bench.quix_app BOOTSTRAP TOPIC COUNT DIDS_CSV STATE_DIR`; prints JSON
{samples, cpu_seconds}.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import sys
import time
import uuid

from quixstreams import Application

from streamagg.cdr import Cdr, TimePolicy, decode_cdr

SAMPLE_EVERY = 5000


def load_dids(path: str) -> dict[str, str]:
    with open(path, newline="", encoding="utf-8") as source:
        return {row["did"]: row["account"] for row in csv.DictReader(source)}


def add(state, key: str, delta: list[int]) -> None:
    current = state.get(key)
    if current is None:
        state.set(key, delta)
    else:
        state.set(key, [a + b for a, b in zip(current, delta, strict=True)])


def main() -> None:
    bootstrap, topic_name, count, dids_csv, state_dir = sys.argv[1:6]
    target = int(count)
    dids = load_dids(dids_csv)
    policy = TimePolicy()
    app = Application(
        broker_address=bootstrap,
        consumer_group=f"bench-quix-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        state_dir=state_dir,
        loglevel="WARNING",
    )
    topic = app.topic(topic_name, value_deserializer="bytes", key_deserializer="bytes")
    samples: list[tuple[float, int]] = [(time.time(), 0)]
    seen = [0, 0]  # messages processed, rejected

    def process(value: bytes, state) -> None:
        cdr = decode_cdr(value, now=time.time(), policy=policy)
        seen[0] += 1
        if seen[0] % SAMPLE_EVERY == 0 or seen[0] == target:
            samples.append((time.time(), seen[0]))
        if not isinstance(cdr, Cdr):
            seen[1] += 1
            return
        dedup = f"id\x1f{cdr.callid}"
        if state.get(dedup) is not None:
            return
        state.set(dedup, cdr.start)
        hour = cdr.hour
        add(
            state,
            f"dtmf\x1f{hour}\x1f{cdr.provider_id}",
            [cdr.customer_charge, cdr.provider_charge, int(cdr.has_dtmf), 1],
        )
        if cdr.nanp_number:
            add(
                state,
                f"rc\x1f{hour}\x1f{cdr.nanp_number[:7]}",
                [cdr.customer_charge, cdr.provider_charge, 1],
            )
        owner = dids.get(cdr.cli) if cdr.cli else None
        if owner:
            add(state, f"did\x1f{hour // 24}\x1f{owner}\x1f{cdr.cli}", [1])
        add(
            state,
            f"tp\x1f{hour}\x1f{cdr.tech_prefix}",
            [1, 1, cdr.duration] if cdr.answered else [1, 0, 0],
        )

    sdf = app.dataframe(topic)
    sdf.update(process, stateful=True)
    logging.getLogger("quixstreams").setLevel(logging.WARNING)
    app.run(count=target, collect=False)
    times = os.times()
    print(
        json.dumps(
            {"samples": samples, "cpu_seconds": times.user + times.system, "rejected": seen[1]}
        )
    )


if __name__ == "__main__":
    main()
