"""`python -m bench.compare BASE_TREE`: worker throughput, this tree against another, one run.

A change is judged against its base on the same machine, the same broker and the same data,
alternating the two so that a shift of the shared machine's load hits both:

    git worktree add /tmp/base <commit>          # the tree to compare with
    python -m bench.compare /tmp/base            # prints a table; --cdrs, --rounds

Each round starts a fresh worker of each tree (own app id, own state) on the bench's data set
(bench/data.py) and measures it as `python -m bench` does (bench/worker_runs.py). With
``--freshness-rate R`` each round also starts a worker of each tree on an empty topic of its
own and measures freshness while a live stream of R CDR/s runs (bench/freshness.py): the same
rate for both trees, where `python -m bench` takes half of each run's own backlog rate. (The
backlog run of the tree in second place then follows the first tree's live stream, and ran
15–26 % slower whichever code it was: judge throughput from runs without --freshness-rate.)
"""

from __future__ import annotations

import argparse
import shutil
import statistics
from pathlib import Path

from bench import data as bench_data
from bench import freshness, worker_runs
from bench.env import REPO, Broker
from bench.rates import Throughput
from bench.report import percentile
from tests.support.worker import write_tokens


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=__doc__)
    parser.add_argument("base", type=Path, help="checkout of the tree to compare with")
    parser.add_argument("--cdrs", type=int, default=300_000, help="CDRs of the dense day")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each tree, alternating")
    parser.add_argument(
        "--this-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a worker setting for this tree only, e.g. STREAMAGG_INGEST_MODE=process",
    )
    parser.add_argument(
        "--base-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a worker setting for the base tree only",
    )
    parser.add_argument(
        "--freshness-rate",
        type=float,
        metavar="CDR_PER_S",
        help="also measure freshness under a live stream of this rate (a worker of each tree "
        "on an empty topic of its own)",
    )
    parser.add_argument(
        "--freshness-seconds", type=float, default=60.0, help="probing time of each freshness run"
    )
    return parser.parse_args(argv)


def start(
    ds: bench_data.Dataset, label: str, tree: Path | None, out: Path, settings: dict[str, str]
) -> worker_runs.WorkerProcess:
    """A worker of one tree (own app id, own state and folder, out/label) on the bench's data
    set."""
    folder = out / label
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    tokens = write_tokens(folder / "tokens.json", {worker_runs.TOKEN: ["*"]})
    extra = {
        "STREAMAGG_APP_ID": f"{ds.name}-{label}",
        "STREAMAGG_TOPIC": ds.topic,
        "STREAMAGG_DIDS_TOPIC": ds.dids_topic,
        "STREAMAGG_RATECENTERS": str(ds.ratecenters_csv),
        "STREAMAGG_PARTITIONS": "8",
        **settings,
    }
    if tree is not None:  # the worker imports streamagg from that tree first
        extra["PYTHONPATH"] = str(tree)
    return worker_runs.start_worker(ds.bootstrap, ds.name, folder, tokens, **extra)


def measure(
    ds: bench_data.Dataset, label: str, tree: Path | None, out: Path, settings: dict[str, str]
) -> tuple[Throughput, dict]:
    """One worker of one tree through the backlog."""
    worker = start(ds, label, tree, out, settings)
    try:
        return worker_runs.measure_throughput(worker, ds.total, 120 + ds.total / 1000)
    finally:
        worker_runs.stop_worker(worker)


def measure_freshness(
    ds: bench_data.Dataset,
    label: str,
    tree: Path | None,
    out: Path,
    settings: dict[str, str],
    live: tuple[float, float],
) -> list[float]:
    """Freshness of a worker of one tree under a live stream of (rate, seconds): a worker of
    its own on a topic of its own, empty at the start (a live stream written into the
    backlog's topic would be the next worker's backlog)."""
    topic = f"{ds.topic}-{label}-live"
    bench_data.create_topic(ds.bootstrap, topic)
    worker = start(ds, f"{label}-live", tree, out, {**settings, "STREAMAGG_TOPIC": topic})
    try:
        worker_runs.baseline(worker)  # (started: answers /metrics)
        rate, seconds = live
        # (the same generator, this tree's, with the same seed for both trees)
        found = freshness.measure(
            ds.bootstrap,
            topic,
            worker,
            worker_runs.TOKEN,
            ds.env(topic),
            rate,
            seconds,
            bench_data.SEED_LIVE,
            out / f"{label}-live" / "live.log",
        )
    finally:
        worker_runs.stop_worker(worker)
    latencies: list[float] = found["latencies"]  # type: ignore[assignment]
    return latencies


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    out = REPO / "bench" / "out" / "compare"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    broker = Broker(out / "kafka")
    broker.start()
    try:
        ds = bench_data.Dataset(
            broker.bootstrap,
            "bench",
            out,
            max(50_000, args.cdrs // 5),
            args.cdrs,
            bench_data.utc_today(),
        )
        bench_data.produce(ds, out / "generate.log")
        rates: dict[str, list[Throughput]] = {"base": [], "this": []}
        freshness_seen: dict[str, list[float]] = {"base": [], "this": []}
        for round_ in range(args.rounds):
            this_env = dict(item.split("=", 1) for item in args.this_env)
            base_env = dict(item.split("=", 1) for item in args.base_env)
            for label, tree, env in (
                ("base", args.base.resolve(), base_env),
                ("this", None, this_env),
            ):
                result, counts = measure(ds, f"{label}{round_}", tree, out, env)
                rates[label].append(result)
                print(
                    f"round {round_} {label}: {result.steady_rate:,.0f} CDR/s steady, "
                    f"{1e6 / result.per_cpu_second:.0f} us CPU/CDR; cores: state "
                    f"{counts['state_cores']:.2f}, ingest {counts['ingest_cores']:.2f}, "
                    f"machine {counts['cores_busy']:.2f}",
                    flush=True,
                )
                if args.freshness_rate is not None:
                    live = (args.freshness_rate, args.freshness_seconds)
                    seen = measure_freshness(ds, f"{label}{round_}", tree, out, env, live)
                    freshness_seen[label] += seen
                    print(
                        f"round {round_} {label}: freshness at {live[0]:,.0f} CDR/s p50 / p99 "
                        f"{percentile(seen, 0.5) * 1000:.0f} / {percentile(seen, 0.99) * 1000:.0f}"
                        " ms",
                        flush=True,
                    )
        print(f"\n{ds.total:,} CDRs per run; median of {args.rounds} runs")
        print("| tree | CDR/s steady | µs CPU per CDR |\n|---|---:|---:|")
        for label, results in rates.items():
            rate = statistics.median(r.steady_rate for r in results)
            cpu = statistics.median(1e6 / r.per_cpu_second for r in results)
            print(f"| {label} | {rate:,.0f} | {cpu:.0f} |")
        if args.freshness_rate is not None:
            print(f"\nfreshness at {args.freshness_rate:,.0f} CDR/s, every round's probes")
            print("| tree | p50 | p99 |\n|---|---:|---:|")
            for label, seen in freshness_seen.items():
                p50, p99 = (percentile(seen, q) * 1000 for q in (0.5, 0.99))
                print(f"| {label} | {p50:.0f} ms | {p99:.0f} ms |")
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
