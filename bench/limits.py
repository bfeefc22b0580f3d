"""What limits each figure, written from the run's own measurements."""

from __future__ import annotations

import math
import os
from typing import Any

from bench.profiling import PROFILE_SECONDS
from bench.report import TARGETS, flat, freshness_p99, percentile, small_answers


def explain(r: dict[str, Any]) -> list[str]:
    cores = os.cpu_count() or 1
    worker, ceiling, quix = r["worker"], r["ceiling"], r.get("quix")
    busy = worker.cpu_seconds / worker.seconds if worker.seconds else 0.0
    machine_busy = r["worker_counts"]["cores_busy"]
    processes = r["rss_throughput"]["processes"]
    lines = [
        f"- **Worker throughput** ({worker.steady_rate:,.0f} CDR/s steady, backlog): the worker "
        f"used {busy:.2f} cores ({1e6 / worker.per_cpu_second:.0f} µs of CPU per CDR, "
        f"{processes} process{'es' if processes > 1 else ''}), the whole machine "
        f"{machine_busy:.2f} of {cores} (with the broker, which also takes the internal batch "
        f"and changelog writes). The raw ceiling costs {1e6 / ceiling.per_cpu_second:.1f} µs "
        f"per message (fetch + orjson only); the rest of streamagg's per-CDR CPU — validating "
        f"and normalising every field, dedup, the DID lookup, re-encoding the internal batches, "
        f"folding into five reports, the state and changelog writes — is what bounds it, with "
        f"every poll of the ingest stage and every cycle of the state layer committed as Kafka "
        f"transactions (each waits ~20 ms for the markers of the previous one of its "
        f"partition)"
        + (
            ": with the ingest stage inline, one Python process does all of it "
            "(`STREAMAGG_INGEST_MODE=process`, the default on two or more CPUs, moves the "
            "ingest stage to a second process)."
            if processes == 1
            else "."
        ),
    ]
    if worker.steady_rate < TARGETS["worker"]:
        lines.append(
            f"  It misses the {TARGETS['worker']:,} CDR/s target: at {busy:.2f} cores busy the "
            f"per-CDR CPU cost would have to fall to about "
            f"{1e6 * min(busy, cores) / TARGETS['worker']:.0f} µs."
        )
    lines += _broker_share(r, cores)
    if worker.steady_rate < TARGETS["of_ceiling"] * ceiling.steady_rate:
        lines.append(
            f"  The ceiling ({ceiling.steady_rate:,.0f}/s) only parses JSON; "
            f"streamagg reaches {worker.steady_rate / ceiling.steady_rate * 100:.0f} % of it."
        )
    if quix:
        lines.append(
            f"- **Quix Streams** ({quix.steady_rate:,.0f} CDR/s, "
            f"{1e6 / quix.per_cpu_second:.0f} µs CPU per CDR on one core) does the same "
            f"decoding and one RocksDB state read + write per report and CDR, with a changelog "
            f"message per write; it is single-threaded per process and bound by its per-message "
            f"path (deserialise, state transaction, changelog produce)."
        )
    p99 = percentile(flat(r["api"]["13 months"]), 0.99) * 1e3
    small_p99 = percentile(small_answers(r, "13 months"), 0.99) * 1e3
    sql13 = percentile(flat(r["duckdb"]["13 months"]), 0.5) * 1e3
    per_report = {
        report: percentile(timings, 0.99) * 1e3 for report, timings in r["api"]["13 months"].items()
    }
    worst = max(per_report, key=per_report.get)
    rows = r["api_rows"]["13 months"][worst]
    text = (
        f"- **Queries**: a range is covered by the fewest hour/day/month buckets, so 13 months "
        f"read about as many table keys as a day; p99 at 13 months {small_p99:.1f} ms over the "
        f"answers of at most 1,000 rows ({p99:.1f} ms over every answer), against DuckDB's "
        f"{sql13:.1f} ms median for GROUP BYs that scan the customer's raw CDRs (which grows "
        f"with the data; this data set holds {r['data']['total']:,} CDRs)."
    )
    if small_p99 > TARGETS["query_p99_13m_ms"]:
        text += " The answers of at most 1,000 rows miss the 20 ms target."
    if rows > 1000:
        text += (
            f" The slowest report, `{worst}`, answers 13 months with {rows:,} rows (p99 "
            f"{per_report[worst]:.0f} ms; a JSON page holds at most 10,000 rows): its cost is "
            "the size of the answer (every row is read, formatted and serialised)."
        )
    lines.append(text)
    f = r["freshness"]
    fresh = freshness_p99(f)
    shown = "> 30 s" if math.isinf(fresh) else f"{fresh * 1e3:.0f} ms"
    text = (
        f"- **Freshness** p99 {shown} at {f['achieved_rate']:,.0f} CDR/s (half the worker's "
        f"backlog rate). A CDR passes the ingest stage's poll and transaction, the internal "
        f"batch topic and a state transaction before a query sees it (the probe polls the API "
        f"every 10 ms)."
    )
    if f.get("batches_applied"):
        per_batch = f["cdrs_applied"] / f["batches_applied"]
        backlog = sum(f["lag_by_topic"].values())
        behind = bool(f["lost"]) or backlog > 1000
        text += (
            f" While the live stream ran the worker applied {f['cdrs_applied']:,.0f} CDRs "
            f"(the generator sent {f.get('sent', 0):,.0f}) in {f['batches_applied']:,.0f} "
            f"internal batches of {per_batch:,.0f} CDRs on average; lag at the end: "
            + ", ".join(f"`{topic}` {value:,.0f}" for topic, value in f["lag_by_topic"].items())
            + " messages."
        )
        if fresh > TARGETS["freshness_p99_s"] and not behind:
            text += (
                " The worker keeps up on average but runs close to saturation: it is CPU-bound "
                "at about twice this rate with the machine to itself, and "
                "here the paced generator and the broker take their share of the two cores, so "
                "batches queue at times and single probes wait seconds (the slowest: "
                + ", ".join(f"{t:.1f}" for t in sorted(f["latencies"])[-5:])
                + " s). Less CPU per CDR moves this figure, and so would shorter cycles: each "
                "poll and each state cycle waits for its Kafka transaction; the ingest stage's "
                "linger (it waits up to STREAMAGG_INGEST_LINGER_MS, 50 ms by default, for "
                "bigger batches) sets the floor seen at low load."
            )
        if fresh > TARGETS["freshness_p99_s"] and behind:
            text += (
                " The ingest stage keeps up and the state layer does not: it pays a roughly "
                "fixed cost per cycle (a Kafka transaction per partition, awaited before the "
                "next), and under live load cycles are small. It applies fewer CDR/s than "
                "arrive, the batch topic queues, and freshness grows without bound."
            )
    low = r.get("freshness_low")
    if low and low["latencies"]:
        slow = [t for t in low["latencies"] if t > TARGETS["freshness_p99_s"]]
        fast = [t for t in low["latencies"] if t <= TARGETS["freshness_p99_s"]]
        text += (
            f" At low load ({low['achieved_rate']:,.0f} CDR/s) the median is "
            f"{percentile(low['latencies'], 0.5) * 1e3:.0f} ms"
        )
        if slow:
            text += (
                f"; {len(slow)} of {len(low['latencies'])} probes took over 1 s ("
                + ", ".join(f"{t:.1f} s" for t in slow[:6])
                + ") — the first ones, while the worker was still working off what had queued "
                "before (the query phase, or a restart)"
            )
        if fast:
            text += f"; {'the others' if slow else 'all'} at most {max(fast) * 1e3:.0f} ms"
        text += "."
    lines.append(text)
    rec = r["recovery"]
    text = f"- **Recovery** {rec['ready_s']:.1f} s after SIGKILL"
    if "group_join_s" in rec:
        text += (
            f": {rec['group_join_s']:.1f} s of it the restarted worker waits to rejoin its "
            "consumer group — the broker keeps the killed member until its session times out "
            "(the worker's consumer session timeout) — and the rest is start-up, fencing the "
            "killed worker's transactions and reading the changelog tail (the local RocksDB "
            "copy is kept, so only what it misses is read)."
        )
    lines.append(text)
    restarts = sum("worker restarted" in text for text in r.get("unavailable", []))
    if restarts:
        lines.append(
            "- **Observed, not a figure**: on its first start on fresh topics the worker "
            "answered every report query with 503 `the owner of this customer's data is moving` "
            "for 30 s and more while /readyz said 200 and no rebalance was logged (one worker, "
            "it owns every partition); a restart on the same data folder cleared it. The bench "
            f"restarted it {restarts}× to measure the queries (see bench/out/run/worker.log)."
        )
    if r.get("profile"):
        lines += ["", f"py-spy, {PROFILE_SECONDS} s during the worker's throughput run:", ""]
        lines += r["profile"]
    return lines


def _broker_share(r: dict[str, Any], cores: int) -> list[str]:
    """What the broker beside the worker costs per CDR, and what it leaves of the machine at
    the target rate (the run measured the broker's CPU: bench/worker_runs.py)."""
    counts = r["worker_counts"]
    if "broker_us_per_cdr" not in counts:
        return []
    target = TARGETS["worker"]
    per_cdr = counts["broker_us_per_cdr"]
    at_target = per_cdr * target / 1e6
    text = (
        f"  The broker shares the machine: during the run it used {counts['broker_cores']:.2f} "
        f"cores, {per_cdr:.0f} µs of CPU per CDR (the source topic's fetches, the internal "
        f"batches and the changelog, written in Kafka transactions)"
    )
    ceiling = r.get("ceiling_broker_us_per_cdr")
    if ceiling is not None:
        text += f", against {ceiling:.1f} µs per message to serve the raw ceiling's fetches"
    text += f". At {target:,} CDR/s that cost alone would take {at_target:.1f} of the {cores} cores"
    if at_target >= cores:
        text += (
            ": more than the machine has, so with the broker on the same machine the target "
            "cannot be met whatever the worker costs."
        )
    else:
        budget = (cores - at_target) / target * 1e6
        text += f", leaving the worker {budget:.0f} µs of CPU per CDR."
    return [text]
