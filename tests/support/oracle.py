"""The oracle: SPEC §2's four reports recomputed independently from the raw messages.

Every message is decoded by ``oracle_decode`` (written from SPEC §1 alone), the
accepted, non-duplicate CDRs are loaded into an in-memory DuckDB table, one row
per call, and each report is a plain GROUP BY over the calls of the range.
Money and durations are DECIMAL(38,6) throughout, so sums are exact; the ratios
of the tech-prefix report are rounded from exact fractions.
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from math import floor
from typing import Any
from zoneinfo import ZoneInfo

import duckdb
import orjson

from tests.support.common import REPORT_IDS
from tests.support.oracle_decode import (
    Cdr,
    Rejected,
    decode,
    nanp_number,
    normalise_did,
)

RateCenters = Callable[[str], tuple[str, str, str] | None]
REPORTS = REPORT_IDS

CDR_COLUMNS: dict[str, str] = {
    "customer_id": "VARCHAR",
    "provider_id": "VARCHAR",
    "dt": "TIMESTAMP",
    "customer_charge": "DECIMAL(38,6)",
    "provider_charge": "DECIMAL(38,6)",
    "duration": "DECIMAL(38,6)",
    "answered": "BOOLEAN",
    "has_dtmf": "BOOLEAN",
    "tech_prefix": "VARCHAR",
    "nanp": "VARCHAR",  # the 10 NANP digits of dest_number, or NULL
    "did": "VARCHAR",  # normalised dest_cli when it is a DID of the inventory, else NULL
    "account": "VARCHAR",  # the owner of that DID, else NULL
    "sip_code": "INTEGER",  # NULL when the CDR had none
    "pdd_ms": "INTEGER",  # NULL when the CDR had none
}


def default_rate_centers(prefix7: str) -> tuple[str, str, str] | None:
    """No rate-center data: every NANP number is in the US, at an unknown rate center."""
    return (prefix7[:6], "UNKNOWN", "UNKNOWN")


def money(value: Decimal | None) -> str:
    """A sum of 6-place decimals written with exactly 6 decimals."""
    return f"{(value or Decimal(0)):.6f}"


def round_half_up(value: Fraction, places: int) -> float:
    """Round a non-negative exact value half-up to ``places`` decimals, as a float."""
    scaled = floor(value * 10**places + Fraction(1, 2))
    return float(Decimal(scaled).scaleb(-places))


@functools.cache  # (the same sums recur over many ranges; callers copy the dict with **)
def margin_columns(cc: Decimal | None, pc: Decimal | None) -> dict[str, Any]:
    """SPEC §6: margin = customer − provider charge; margin_pct = margin / customer charge ×
    100 to 2 decimals (a negative one rounded half away from zero), null when nothing charged."""
    customer, provider = cc or Decimal(0), pc or Decimal(0)
    value = customer - provider
    if customer == 0:
        pct = None
    else:
        share = Fraction(value) * 100 / Fraction(customer)
        pct = round_half_up(abs(share), 2) * (-1 if share < 0 else 1)
    return {"margin": money(value), "margin_pct": pct}


def wall_label(wall: datetime, offset_seconds: int, tz: str) -> str:
    """A wall-clock time and its offset as SPEC §6 writes a period: ``…T08:00:00-05:00``, or
    ``Z`` in UTC."""
    if tz == "UTC":
        return f"{wall:%Y-%m-%dT%H:%M:%S}Z"
    sign = "-" if offset_seconds < 0 else "+"
    hours, minutes = divmod(abs(offset_seconds) // 60, 60)
    return f"{wall:%Y-%m-%dT%H:%M:%S}{sign}{hours:02d}:{minutes:02d}"


def _utc_naive(moment: datetime) -> datetime:
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


class ReportOracle:
    """The expected reports for a stream of raw messages."""

    def __init__(
        self,
        raw_messages: Iterable[bytes],
        *,
        did_owner: Mapping[str, str] | None = None,
        rate_centers: RateCenters | None = None,
        dedup_hours: int = 48,
        now: datetime | None = None,
        retention_days: int = 400,
        future_tolerance_hours: int = 24,
    ) -> None:
        now = now if now is not None else datetime.now(UTC)
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        owners = {normalise_did(did): account for did, account in (did_owner or {}).items()}
        horizon = timedelta(hours=dedup_hours)
        oldest = now - timedelta(days=retention_days)
        newest = now + timedelta(hours=future_tolerance_hours)

        self._rejections: list[tuple[bytes, str]] = []
        self._duplicates = 0
        accepted: list[Cdr] = []
        seen: dict[tuple[str, str], list[datetime]] = {}
        for message in raw_messages:
            raw = bytes(message)
            try:
                cdr = decode(raw, oldest=oldest, newest=newest)
            except Rejected as exc:
                self._rejections.append((raw, str(exc)))
                continue
            earlier = seen.setdefault((cdr.customer_id, cdr.callid), [])
            if any(abs(cdr.dt - other) <= horizon for other in earlier):
                self._duplicates += 1
                continue
            earlier.append(cdr.dt)
            accepted.append(cdr)

        self._accepted = len(accepted)
        self._customers = sorted({cdr.customer_id for cdr in accepted})
        self._con = duckdb.connect(":memory:")
        self._load(accepted, owners)
        self.set_rate_centers(rate_centers or default_rate_centers)

    # -- loading -------------------------------------------------------------

    def _load(self, cdrs: list[Cdr], owners: Mapping[str, str]) -> None:
        schema = ", ".join(f"{name} {kind}" for name, kind in CDR_COLUMNS.items())
        self._con.execute(f"CREATE TABLE cdr_raw ({schema})")
        if cdrs:
            with tempfile.TemporaryDirectory(prefix="oracle-") as tmp:
                path = os.path.join(tmp, "cdrs.jsonl")
                with open(path, "wb") as out:
                    for cdr in cdrs:
                        out.write(orjson.dumps(self._row(cdr, owners)))
                        out.write(b"\n")
                columns = "{" + ", ".join(f"'{n}': '{k}'" for n, k in CDR_COLUMNS.items()) + "}"
                self._con.execute(
                    "INSERT INTO cdr_raw SELECT * FROM read_json(?, "
                    f"format = 'newline_delimited', columns = {columns})",
                    [path],
                )
        self._con.execute(
            "CREATE TABLE cdr AS SELECT *, date_trunc('hour', dt) AS hour, "
            "date_trunc('day', dt) AS day FROM cdr_raw ORDER BY customer_id, dt"
        )
        self._con.execute("DROP TABLE cdr_raw")

    @staticmethod
    def _row(cdr: Cdr, owners: Mapping[str, str]) -> dict[str, Any]:
        did = normalise_did(cdr.dest_cli)
        account = owners.get(did) if did else None
        return {
            "customer_id": cdr.customer_id,
            "provider_id": cdr.provider_id,
            "dt": cdr.dt.strftime("%Y-%m-%d %H:%M:%S.%f"),
            "customer_charge": str(cdr.customer_charge),
            "provider_charge": str(cdr.provider_charge),
            "duration": str(cdr.duration),
            "answered": cdr.answered,
            "has_dtmf": bool(cdr.dtmf),
            "tech_prefix": cdr.tech_prefix,
            "nanp": nanp_number(cdr.dest_number, cdr.tech_prefix),
            "did": did if account is not None else None,
            "account": account,
            "sip_code": cdr.sip_code,
            "pdd_ms": cdr.pdd_ms,
        }

    def set_rate_centers(self, rate_centers: RateCenters) -> None:
        """(Re)build the NPA-NXX-X -> (prefix, rc, state) table from ``rate_centers``."""
        blocks = self._con.execute(
            "SELECT DISTINCT left(nanp, 7) FROM cdr WHERE nanp IS NOT NULL"
        ).fetchall()
        self._con.execute(
            "CREATE OR REPLACE TABLE rc_map (p7 VARCHAR, prefix VARCHAR, rc VARCHAR, state VARCHAR)"
        )
        mapped = []
        for (p7,) in blocks:
            found = rate_centers(p7)
            if found is not None:
                prefix, rc, state = found
                mapped.append((p7, prefix, rc, state))
        if mapped:
            self._con.executemany("INSERT INTO rc_map VALUES (?, ?, ?, ?)", mapped)

    # -- counts --------------------------------------------------------------

    def rejected(self) -> list[bytes]:
        """The messages that must go to the DLQ, in message order."""
        return [raw for raw, _ in self._rejections]

    def rejections(self) -> list[tuple[bytes, str]]:
        """Like ``rejected`` with the oracle's reason for each (for diagnostics)."""
        return list(self._rejections)

    def accepted_count(self) -> int:
        return self._accepted

    def duplicate_count(self) -> int:
        return self._duplicates

    def customers(self) -> list[str]:
        """Customers with at least one accepted CDR, sorted."""
        return list(self._customers)

    def customer_list(self) -> list[dict[str, str]]:
        """SPEC §6 `GET /api/v1/customers`: each customer with the start of its latest call
        (whole seconds, UTC), sorted by id."""
        result = self._con.execute(
            "SELECT customer_id, max(dt) FROM cdr GROUP BY customer_id ORDER BY customer_id"
        ).fetchall()
        return [
            {"customer_id": customer, "latest_call": latest.strftime("%Y-%m-%dT%H:%M:%SZ")}
            for customer, latest in result
        ]

    # -- reports -------------------------------------------------------------

    def report(
        self,
        report: str,
        customer_id: str,
        start: datetime,
        end: datetime,
        granularity: str = "hour",
        tz: str = "UTC",
    ) -> list[dict[str, Any]]:
        """The ``rows`` of SPEC §3's JSON for ``report`` over ``[start, end)``, in the time zone
        ``tz`` (SPEC §6: the range on its whole hours, whole days for did-cli)."""
        lo, hi = _utc_naive(start), _utc_naive(end)
        for edge in (start, end):
            local = edge.astimezone(ZoneInfo(tz))
            if local.minute or local.second or (report == "did-cli" and local.hour):
                raise ValueError(
                    f"{edge} is not on a whole {tz} {'day' if report == 'did-cli' else 'hour'}"
                )
        if report == "dtmf":
            return self._dtmf(customer_id, lo, hi, granularity, tz)
        if report == "rate-center":
            return self._rate_center(customer_id, lo, hi)
        if report == "did-cli":
            return self._did_cli(customer_id, lo, hi)
        if report == "tech-prefix":
            return self._tech_prefix(customer_id, lo, hi)
        if report == "routes":
            return self._routes(customer_id, lo, hi)
        raise ValueError(f"unknown report {report!r}")

    def _dtmf(
        self, customer: str, lo: datetime, hi: datetime, granularity: str, tz: str
    ) -> list[dict[str, Any]]:
        """Periods of the zone from DuckDB's own time zone data (ICU): a call's wall-clock time
        and offset; an hour is (wall-clock hour, offset), so a repeated hour is two; a day or
        month begins at the instant its wall-clock midnight is in the zone."""
        assert granularity in ("hour", "day", "month"), granularity
        assert re.fullmatch(r"[A-Za-z0-9_/+-]+", tz), tz
        zone = f"'{tz}'"
        if granularity == "hour":
            period, offset = "date_trunc('hour', wall)", "wall_offset"
        else:
            period = f"date_trunc('{granularity}', wall)"
            start = f"timezone({zone}, {period})"  # that wall-clock time in the zone: an instant
            offset = f"epoch(timezone({zone}, {start})) - epoch({start})"
        result = self._con.execute(
            f"""WITH local AS (
                  SELECT *, timezone({zone}, dt::TIMESTAMPTZ) AS wall,
                         epoch(timezone({zone}, dt::TIMESTAMPTZ)) - epoch(dt) AS wall_offset
                  FROM cdr WHERE customer_id = ? AND dt >= ? AND dt < ?)
               SELECT {period} AS period, {offset} AS period_offset, provider_id,
                      sum(customer_charge), sum(provider_charge),
                      count(*) FILTER (WHERE has_dtmf), count(*)
               FROM local GROUP BY ALL""",
            [customer, lo, hi],
        ).fetchall()
        result.sort(key=lambda r: (r[0] - timedelta(seconds=int(r[1])), r[2]))
        return [
            {
                "dt": wall_label(wall, int(offset), tz),
                "provider_id": provider,
                "customer_charge": money(cc),
                "provider_charge": money(pc),
                "dtmf_count": int(dtmf),
                "calls": int(calls),
                **margin_columns(cc, pc),
            }
            for wall, offset, provider, cc, pc, dtmf, calls in result
        ]

    def _rate_center(self, customer: str, lo: datetime, hi: datetime) -> list[dict[str, Any]]:
        result = self._con.execute(
            """SELECT m.prefix, m.rc, m.state, sum(c.customer_charge),
                      sum(c.provider_charge), count(*)
               FROM cdr c JOIN rc_map m ON left(c.nanp, 7) = m.p7
               WHERE c.customer_id = ? AND c.dt >= ? AND c.dt < ?
               GROUP BY m.prefix, m.rc, m.state""",
            [customer, lo, hi],
        ).fetchall()
        result.sort(key=lambda r: (-r[5], r[0], r[1], r[2]))
        return [
            {
                "prefix": prefix,
                "rc": rc,
                "state": state,
                "customer_charge": money(cc),
                "provider_charge": money(pc),
                "call_count": int(calls),
                **margin_columns(cc, pc),
            }
            for prefix, rc, state, cc, pc, calls in result
        ]

    def _did_cli(self, customer: str, lo: datetime, hi: datetime) -> list[dict[str, Any]]:
        result = self._con.execute(
            """SELECT account, did, count(*)
               FROM cdr WHERE customer_id = ? AND account IS NOT NULL
                 AND dt >= ? AND dt < ?
               GROUP BY account, did""",
            [customer, lo, hi],
        ).fetchall()
        result.sort(key=lambda r: (r[0], -r[2], r[1]))
        return [
            {"account": account, "dest_cli": did, "count": int(n), "foreign": account != customer}
            for account, did, n in result
        ]

    def _tech_prefix(self, customer: str, lo: datetime, hi: datetime) -> list[dict[str, Any]]:
        result = self._con.execute(
            """SELECT tech_prefix, count(*), count(*) FILTER (WHERE answered),
                      sum(duration) FILTER (WHERE answered)
               FROM cdr WHERE customer_id = ? AND dt >= ? AND dt < ?
               GROUP BY tech_prefix""",
            [customer, lo, hi],
        ).fetchall()
        result.sort(key=lambda r: (-r[1], r[0]))
        rows = []
        for prefix, total, answered, seconds in result:
            asr = round_half_up(Fraction(int(answered) * 100, int(total)), 2)
            acd = (
                round_half_up(Fraction(seconds or Decimal(0)) / int(answered), 1)
                if answered
                else 0.0
            )
            rows.append(
                {
                    "tech_prefix": prefix,
                    "total": int(total),
                    "answered_calls": int(answered),
                    "asr": asr,
                    "acd": acd,
                }
            )
        return rows

    def _routes(self, customer: str, lo: datetime, hi: datetime) -> list[dict[str, Any]]:
        """SPEC §6 route quality, from its text: NER counts final codes 200, 486, 600, 603,
        480, 487, or (no code) a duration above 0; a short call is answered and ≤ 6 s."""
        result = self._con.execute(
            """SELECT provider_id, tech_prefix, count(*),
                      count(*) FILTER (WHERE answered),
                      sum(duration) FILTER (WHERE answered),
                      count(*) FILTER (WHERE sip_code IN (200, 486, 600, 603, 480, 487)
                                       OR (sip_code IS NULL AND duration > 0)),
                      count(*) FILTER (WHERE answered AND duration <= 6),
                      sum(pdd_ms), count(pdd_ms)
               FROM cdr WHERE customer_id = ? AND dt >= ? AND dt < ?
               GROUP BY provider_id, tech_prefix""",
            [customer, lo, hi],
        ).fetchall()
        codes = self._con.execute(
            """SELECT provider_id, tech_prefix, sip_code, count(*) AS n
               FROM cdr WHERE customer_id = ? AND dt >= ? AND dt < ?
                 AND sip_code IS NOT NULL
               GROUP BY provider_id, tech_prefix, sip_code
               ORDER BY n DESC, sip_code""",
            [customer, lo, hi],
        ).fetchall()
        top: dict[tuple[str, str], list[dict[str, int]]] = {}
        for provider, prefix, code, count in codes:
            entries = top.setdefault((provider, prefix), [])
            if len(entries) < 5:
                entries.append({"code": int(code), "count": int(count)})
        rows = []
        for provider, prefix, attempts, answered, seconds, effective, short, pdd, pdds in result:
            n, a = int(attempts), int(answered)
            rows.append(
                {
                    "provider_id": provider,
                    "tech_prefix": prefix,
                    "attempts": n,
                    "answered_calls": a,
                    "asr": round_half_up(Fraction(a * 100, n), 2),
                    "acd": round_half_up(Fraction(seconds or Decimal(0)) / a, 1) if a else 0.0,
                    "ner": round_half_up(Fraction(int(effective) * 100, n), 2),
                    "scr": round_half_up(Fraction(int(short) * 100, a), 2) if a else 0.0,
                    "pdd_avg_ms": (
                        int(round_half_up(Fraction(int(pdd), int(pdds)), 0)) if pdds else None
                    ),
                    "codes": top.get((provider, prefix), []),
                }
            )
        rows.sort(key=lambda r: (-r["attempts"], r["provider_id"], r["tech_prefix"]))
        return rows
