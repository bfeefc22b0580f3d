"""`python -m bench.soak`: a worker's memory after 10 million CDRs and over a 30-minute soak.

One worker with default settings reads a backlog of --cdrs CDRs (the bench's mix: a sixth
spread over 13 months, the rest in one day) as fast as it can: its throughput, CPU per CDR
and resident size (all its processes) after the backlog. Then a live stream at half the rate
it reached runs for --minutes, RSS sampled every SAMPLE_S seconds: the soak is *flat* when
every sample after the first WARM_UP_S is within ±10 % of their median. The trend (least
squares, MiB per 10 minutes) says whether anything grows without bound.

    python -m bench.soak                          # 10,000,000 CDRs, 30 minutes (~45 minutes)
    python -m bench.soak --cdrs 500000 --minutes 3    # a quick look
    python -m bench.soak --write                  # also replace its section of BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench import data as bench_data
from bench import worker_runs
from bench.env import REPO, Broker, machine
from bench.rates import Throughput
from tests.support.worker import write_tokens

SAMPLE_S = 10.0
WARM_UP_S = 300.0
BAND = 0.10
MIB = 1024 * 1024
BEGIN = "<!-- soak: written by python -m bench.soak --write -->"
END = "<!-- /soak -->"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--cdrs", type=int, default=10_000_000, help="CDRs of the backlog")
    parser.add_argument("--minutes", type=float, default=30.0, help="length of the soak")
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    return parser.parse_args(argv)


def total_rss(worker: worker_runs.WorkerProcess) -> int:
    sizes = worker_runs.rss(worker)
    return sizes["main"] + sizes["children"]


def trend_mib_per_10_min(samples: list[tuple[float, int]]) -> float:
    """Least-squares slope of RSS over time."""
    if len(samples) < 2:
        return 0.0
    slope = statistics.linear_regression([t for t, _ in samples], [r for _, r in samples]).slope
    return slope * 600 / MIB


def soak(
    ds: bench_data.Dataset, worker: worker_runs.WorkerProcess, rate: float, seconds: float
) -> dict:
    """Run a live stream at ``rate`` for ``seconds``; RSS and progress every SAMPLE_S."""
    log = ds.out / "live.log"
    live = bench_data.live_stream(ds.env(), rate, seconds, bench_data.SEED_LIVE, log)
    began = time.monotonic()
    samples: list[tuple[float, int]] = []
    lags: list[float] = []
    try:
        while live.poll() is None:
            time.sleep(SAMPLE_S)
            if worker.process is None or worker.process.poll() is not None:
                raise RuntimeError(f"the worker exited during the soak:\n{worker.tail()}")
            samples.append((time.monotonic() - began, total_rss(worker)))
            try:  # (a slow answer costs one lag sample, not the run)
                text = worker_runs.metrics_text(worker)
            except httpx.HTTPError:
                continue
            lags.append(sum(worker_runs.lag_by_topic(text).values()))
    finally:
        if live.poll() is None:
            live.terminate()
            live.wait(timeout=30)
    if live.returncode != 0 or not samples or not lags:
        raise RuntimeError(
            f"the live stream ended after {time.monotonic() - began:.0f} s with exit code "
            f"{live.returncode} ({len(samples)} samples); see {log}"
        )
    sent = re.findall(r"sent ([0-9,]+) messages", log.read_text(errors="replace"))
    return {
        "samples": samples,
        "lags": lags,
        "sent": int(sent[-1].replace(",", "")) if sent else 0,
    }


def verdict(samples: list[tuple[float, int]]) -> dict:
    settled = [(t, r) for t, r in samples if t >= WARM_UP_S] or samples
    sizes = [r for _, r in settled]
    median = statistics.median(sizes)
    worst = max(abs(r - median) / median for r in sizes)
    return {
        "first": samples[0][1],
        "min": min(sizes),
        "max": max(sizes),
        "median": median,
        "worst_deviation": worst,
        "flat": worst <= BAND,
        "trend": trend_mib_per_10_min(settled),
    }


def markdown(r: dict) -> str:
    t: Throughput = r["throughput"]
    v = r["verdict"]
    mib = lambda n: f"{n / MIB:,.0f} MiB"  # noqa: E731
    minutes = r["minutes"]
    main, children = r["rss_backlog"]["main"], r["rss_backlog"]["children"]
    settled = (
        f"after its first {WARM_UP_S / 60:.0f} minutes"
        if minutes * 60 > WARM_UP_S
        else "every sample: shorter than the warm-up"
    )
    lines = [
        BEGIN,
        f"## Memory: {t.total:,} CDRs, then a {minutes:.0f}-minute soak",
        "",
        f"`python -m bench.soak` on {r['date']} (bench/soak.py, {r['wall_minutes']:.0f} minutes;"
        f" {r['machine']['cpus']} CPUs, load at the start "
        f"{r['machine']['load average at the start (1/5/15 min)']}): one worker, "
        "default settings (8 partitions, as in `python -m bench`).",
        "",
        "| figure | value |",
        "|---|---|",
        f"| backlog | {t.total:,} CDRs ({r['history']:,} over 13 months, {r['dense']:,} in one "
        f"day), produced in {r['produce_s']:.0f} s |",
        f"| throughput on the backlog | {t.steady_rate:,.0f} CDR/s steady "
        f"({t.overall_rate:,.0f} overall, {t.seconds:.0f} s) |",
        f"| CPU per CDR (all the worker's processes) | {1e6 / t.per_cpu_second:.0f} µs |",
        f"| RSS after {t.total:,} CDRs | {mib(main + children)} (main {mib(main)} + children "
        f"{mib(children)}) |",
        f"| soak | {minutes:.0f} minutes of a live stream at {r['rate']:,.0f} CDR/s (half the "
        f"backlog rate): {r['soak']['sent']:,} CDRs sent, input lag at the end "
        f"{r['soak']['lags'][-1]:,.0f} messages (max {max(r['soak']['lags']):,.0f}) |",
        f"| RSS over the soak ({settled}) | median "
        f"{mib(v['median'])}, min {mib(v['min'])}, max {mib(v['max'])}; first sample "
        f"{mib(v['first'])} |",
        f"| flat (every sample within ±{BAND:.0%} of the median) | "
        f"{'**yes**' if v['flat'] else '**no**'} (worst {v['worst_deviation']:.1%}) |",
        f"| trend (least squares) | {v['trend']:+.1f} MiB per 10 minutes |",
        "",
        "RSS samples (minute: MiB, all processes): "
        + ", ".join(
            f"{t_ / 60:.0f}: {rss / MIB:,.0f}"
            for t_, rss in r["soak"]["samples"][:: max(1, len(r["soak"]["samples"]) // 15)]
        )
        + ".",
        END,
    ]
    return "\n".join(lines)


def write_section(text: str, path: Path = REPO / "BENCHMARKS.md") -> None:
    """Replace the soak's section (or append it after the kept-sections marker's sections)."""
    current = path.read_text()
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        path.write_text(head + text + tail)
    else:
        path.write_text(current.rstrip("\n") + "\n\n" + text + "\n")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    began = time.monotonic()
    out = REPO / "bench" / "out" / "soak"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    r: dict = {"machine": machine(), "minutes": args.minutes}
    broker = Broker(out / "kafka")
    broker.start()
    try:
        history = args.cdrs // 6
        ds = bench_data.Dataset(
            broker.bootstrap, "soak", out, history, args.cdrs - history, bench_data.utc_today()
        )
        print(f"producing {ds.total:,} CDRs", flush=True)
        r.update(bench_data.produce(ds, out / "generate.log"), history=history, dense=ds.dense)
        tokens = write_tokens(out / "tokens.json", {worker_runs.TOKEN: ["*"]})
        worker = worker_runs.start_worker(
            ds.bootstrap,
            ds.name,
            out,
            tokens,
            STREAMAGG_DIDS_TOPIC=ds.dids_topic,
            STREAMAGG_RATECENTERS=str(ds.ratecenters_csv),
            STREAMAGG_PARTITIONS="8",  # the default (the test helper's is 4)
        )
        try:
            print("reading the backlog", flush=True)
            r["throughput"], _ = worker_runs.measure_throughput(
                worker, ds.total, 600 + ds.total / 2000
            )
            r["rss_backlog"] = worker_runs.rss(worker)
            r["rate"] = r["throughput"].steady_rate / 2
            print(f"soaking at {r['rate']:,.0f} CDR/s for {args.minutes:.0f} minutes", flush=True)
            r["soak"] = soak(ds, worker, r["rate"], args.minutes * 60)
        finally:
            worker_runs.stop_worker(worker)
    finally:
        broker.stop()
    r["verdict"] = verdict(r["soak"]["samples"])
    r["date"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    r["wall_minutes"] = (time.monotonic() - began) / 60
    text = markdown(r)
    (out / "soak.md").write_text(text + "\n")
    print(text)
    if args.write:
        write_section(text)


if __name__ == "__main__":
    main()
