"""The control panel as it is today: DuckDB GROUP BY over the raw CDRs, per report and range.

The CDRs are read once from the bench topic, normalised with streamagg's own decoder (as a
warehouse load job would: a TIMESTAMP, DECIMAL(18,6) money, the NANP number, the normalised
caller ID and its DID owner) and loaded into one DuckDB table; the rate centers and the DID
inventory are the same files the worker uses. Timings cover query + fetching the rows.
"""

from __future__ import annotations

import asyncio
import csv
import time
import uuid
from datetime import datetime
from pathlib import Path

import duckdb
from aiokafka import AIOKafkaConsumer

from streamagg.cdr import NO_PDD, NO_SIP_CODE, Cdr, decode_cdr
from streamagg.reports.base import money

_RANGE = "customer_id = $customer AND ts >= $start AND ts < $end"
QUERIES = {
    "dtmf": f"""
        SELECT date_trunc('hour', ts) AS dt, provider_id, sum(customer_charge),
               sum(provider_charge), count(*) FILTER (WHERE dtmf), count(*)
        FROM cdrs WHERE {_RANGE} GROUP BY ALL ORDER BY dt, provider_id""",
    "rate-center": f"""
        SELECT left(nanp, 6) AS prefix, coalesce(r.rc, 'UNKNOWN'), coalesce(r.state, 'UNKNOWN'),
               sum(customer_charge), sum(provider_charge), count(*) AS call_count
        FROM cdrs LEFT JOIN ratecenters r ON r.prefix = left(nanp, 6)
        WHERE {_RANGE} AND nanp <> '' GROUP BY ALL ORDER BY call_count DESC, prefix""",
    "did-cli": f"""
        SELECT did_owner AS account, cli AS dest_cli, count(*) AS n,
               did_owner <> customer_id AS foreign_owner
        FROM cdrs WHERE {_RANGE} AND did_owner <> '' GROUP BY ALL
        ORDER BY account, n DESC, dest_cli""",
    "tech-prefix": f"""
        SELECT tech_prefix, count(*) AS total, count(*) FILTER (WHERE answered) AS answered_calls,
               round(100.0 * count(*) FILTER (WHERE answered) / count(*), 2) AS asr,
               round(coalesce(sum(duration) FILTER (WHERE answered)
                     / nullif(count(*) FILTER (WHERE answered), 0), 0), 1) AS acd
        FROM cdrs WHERE {_RANGE} GROUP BY ALL ORDER BY total DESC, tech_prefix""",
    "routes": f"""
        WITH calls AS (SELECT * FROM cdrs WHERE {_RANGE}),
        counted AS (
            SELECT provider_id, tech_prefix, sip_code, count(*) AS n FROM calls
            WHERE sip_code IS NOT NULL GROUP BY provider_id, tech_prefix, sip_code),
        ranked AS (
            SELECT *, row_number() OVER (PARTITION BY provider_id, tech_prefix
                                         ORDER BY n DESC, sip_code) AS k
            FROM counted),
        top AS (
            SELECT provider_id, tech_prefix, list({{'code': sip_code, 'count': n}} ORDER BY k)
                   AS codes
            FROM ranked WHERE k <= 5 GROUP BY provider_id, tech_prefix),
        routes AS (
            SELECT provider_id, tech_prefix, count(*) AS attempts,
                   count(*) FILTER (WHERE answered) AS answered_calls,
                   round(100.0 * count(*) FILTER (WHERE answered) / count(*), 2) AS asr,
                   round(coalesce(sum(duration) FILTER (WHERE answered)
                         / nullif(count(*) FILTER (WHERE answered), 0), 0), 1) AS acd,
                   round(100.0 * count(*) FILTER (WHERE sip_code IN (200, 486, 600, 603, 480, 487)
                         OR (sip_code IS NULL AND duration > 0)) / count(*), 2) AS ner,
                   round(coalesce(100.0 * count(*) FILTER (WHERE answered AND duration <= 6)
                         / nullif(count(*) FILTER (WHERE answered), 0), 0), 2) AS scr,
                   round(avg(pdd_ms)) AS pdd_avg_ms
            FROM calls GROUP BY provider_id, tech_prefix)
        SELECT routes.*, top.codes FROM routes LEFT JOIN top USING (provider_id, tech_prefix)
        ORDER BY attempts DESC, provider_id, tech_prefix""",
}


async def _dump(bootstrap: str, topic: str, total: int, dids: dict[str, str], path: Path) -> int:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-load-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=32 * 1024 * 1024,
    )
    await consumer.start()
    read = rows = 0
    now = time.time()
    try:
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            while read < total:
                batches = await consumer.getmany(timeout_ms=1000, max_records=20000)
                for records in batches.values():
                    read += len(records)
                    for record in records:
                        cdr = decode_cdr(record.value, now=now)
                        if not isinstance(cdr, Cdr):
                            continue
                        rows += 1
                        writer.writerow(
                            (
                                cdr.customer_id,
                                cdr.start,
                                cdr.provider_id,
                                money(cdr.customer_charge),
                                money(cdr.provider_charge),
                                cdr.tech_prefix,
                                cdr.duration / 1e6,
                                cdr.answered,
                                cdr.has_dtmf,
                                cdr.nanp_number,
                                cdr.cli,
                                dids.get(cdr.cli, "") if cdr.cli else "",
                                cdr.sip_code if cdr.sip_code != NO_SIP_CODE else None,
                                cdr.pdd_ms if cdr.pdd_ms != NO_PDD else None,
                            )
                        )
    finally:
        await consumer.stop()
    return rows


def load(
    bootstrap: str, topic: str, total: int, dids_csv: Path, ratecenters_csv: Path, work: Path
) -> tuple[duckdb.DuckDBPyConnection, dict[str, float]]:
    with dids_csv.open(newline="", encoding="utf-8") as source:
        dids = {row["did"]: row["account"] for row in csv.DictReader(source)}
    raw = work / "cdrs.csv"
    began = time.monotonic()
    rows = asyncio.run(_dump(bootstrap, topic, total, dids, raw))
    dumped = time.monotonic()
    db = duckdb.connect(str(work / "warehouse.duckdb"))
    db.execute("DROP TABLE IF EXISTS cdrs; DROP TABLE IF EXISTS ratecenters")
    db.execute(f"""
        CREATE TABLE cdrs AS SELECT
            customer_id, make_timestamp(start::BIGINT * 1000000) AS ts, provider_id,
            customer_charge, provider_charge, tech_prefix, duration, answered, dtmf, nanp, cli,
            did_owner, sip_code, pdd_ms
        FROM read_csv('{raw}', header = false, all_varchar = false, columns = {{
            'customer_id': 'VARCHAR', 'start': 'BIGINT', 'provider_id': 'VARCHAR',
            'customer_charge': 'DECIMAL(18,6)', 'provider_charge': 'DECIMAL(18,6)',
            'tech_prefix': 'VARCHAR', 'duration': 'DOUBLE', 'answered': 'BOOLEAN',
            'dtmf': 'BOOLEAN', 'nanp': 'VARCHAR', 'cli': 'VARCHAR', 'did_owner': 'VARCHAR',
            'sip_code': 'INTEGER', 'pdd_ms': 'INTEGER'}})
        ORDER BY ts""")
    db.execute(f"""CREATE TABLE ratecenters AS SELECT * FROM read_csv('{ratecenters_csv}',
        header = true, columns = {{'prefix': 'VARCHAR', 'rc': 'VARCHAR', 'state': 'VARCHAR'}})""")
    raw.unlink()
    return db, {"rows": rows, "dump_s": dumped - began, "load_s": time.monotonic() - dumped}


def busiest_customer(db: duckdb.DuckDBPyConnection) -> tuple[str, int]:
    customer, calls = db.execute(
        "SELECT customer_id, count(*) AS n FROM cdrs GROUP BY 1 ORDER BY n DESC LIMIT 1"
    ).fetchone()
    return str(customer), int(calls)


def calls_in(db: duckdb.DuckDBPyConnection, customer: str, start: datetime, end: datetime) -> int:
    return int(
        db.execute(
            f"SELECT count(*) FROM cdrs WHERE {_RANGE}",
            {"customer": customer, "start": start, "end": end},
        ).fetchone()[0]
    )


def query_latency(
    db: duckdb.DuckDBPyConnection,
    customer: str,
    ranges: dict[str, tuple[datetime, datetime]],
    repeat: int,
) -> dict[str, dict[str, list[float]]]:
    result: dict[str, dict[str, list[float]]] = {}
    for label, (start, end) in ranges.items():
        result[label] = {}
        params = {"customer": customer, "start": start, "end": end}
        for report, sql in QUERIES.items():
            db.execute(sql, params).fetchall()  # warm-up
            timings = []
            for _ in range(repeat):
                began = time.perf_counter()
                db.execute(sql, params).fetchall()
                timings.append(time.perf_counter() - began)
            result[label][report] = timings
    return result
