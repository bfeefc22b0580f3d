"""The bench's results: a console table and BENCHMARKS.md."""

from __future__ import annotations

import math
from typing import Any

TARGETS = {  # issue 15
    "worker": 100_000,  # CDR/s per worker, live-order data
    "backfill": 50_000,  # CDR/s per worker, 13 months of history in random order
    "of_ceiling": 0.35,
    "backfill_of_ceiling": 0.20,
    "vs_quix": 3.0,
    "query_p99_13m_ms": 20.0,  # answers up to 1,000 rows
    "freshness_p50_s": 0.25,
    "freshness_p99_s": 1.0,
}


# BENCHMARKS.md below this line is kept when `python -m bench` rewrites the file (the figures
# of bench.compare, bench.big_answer and other one-off measurements, each with its command).
KEEP_MARKER = "<!-- sections below: kept by python -m bench -->"


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def flat(per_report: dict[str, list[float]]) -> list[float]:
    return [t for timings in per_report.values() for t in timings]


def met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def figures(r: dict[str, Any]) -> list[tuple[str, str]]:
    """(figure, value) rows shared by the console table and the markdown."""
    rows = []
    for key, label in (
        ("ceiling", "(1) raw ceiling: aiokafka getmany + orjson.loads"),
        ("worker", "(2) streamagg worker, all five reports"),
        ("quix", "(3) Quix Streams, the four aggregations of SPEC §2 (not routes)"),
    ):
        t = r.get(key)
        if t is None:
            rows.append((label, "skipped"))
            continue
        rows.append((label, throughput_text(t)))
    b = r.get("backfill", {})
    for key, label in (
        ("ceiling", "(8) backfill, raw ceiling"),
        ("worker", "(8) backfill, streamagg worker"),
        ("quix", "(8) backfill, Quix Streams"),
    ):
        if b.get(key) is not None:
            rows.append((label, throughput_text(b[key])))
    for label in ("day", "month", "13 months"):
        api = flat(r["api"][label])
        sql = flat(r["duckdb"][label])
        rows.append(
            (
                f"(4) query {label}: API p50 / p99, DuckDB p50 / p99",
                f"{percentile(api, 0.5) * 1e3:.1f} / {percentile(api, 0.99) * 1e3:.1f} ms; DuckDB "
                f"{percentile(sql, 0.5) * 1e3:.1f} / {percentile(sql, 0.99) * 1e3:.1f} ms",
            )
        )
    for label in local_labels(r):
        api = flat(r["api"][label])
        rows.append(
            (
                f"(4) query {label} (tz): API p50 / p99",
                f"{percentile(api, 0.5) * 1e3:.1f} / {percentile(api, 0.99) * 1e3:.1f} ms",
            )
        )
    f = r["freshness"]
    rows.append(
        (f"(5) freshness at {f['achieved_rate']:,.0f} CDR/s: probe p50 / p99", freshness_text(f))
    )
    low = r.get("freshness_low")
    if low:
        rows.append(
            (
                f"(5c) freshness at low load, {low['achieved_rate']:,.0f} CDR/s: probe p50 / p99",
                freshness_text(low),
            )
        )
    hist = r["freshness"]["histogram"]
    rows.append(
        (
            "(5b) worker histogram processing_latency p50 / p99",
            f"{hist['p50'] * 1e3:.0f} / {hist['p99'] * 1e3:.0f} ms",
        )
    )
    lag = r.get("loop_lag")
    if lag:
        rows.append(
            (
                "(5d) worker event loop lag from its first /metrics answer to the end of the "
                "throughput run: p50 / p99 (histogram)",
                f"{lag['p50'] * 1e3:.0f} / {lag['p99'] * 1e3:.0f} ms",
            )
        )
    for key, label in (
        ("rss_throughput", "after the throughput run"),
        ("rss_end", "at the end (after queries and the live stream)"),
    ):
        m = r[key]
        rows.append(
            (
                f"(6) worker RSS {label}",
                f"{(m['main'] + m['children']) / 2**20:.0f} MiB "
                + (
                    f"(main {m['main'] / 2**20:.0f} + children {m['children'] / 2**20:.0f}) "
                    if m["processes"] > 1
                    else "(one process) "
                )
                + f"after {m['cdrs']:,.0f} CDRs",
            )
        )
    rows.append(("(7) recovery: SIGKILL → restart → /readyz 200", recovery_text(r["recovery"])))
    return rows


def throughput_text(t: Any) -> str:
    cpu = f", {1e6 / t.per_cpu_second:.0f} µs CPU/CDR" if t.cpu_seconds else ""
    return (
        f"{t.steady_rate:,.0f} CDR/s steady ({t.overall_rate:,.0f} CDR/s "
        f"overall, {t.total:,} in {t.seconds:.1f} s{cpu})"
    )


def recovery_text(rec: dict[str, float]) -> str:
    text = f"{rec['ready_s']:.1f} s"
    if "group_join_s" in rec:
        text += f" (of which {rec['group_join_s']:.1f} s waiting to rejoin the consumer group)"
    return text


def freshness_p99(f: dict[str, Any]) -> float:
    """p99 of the probes; infinite when a probe never showed (the worker fell behind)."""
    return math.inf if f["lost"] else percentile(f["latencies"], 0.99)


def freshness_text(f: dict[str, Any]) -> str:
    seen = f["latencies"]
    text = (
        f"{percentile(seen, 0.5) * 1e3:.0f} / {percentile(seen, 0.99) * 1e3:.0f} ms "
        f"({len(seen)} probes"
    )
    if f["lost"]:
        text += (
            f"; probe {f['lost'][0] + 1} not visible within 30 s: the worker fell behind, "
            f"input lag {max(f['lags'], default=0):,.0f} messages then"
        )
    if f.get("answers_503"):
        text += f"; {f['answers_503']} probe polls got 503"
    return text + ")"


def target_rows(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []

    def target(name: str, shown: str, ok: bool) -> None:
        rows.append((name, shown, met(ok)))

    workloads = [("live order", r["worker"], r["ceiling"], r.get("quix"), "worker", "of_ceiling")]
    b = r.get("backfill", {})
    if b.get("worker") is not None:
        workloads.append(
            (
                "backfill",
                b["worker"],
                b["ceiling"],
                b.get("quix"),
                "backfill",
                "backfill_of_ceiling",
            )
        )
    for label, worker, ceiling, quix, floor, share_floor in workloads:
        rate, share = worker.steady_rate, worker.steady_rate / ceiling.steady_rate
        target(
            f"≥ {TARGETS[floor]:,} CDR/s per worker, {label}",
            f"{rate:,.0f}",
            rate >= TARGETS[floor],
        )
        target(
            f"≥ {TARGETS[share_floor] * 100:.0f} % of the raw ceiling, {label}",
            f"{share * 100:.1f} %",
            share >= TARGETS[share_floor],
        )
        if quix is not None:
            ratio = rate / quix.steady_rate
            target(f"≥ 3× Quix Streams, {label}", f"{ratio:.2f}×", ratio >= TARGETS["vs_quix"])
    p99 = percentile(small_answers(r, "13 months"), 0.99) * 1e3
    target(
        "query p99 ≤ 20 ms at 13 months (answers ≤ 1,000 rows)",
        f"{p99:.1f} ms",
        p99 <= TARGETS["query_p99_13m_ms"],
    )
    utc_p99 = p99
    for label in local_labels(r):
        zone_p99 = percentile(small_answers(r, label), 0.99) * 1e3
        target(
            f"query p99 {label.split(', ')[1]} ≤ 2× UTC's (13 months, ≤ 1,000 rows)",
            f"{zone_p99:.1f} ms ({zone_p99 / utc_p99:.2f}×)",
            zone_p99 <= 2 * utc_p99,
        )
    f = r["freshness"]
    for name, measured, limit in (
        ("freshness p50 ≤ 250 ms at half load", percentile(f["latencies"], 0.5), "freshness_p50_s"),
        ("freshness p99 ≤ 1 s at half load", freshness_p99(f), "freshness_p99_s"),
    ):
        seconds = math.inf if f["lost"] else measured
        target(
            name,
            "> 30 s" if math.isinf(seconds) else f"{seconds * 1e3:.0f} ms",
            seconds <= TARGETS[limit],
        )
    return rows


def small_answers(r: dict[str, Any], label: str) -> list[float]:
    """Timings of the answers of at most 1,000 rows for one range label."""
    return [
        t
        for report, timings in r["api"][label].items()
        if r["api_rows"][label][report] <= 1000
        for t in timings
    ]


def local_labels(r: dict[str, Any]) -> list[str]:
    """The ranges asked in a local time zone (`tz`), e.g. "13 months, Asia/Kathmandu"."""
    return [label for label in r["api"] if label.startswith("13 months, ")]


def console(r: dict[str, Any]) -> str:
    rows = figures(r)
    width = max(len(label) for label, _ in rows)
    lines = [f"{label:<{width}}  {value}" for label, value in rows]
    lines.append("")
    lines += [
        f"{name:<56} {value:>12}  {verdict.strip('*')}" for name, value, verdict in target_rows(r)
    ]
    return "\n".join(lines)


def per_report_table(r: dict[str, Any]) -> list[str]:
    lines = [
        "| range | report | rows | API p50 | API p99 | DuckDB p50 | DuckDB p99 |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for label in ("day", "month", "13 months"):
        for report in r["api"][label]:
            api, sql = r["api"][label][report], r["duckdb"][label][report]
            lines.append(
                f"| {label} | {report} | {r['api_rows'][label][report]:,} "
                f"| {percentile(api, 0.5) * 1e3:.1f} ms "
                f"| {percentile(api, 0.99) * 1e3:.1f} ms | {percentile(sql, 0.5) * 1e3:.1f} ms "
                f"| {percentile(sql, 0.99) * 1e3:.1f} ms |"
            )
    for label in local_labels(r):  # (DuckDB is asked in UTC only)
        for report, api in r["api"][label].items():
            lines.append(
                f"| {label} | {report} | {r['api_rows'][label][report]:,} "
                f"| {percentile(api, 0.5) * 1e3:.1f} ms | {percentile(api, 0.99) * 1e3:.1f} ms "
                "| | |"
            )
    return lines


def markdown(r: dict[str, Any], limits: list[str], command: str) -> str:
    m = r["machine"]
    out = [
        "# Benchmarks",
        "",
        f"Generated by `{command}` on {r['generated']} "
        f"(bench/, {r['elapsed_s'] / 60:.1f} minutes). Every figure below comes from one run "
        "on one private broker and one data set.",
        "",
        "## Machine",
        "",
    ]
    out += [f"- {k}: {v}" for k, v in m.items()]
    wc = r["worker_counts"]
    out += [
        f"- during the worker's throughput run the whole machine kept {wc['cores_busy']:.2f} of "
        f"its cores busy, the worker {wc['worker_cores']:.2f}"
        + (
            f" (its state layer {wc['state_cores']:.2f}, its ingest stage {wc['ingest_cores']:.2f})"
            if "state_cores" in wc
            else ""
        )
        + (
            f", the broker {wc['broker_cores']:.2f} ({wc['broker_us_per_cdr']:.0f} µs of CPU per "
            "CDR) (the rest: the bench's own polling, and any other work on the machine"
            if "broker_cores" in wc
            else " (the rest: the broker, and any other work on the machine"
        )
        + " — it is shared, so figures vary between runs)",
        "- worker settings: "
        + ", ".join(f"`{k}={v}`" for k, v in r["worker_settings"].items())
        + " (rest: defaults)",
    ]
    d = r["data"]
    out += [
        "",
        "## Data",
        "",
        f"- topic `{d['topic']}`, {d['partitions']} partitions, {d['total']:,} CDR messages "
        f"from `streamagg generate` (40 customers, Zipf-like volume, 1 % duplicates, 2 % late, "
        f"mixed `dt` spellings): {d['history']:,} spread over the 13 months before the run "
        f"(seed {d['seed_history']}), then {d['dense']:,} in one day, {d['day']} "
        f"(seed {d['seed_dense']}); produced in {d['produce_s']:.1f} s.",
        f"- DID inventory ({d['dids']} DIDs) and rate centers from `generate --reference-only`; "
        f"the worker reads both, as in production.",
        f"- backfill (8): topic `backfill-cdrs`, {r.get('backfill', {}).get('total', 0):,} CDRs "
        f"of the same generator spread over the same 13 months, shuffled (seed "
        f"{r.get('backfill', {}).get('seed', '-')}); a fresh worker (its own topics and state) "
        "reads it after the other figures, the main worker stopped.",
        f"- queries: busiest customer `{d['customer']}` ({d['customer_calls']:,} calls): "
        + "; ".join(
            f"{k} `{v[0]}`…`{v[1]}` ({d['range_calls'][k]:,} calls)" for k, v in d["ranges"].items()
        )
        + ".",
        "",
        "## Results",
        "",
        "| figure | value |",
        "|---|---|",
    ]
    out += [f"| {label} | {value} |" for label, value in figures(r)]
    out += [
        "",
        "Throughput is measured from the first processed message to the last; *steady* is "
        "the rate between 10 % and 90 % of the messages (start-up and the tail excluded). "
        "The worker's progress is `streamagg_cdrs_total` (accepted + rejected + duplicate) "
        "polled every 0.1 s on /metrics. CPU/CDR is the CPU time of the pipeline's processes "
        "(for the worker: all its processes, from its first answer on /metrics to the last "
        "message) divided by the messages.",
        "",
        "### Ratios",
        "",
        f"- streamagg / raw ceiling: {r['worker'].steady_rate / r['ceiling'].steady_rate:.2f}",
    ]
    b = r.get("backfill", {})
    if b.get("worker") is not None:
        out.append(
            "- backfill, streamagg / raw ceiling: "
            f"{b['worker'].steady_rate / b['ceiling'].steady_rate:.2f}"
            + (
                f"; streamagg / Quix Streams: {b['worker'].steady_rate / b['quix'].steady_rate:.2f}"
                if b.get("quix") is not None
                else ""
            )
        )
    if r.get("quix"):
        out.append(
            f"- streamagg / Quix Streams: {r['worker'].steady_rate / r['quix'].steady_rate:.2f}"
        )
    out += [
        "",
        "### Query latency per report",
        "",
        f"{r['api_repeat']} requests per report and range through the HTTP API (one "
        f"keep-alive connection, token auth, JSON rows); DuckDB: {r['duckdb_repeat']} runs of "
        "the equivalent GROUP BY over the raw CDR table (query + fetch).",
        "",
    ]
    out += per_report_table(r)
    if r.get("unavailable"):
        restarts = sum("worker restarted" in text for text in r["unavailable"])
        out += [
            "",
            f"{len(r['unavailable'])} requests got 503 (not timed; retried once /readyz said 200"
            f"{f', the worker restarted {restarts}× when 503 persisted 30 s' if restarts else ''}"
            f"); first answer: `{r['unavailable'][0][:200]}`",
        ]
    out += ["", "## Targets", "", "| target | measured | |", "|---|---:|---|"]
    out += [f"| {name} | {value} | {verdict} |" for name, value, verdict in target_rows(r)]
    out += ["", "## What limits the figures", "", *limits]
    out += [
        "",
        "## How to reproduce",
        "",
        "```",
        "make bench                      # full run: python -m bench",
        ".venv/bin/python -m bench --quick   # ~200,000 CDRs, under 10 minutes on 2 cores",
        ".venv/bin/python -m bench --cdrs 2000000 --skip-quix --out /tmp/B.md",
        ".venv/bin/python -m bench.compare /tmp/base   # this tree against a checkout, one run",
        ".venv/bin/python -m bench.compare /tmp/base --freshness-rate 15000  # + freshness, both",
        ".venv/bin/python -m bench.decode /tmp/base    # decode_cdr of both trees, in process",
        ".venv/bin/python -m bench.range_query /tmp/base  # queries over the last run's state",
        ".venv/bin/python -m bench.big_answer          # a ~1,000,000-row CSV export, streamed",
        ".venv/bin/python -m bench.stages              # CPU per CDR of each stage, no Kafka",
        ".venv/bin/python -m bench.column_sums         # report sums per CDR vs on columns",
        ".venv/bin/python -m bench.store_options       # RocksDB options side by side",
        ".venv/bin/python -m bench.soak                # RSS after 10 M CDRs, 30-minute soak",
        ".venv/bin/python -m bench --profile           # + py-spy summaries and flamegraphs/*.svg",
        "```",
        "",
        "Needs Java 11+ (the bench starts its own Kafka with deploy/kafka/kafka-local on a "
        "free port, data under bench/out/) and the bench-only package `quixstreams` in the "
        "venv (`.venv/bin/pip install quixstreams`; or `--skip-quix`). Logs of the broker, "
        "worker, generators and Quix stay in bench/out/ after the run.",
    ]
    return "\n".join(out) + "\n"
