"""`python -m bench`: streamagg's throughput, query, freshness, memory and recovery figures.

One run, one private broker, one data set: see bench/data.py for the data and BENCHMARKS.md
for the figures this writes.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bench import backfill, freshness, profiling, report, warehouse, worker_runs
from bench import data as bench_data
from bench.env import REPO, Broker, cpu_seconds, machine
from bench.limits import explain
from bench.rates import Throughput, throughput
from tests.support.common import iso
from tests.support.worker import write_tokens

NAME = "bench"
LOW_RATE = 1000.0  # CDR/s of the low-load freshness run (a diagnostic beside the half-load one)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--cdrs",
        type=int,
        default=1_000_000,
        help="CDRs of the dense day (throughput); default 1,000,000",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="200,000 CDRs and shorter query/freshness runs (< 10 minutes)",
    )
    parser.add_argument("--skip-quix", action="store_true", help="do not run Quix Streams")
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO / "BENCHMARKS.md",
        help="where to write the results (default BENCHMARKS.md)",
    )
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra worker setting, e.g. STREAMAGG_INGEST_MODE=process; repeatable",
    )
    parser.add_argument(
        "--render",
        type=Path,
        default=None,
        metavar="RESULTS_JSON",
        help="only rewrite --out from an earlier run's bench/out/run/results.json",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the worker's processes for 10 s during the throughput run",
    )
    args = parser.parse_args(argv)
    if args.quick and args.cdrs == 1_000_000:
        args.cdrs = 200_000
    return args


def child_run(command: list[str], total: int, log: Path, timeout: float) -> Throughput:
    with log.open("wb") as err:
        done = subprocess.run(
            command, stdout=subprocess.PIPE, stderr=err, timeout=timeout, check=False, cwd=REPO
        )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:3])} failed ({done.returncode}), see {log}")
    result = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return throughput([tuple(s) for s in result["samples"]], total, result["cpu_seconds"])


def ranges_for(day: datetime) -> dict[str, tuple[datetime, datetime]]:
    month = day.replace(day=1)
    next_month = (month + timedelta(days=32)).replace(day=1)
    start_13 = month
    for _ in range(12):
        start_13 = (start_13 - timedelta(days=1)).replace(day=1)
    return {
        "day": (day, day + timedelta(days=1)),
        "month": (month, next_month),
        "13 months": (start_13, next_month),
    }


LOCAL_ZONES = ("America/New_York", "Asia/Kathmandu")  # DST; UTC+05:45 (quarter-hour edges)


def local_13_months(day: datetime, zone: str) -> tuple[str, str, str]:
    """The 13 local months of the zone ending with the dense day's month: (from, to, tz)."""
    info = ZoneInfo(zone)
    month = day.replace(day=1, tzinfo=info)
    next_month = (month + timedelta(days=32)).replace(day=1)
    start = month.replace(year=month.year - 1)
    return start.isoformat(), next_month.isoformat(), zone


def generator_rate(log: Path) -> float:
    found = re.findall(r"\(([0-9,]+) msgs/s\)", log.read_text(errors="replace"))
    return float(found[-1].replace(",", "")) if found else 0.0


def run(args: argparse.Namespace) -> dict:
    began = time.monotonic()
    out = REPO / "bench" / "out" / "run"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    quick = args.quick
    history = max(50_000, args.cdrs // 5)
    r: dict = {"machine": machine(), "api_repeat": 200, "duckdb_repeat": 20 if quick else 50}
    broker = Broker(out / "kafka")
    worker = None
    try:
        log(f"starting a private broker in {broker.kafka_dir}")
        broker.start()
        ds = bench_data.Dataset(
            broker.bootstrap, NAME, out, history, args.cdrs, bench_data.utc_today()
        )
        log(f"producing {ds.total:,} CDRs to {ds.topic}")
        timings = bench_data.produce(ds, out / "generate.log")
        total = bench_data.topic_size(ds.bootstrap, ds.topic)
        budget = 120 + total / 1000
        backfill_total = backfill.BACKFILL_CDRS // (4 if quick else 1)
        log(f"producing {backfill_total:,} CDRs of 13 months in random order to {backfill.TOPIC}")
        backfill.produce(ds.bootstrap, ds.today, backfill_total)
        r["backfill"] = {"total": backfill_total, "seed": backfill.SEED_BACKFILL}
        log("(1) raw ceiling")
        broker_pid = broker.pid
        broker_before = cpu_seconds([broker_pid]) if broker_pid is not None else 0.0
        r["ceiling"] = child_run(
            [sys.executable, "-m", "bench.ceiling", ds.bootstrap, ds.topic, str(total)],
            total,
            out / "ceiling.log",
            budget,
        )
        if broker_pid is not None:
            # (what serving the fetches alone costs the broker, per message)
            broker_cpu = cpu_seconds([broker_pid]) - broker_before
            r["ceiling_broker_us_per_cdr"] = broker_cpu / total * 1e6
        log(f"    {r['ceiling'].steady_rate:,.0f} CDR/s")
        r["backfill"]["ceiling"] = child_run(
            [
                sys.executable,
                "-m",
                "bench.ceiling",
                ds.bootstrap,
                backfill.TOPIC,
                str(backfill_total),
            ],
            backfill_total,
            out / "ceiling-backfill.log",
            budget,
        )
        log(f"    backfill: {r['backfill']['ceiling'].steady_rate:,.0f} CDR/s")
        if not args.skip_quix:
            log("(3) Quix Streams")
            r["quix"] = child_run(
                [
                    sys.executable,
                    "-m",
                    "bench.quix_app",
                    ds.bootstrap,
                    ds.topic,
                    str(total),
                    str(ds.dids_csv),
                    str(out / "quix-state"),
                ],
                total,
                out / "quix.log",
                budget * 5,
            )
            log(f"    {r['quix'].steady_rate:,.0f} CDR/s")
            r["backfill"]["quix"] = child_run(
                [
                    sys.executable,
                    "-m",
                    "bench.quix_app",
                    ds.bootstrap,
                    backfill.TOPIC,
                    str(backfill_total),
                    str(ds.dids_csv),
                    str(out / "quix-state-backfill"),
                ],
                backfill_total,
                out / "quix-backfill.log",
                budget * 5,
            )
            log(f"    backfill: {r['backfill']['quix'].steady_rate:,.0f} CDR/s")
        log("(2) streamagg worker")
        worker_settings = {
            "STREAMAGG_RATECENTERS": str(ds.ratecenters_csv),
            "STREAMAGG_PARTITIONS": "8",
            **dict(item.split("=", 1) for item in args.worker_env),
        }
        r["worker_settings"] = {
            k: v for k, v in worker_settings.items() if k != "STREAMAGG_RATECENTERS"
        }
        tokens = write_tokens(out / "tokens.json", {worker_runs.TOKEN: ["*"]})
        worker = worker_runs.start_worker(
            ds.bootstrap,
            NAME,
            out,
            tokens,
            **worker_settings,
        )
        since = worker_runs.baseline(worker, broker_pid=broker_pid)
        loop_lag_before = worker_runs.latency_histogram(worker, worker_runs.LOOP_LAG)
        if args.profile:
            worker_runs.wait_first(worker)
            profiles = profiling.start(
                worker_runs.process_tree(worker.process.pid), out, args.out.parent / "flamegraphs"
            )
        r["worker"], r["worker_counts"] = worker_runs.measure_throughput(
            worker, total, budget, since
        )
        loop_lag = worker_runs.latency_histogram(worker, worker_runs.LOOP_LAG)
        r["loop_lag"] = {
            "p50": worker_runs.histogram_quantile(loop_lag_before, loop_lag, 0.5),
            "p99": worker_runs.histogram_quantile(loop_lag_before, loop_lag, 0.99),
        }
        log(f"    {r['worker'].steady_rate:,.0f} CDR/s  {r['worker_counts']}")
        if args.profile:
            r["profile"] = profiling.summarise(profiles)
        r["rss_throughput"] = {**worker_runs.rss(worker), "cdrs": total}
        log("(4) query latency: loading DuckDB")
        db, load_info = warehouse.load(
            ds.bootstrap, ds.topic, total, ds.dids_csv, ds.ratecenters_csv, out
        )
        customer, calls = warehouse.busiest_customer(db)
        ranges = ranges_for(ds.day)
        naive = {
            k: (a.replace(tzinfo=None), b.replace(tzinfo=None)) for k, (a, b) in ranges.items()
        }
        worker.wait_ready()
        local = {f"13 months, {zone}": local_13_months(ds.day, zone) for zone in LOCAL_ZONES}
        r["api"] = worker_runs.query_latency(
            worker,
            customer,
            {k: (iso(a), iso(b)) for k, (a, b) in ranges.items()} | local,
            list(warehouse.QUERIES),
            r["api_repeat"],
            r.setdefault("unavailable", []),
            r.setdefault("api_rows", {}),
        )
        r["duckdb"] = warehouse.query_latency(db, customer, naive, r["duckdb_repeat"])
        with ds.dids_csv.open() as source:
            dids = sum(1 for _ in csv.reader(source)) - 1
        r["data"] = {
            "topic": ds.topic,
            "partitions": bench_data.CDR_PARTITIONS,
            "total": total,
            "history": ds.history,
            "dense": ds.dense,
            "day": ds.day.strftime("%Y-%m-%d"),
            "seed_history": bench_data.SEED_HISTORY,
            "seed_dense": bench_data.SEED_DENSE,
            "produce_s": timings["produce_s"],
            "dids": dids,
            "customer": customer,
            "customer_calls": calls,
            "warehouse": load_info,
            "ranges": {k: (iso(a), iso(b)) for k, (a, b) in ranges.items()},
            "range_calls": {k: warehouse.calls_in(db, customer, *v) for k, v in naive.items()},
        }
        db.close()
        seconds = 30.0 if quick else 60.0
        loads = {"low": LOW_RATE, "half": max(LOW_RATE, r["worker"].steady_rate / 2)}
        for index, (label, rate) in enumerate(loads.items()):
            log(f"(5) freshness at {rate:,.0f} CDR/s for {seconds / (2 - index):.0f} s")
            before = worker_runs.latency_histogram(worker)
            window_began, applied_before = (
                time.monotonic(),
                worker_runs.applied(worker_runs.metrics_text(worker)),
            )
            live_log = out / f"live-{label}.log"
            fresh = freshness.measure(
                ds.bootstrap,
                ds.topic,
                worker,
                worker_runs.TOKEN,
                ds.env(),
                rate,
                seconds / (2 - index),
                bench_data.SEED_LIVE + index,
                live_log,
            )
            after = worker_runs.latency_histogram(worker)
            text = worker_runs.metrics_text(worker)
            cdrs, batches = (
                a - b for a, b in zip(worker_runs.applied(text), applied_before, strict=True)
            )
            fresh.update(
                window_s=time.monotonic() - window_began,
                cdrs_applied=cdrs,
                batches_applied=batches,
                lag_by_topic=worker_runs.lag_by_topic(text),
            )
            fresh["achieved_rate"] = generator_rate(live_log) or rate
            sent = re.findall(r"sent ([0-9,]+) messages", live_log.read_text(errors="replace"))
            fresh["sent"] = float(sent[-1].replace(",", "")) if sent else 0.0
            fresh["histogram"] = {
                f"p{int(q * 100)}": worker_runs.histogram_quantile(before, after, q)
                for q in (0.5, 0.99)
            }
            r["freshness" if label == "half" else "freshness_low"] = fresh
        live = sum(r[k].get("cdrs_applied", 0) for k in ("freshness", "freshness_low"))
        r["rss_end"] = {**worker_runs.rss(worker), "cdrs": total + live}
        log("(7) recovery after SIGKILL")
        r["recovery"] = worker_runs.recovery(worker)
        worker_runs.stop_worker(worker)
        log("(8) backfill: a fresh worker on 13 months of history in random order")
        worker = worker_runs.start_worker(
            ds.bootstrap,
            backfill.NAME,
            out / "backfill",
            tokens,
            STREAMAGG_DIDS_TOPIC=ds.dids_topic,
            **worker_settings,
        )
        r["backfill"]["worker"], _ = worker_runs.measure_throughput(
            worker, backfill_total, 120 + backfill_total / 500
        )
        log(f"    {r['backfill']['worker'].steady_rate:,.0f} CDR/s")
    finally:
        if worker is not None:
            worker_runs.stop_worker(worker)
        broker.stop()
    r["elapsed_s"] = time.monotonic() - began
    return r


def log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)


def load_results(path: Path) -> dict:
    """A results.json of an earlier run, for --render."""
    r = json.loads(path.read_text())
    # (a run before the stamp was kept: its results were written when it ended)
    written = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    r.setdefault("generated", f"{written:%Y-%m-%d %H:%M} UTC")
    for key in ("ceiling", "worker", "quix"):
        if r.get(key):
            r[key] = Throughput(**r[key])
    for key in ("ceiling", "worker", "quix"):
        if r.get("backfill", {}).get(key):
            r["backfill"][key] = Throughput(**r["backfill"][key])
    return r


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    r = load_results(args.render) if args.render else run(args)
    command = (
        "python -m bench"
        + (" --quick" if args.quick else "")
        + (f" --cdrs {args.cdrs}" if args.cdrs not in (200_000, 1_000_000) else "")
        + (" --skip-quix" if args.skip_quix else "")
        + (" --profile" if args.profile else "")
        + "".join(f" --worker-env {item}" for item in args.worker_env)
    )
    command = r.setdefault("command", command)
    r.setdefault("generated", f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC")  # (kept by --render)
    print(report.console(r))
    kept = ""
    if args.out.exists():  # sections written by hand (other benches) below the marker stay
        previous = args.out.read_text()
        if report.KEEP_MARKER in previous:
            kept = previous[previous.index(report.KEEP_MARKER) :]
    args.out.write_text(report.markdown(r, explain(r), command) + ("\n" + kept if kept else ""))
    summary = REPO / "bench" / "out" / "run" / "results.json"
    if not args.render:
        summary.write_text(json.dumps(r, default=lambda o: o.__dict__, indent=1))
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
