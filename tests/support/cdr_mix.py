"""A test stream of CDR messages with every case the reports must survive, for a seed.

Unlike the product's generator (streamagg generate), this one aims at the edges: call starts
spread over 13 months with extra weight on month and year boundaries, every dt spelling, late
and out-of-order messages, re-sent duplicates, DIDs as caller ID, NANP and foreign numbers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

import orjson

TECH_PREFIXES = ("", "123#", "77*", "9001", "44#")
DT_SPELLINGS = (
    "iso_z",
    "iso_offset",
    "iso_compact_offset",
    "iso_naive",
    "space",
    "epoch",
    "epoch_f",
)
NPAS = ("201", "212", "305", "415", "416", "646", "876")  # 416 Toronto, 876 Jamaica


@dataclass
class CdrMix:
    seed: int
    now: datetime
    customers: int = 40
    span_days: int = 380
    duplicate_fraction: float = 0.02
    invalid_fraction: float = 0.0
    dids: dict[str, str] = field(default_factory=dict)  # DID -> owner account
    # This share of the calls starts in the last recent_hours before now (a dense recent stream).
    recent_fraction: float = 0.0
    recent_hours: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.customer_ids = [str(1000 + i) for i in range(self.customers)]
        if not self.dids:
            for i in range(60):
                did = f"2125550{i:03d}"
                self.dids[did] = self.customer_ids[i % min(7, self.customers)]
        self._sent: list[bytes] = []

    def messages(self, count: int) -> list[bytes]:
        """count messages: mostly valid CDRs, some duplicates of earlier ones (and invalid)."""
        out = []
        for i in range(count):
            roll = self.rng.random()
            if self._sent and roll < self.duplicate_fraction:
                out.append(self.rng.choice(self._sent[-5000:]))
            elif roll < self.duplicate_fraction + self.invalid_fraction:
                out.append(self._invalid(i))
            else:
                message = orjson.dumps(self._cdr(len(self._sent)))
                self._sent.append(message)
                out.append(message)
        return out

    def _start(self) -> datetime:
        rng = self.rng
        if self.recent_fraction and rng.random() < self.recent_fraction:
            return self.now - timedelta(seconds=rng.randint(1, self.recent_hours * 3600))
        if rng.random() < 0.3:
            # Near a month boundary (including the turn of the year): the last and first hours.
            months_back = rng.randrange(0, self.span_days // 31)
            first = self.now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
            for _ in range(months_back):
                first = (first - timedelta(days=1)).replace(day=1)
            moment = first + timedelta(seconds=rng.randint(-7200, 7199))
        else:
            moment = self.now - timedelta(seconds=rng.randint(0, self.span_days * 86400))
        return min(moment, self.now - timedelta(seconds=1))

    def _cdr(self, serial: int) -> dict[str, object]:
        rng = self.rng
        customer = self.customer_ids[min(int(rng.paretovariate(1.2)) - 1, self.customers - 1)]
        tech = rng.choice(TECH_PREFIXES)
        answered = rng.random() < 0.5
        cdr: dict[str, object] = {
            "callid": f"{self.seed}-{serial}",
            "dt": self._spell(self._start()),
            "customer_id": int(customer) if rng.random() < 0.5 else customer,
            "tech_prefix": tech if tech or rng.random() < 0.5 else None,
            "dest_number": self._dialed(tech),
            "customer_charge": self._amount(),
            "provider_charge": self._amount(),
        }
        if rng.random() < 0.9:
            cdr["provider_id"] = rng.choice([7, 8, "carrier-x", None])
        if rng.random() < 0.8:
            cdr["sip_code"] = 200 if answered else rng.choice([404, 486, 487, 503])
        cdr["duration"] = round(rng.lognormvariate(5, 1), rng.choice([0, 1, 3])) if answered else 0
        if rng.random() < 0.05:
            cdr["dtmf"] = rng.choice(["1", "12#", "9"])
        if rng.random() < 0.2:
            did = rng.choice(list(self.dids))
            cdr["dest_cli"] = rng.choice([did, "+1" + did, f"1 ({did[:3]}) {did[3:6]}-{did[6:]}"])
        elif rng.random() < 0.5:
            cdr["dest_cli"] = f"+1{rng.randint(2000000000, 9999999999)}"
        return cdr

    def _dialed(self, tech: str) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.15:
            return rng.choice(["+442071234567", "+4930123456", "011441234"])
        # A third of the calls go to the NXXs the rate-center table knows (555, 556).
        nxx = rng.choice(["555", "556"]) if rng.random() < 0.33 else f"{rng.randint(200, 999)}"
        number = f"{rng.choice(NPAS)}{nxx}{rng.randint(0, 9999):04d}"
        spelled = rng.choice([number, "1" + number, "+1" + number])
        return (tech + spelled) if tech and rng.random() < 0.5 else spelled

    def _amount(self) -> object:
        rng = self.rng
        value = rng.randint(0, 5_000_000_000) / 10 ** rng.choice([6, 7, 8])
        return f"{value:.8f}" if rng.random() < 0.5 else round(value, 6)

    def _spell(self, moment: datetime) -> object:
        spelling = self.rng.choice(DT_SPELLINGS)
        micro = moment.replace(microsecond=self.rng.randrange(1_000_000))
        if spelling == "iso_z":
            return micro.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        if spelling == "iso_offset":
            zone = timezone(timedelta(hours=self.rng.choice([-8, -5, 1, 5]), minutes=30))
            return micro.astimezone(zone).isoformat()
        if spelling == "iso_compact_offset":
            return micro.astimezone(timezone(timedelta(hours=-3))).strftime("%Y-%m-%dT%H:%M:%S%z")
        if spelling == "iso_naive":
            return micro.strftime("%Y-%m-%dT%H:%M:%S")
        if spelling == "space":
            return micro.strftime("%Y-%m-%d %H:%M:%S.%f")
        if spelling == "epoch":
            return int(moment.timestamp())
        return round(micro.timestamp(), 3)

    def _invalid(self, i: int) -> bytes:
        return self.rng.choice(
            [
                b"not json at all",
                b"[1, 2, 3]",
                orjson.dumps({"dt": "2026-01-01T00:00:00Z", "customer_id": "1"}),
                orjson.dumps({"callid": f"bad-{i}", "dt": "yesterday", "customer_id": "1"}),
                orjson.dumps(
                    {
                        "callid": f"neg-{i}",
                        "dt": int(self.now.timestamp()) - 60,
                        "customer_id": "1001",
                        "customer_charge": "-1.5",
                    }
                ),
                orjson.dumps({"callid": f"t-{i}", "dt": 1.0e300, "customer_id": True}),
                b'{"callid": "x' + b"y" * 70000 + b'"}',
            ]
        )


def rate_center_table() -> tuple[str, dict[str, tuple[str, str]], set[str]]:
    """A plain prefix,rc,state CSV and the same facts for the test's own resolver.

    Returns the CSV text, prefix -> (rc, state), and the NPAs outside the US (every row of
    416 names Ontario). 201-555-0 is a pooled block with a rate center of its own.
    """
    rows = {
        "201555": ("JERSEYCITY", "NJ"),
        "2015550": ("HOBOKEN", "NJ"),
        "2015551": ("JERSEYCITY", "NJ"),
        "212555": ("NWYRCYZN01", "NY"),
        "305555": ("MIAMI", "FL"),
        "415555": ("SNFC CNTRL", "CA"),
        "416555": ("TORONTO", "ON"),
        "416556": ("TORONTO", "ON"),
    }
    csv_text = "prefix,rc,state\n" + "".join(f"{p},{rc},{st}\n" for p, (rc, st) in rows.items())
    return csv_text, rows, {"416"}


def resolver(rows: dict[str, tuple[str, str]], outside: set[str]):  # type: ignore[no-untyped-def]
    """The rate-center rule of SPEC §2 written for the oracle, over the same table."""

    def resolve(block: str) -> tuple[str, str, str] | None:
        if block[:3] in outside:
            return None
        code, pooled = rows.get(block[:6]), rows.get(block)
        if pooled is not None and pooled != code:
            return (block, *pooled)
        if code is not None:
            return (block[:6], *code)
        return (block[:6], "UNKNOWN", "UNKNOWN")

    return resolve


def utc_now_hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
