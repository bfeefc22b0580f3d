"""`python -m bench.range_query BASE_TREE [ROUNDS]`: a report query over the last full run's
state, in process, this tree against another, in alternating processes.

It reads what `python -m bench` left in bench/out/run: the state partition of the busiest
customer (copied, so the run's folder stays as it was), the rate centers, and the ranges
queried. Each process runs `run_query` of every report for the 13-month range and the day, 40
times each, and prints the median wall time of each; the medians of the rounds (default 3)
are compared. No HTTP, no JSON: what the worker's own code costs, apart from the API's.

    git worktree add /tmp/base <commit>
    python -m bench.range_query /tmp/base
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

RUN = Path(__file__).resolve().parent / "out" / "run"
REPEAT = 40
RANGES = ("day", "13 months")


def one_process(state: Path) -> dict[str, float]:
    """Median ms of each (range, report) query (run in the tree's own process: which
    streamagg it is comes from PYTHONPATH)."""
    from streamagg.reference.ratecenters import load_rate_centers
    from streamagg.reports import REPORTS
    from streamagg.reports.base import QueryContext
    from streamagg.reports.query import run_query
    from streamagg.settings import Settings
    from streamagg.tables.retention import partition_intact_from
    from streamagg.tables.store import PartitionStore

    data = json.loads((RUN / "results.json").read_text())["data"]
    store = PartitionStore(state)
    directory = load_rate_centers([RUN / "ratecenters.csv"]).directory
    retention = Settings.from_env({}).retention_days
    context = QueryContext(
        customer_id=data["customer"],
        resolve_rate_center=directory.resolve,
        intact_from=partition_intact_from(store.get, time.time(), retention),
    )
    found = {}
    for label in RANGES:
        start, end = (datetime.fromisoformat(at).timestamp() // 900 for at in data["ranges"][label])
        for name, report in REPORTS.items():
            run_query(report, int(start), int(end), store.scan, context)  # (warm-up)
            times = []
            for _ in range(REPEAT):
                began = time.perf_counter()
                run_query(report, int(start), int(end), store.scan, context)
                times.append(time.perf_counter() - began)
            found[f"{label} {name}"] = statistics.median(times) * 1e3
    store.close()
    return found


def _partition(results: dict[str, Any]) -> Path:
    """The state folder of the partition that holds the run's busiest customer."""
    from streamagg.batches import customer_partition
    from streamagg.settings import Settings

    folders = (RUN / "worker" / "data" / "state").glob("*/partition-*")
    partitions = Settings.from_env(results["worker_settings"]).partitions
    number = customer_partition(results["data"]["customer"], partitions)
    return next(folder for folder in folders if folder.name == f"partition-{number}")


def run(tree: Path | None, state: Path) -> dict[str, float]:
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = f"{tree}{os.pathsep}{env.get('PYTHONPATH', '')}"
    # (run by path: `bench` itself may be missing from the other tree)
    done = subprocess.run(
        [sys.executable, __file__, "--one", str(state)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    found: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def main(base: Path, rounds: int) -> None:
    results = json.loads((RUN / "results.json").read_text())
    customer = results["data"]["customer"]
    with tempfile.TemporaryDirectory() as scratch:
        state = Path(scratch) / "partition"
        shutil.copytree(_partition(results), state)
        (state / "LOCK").unlink(missing_ok=True)
        found: dict[str, list[dict[str, float]]] = {"base": [], "this": []}
        for round_ in range(rounds):
            for label, tree in (("base", base.resolve()), ("this", None)):
                found[label].append(run(tree, state))
                print(f"round {round_} {label} done", flush=True)
    print(f"customer {customer}: median ms of {rounds} rounds, base / this")
    for query in found["this"][0]:
        base_ms = statistics.median(round_[query] for round_ in found["base"])
        this_ms = statistics.median(round_[query] for round_ in found["this"])
        print(f"  {query:<24} {base_ms:8.2f} {this_ms:8.2f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        print(json.dumps(one_process(Path(sys.argv[2]))))
    else:
        main(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 3)
