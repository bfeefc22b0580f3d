"""Deterministic synthesis of a realistic CDR stream (SPEC §1): pure, no Kafka."""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import TypeVar

import orjson

# Tech prefix → (share of attempts, normal answer-seizure ratio).
TECH_PREFIXES: dict[str, tuple[float, float]] = {
    "": (0.34, 0.52),
    "123#": (0.24, 0.47),
    "77*": (0.16, 0.58),
    "9001": (0.14, 0.43),
    "44#": (0.12, 0.55),
}
DT_SPELLINGS = ("iso_z", "iso_offset", "iso_naive", "space", "epoch_int", "epoch_float")
INVALID_KINDS = ("bad_json", "missing_callid", "negative_amount", "bad_dt", "not_object")
FAILURE_SIP_CODES = (487, 486, 480, 503, 404, 408, 603, 403)
FAILURE_WEIGHTS = (30, 25, 14, 12, 8, 5, 4, 2)
_FAILURE_POOL = tuple(
    c for c, w in zip(FAILURE_SIP_CODES, FAILURE_WEIGHTS, strict=True) for _ in range(w)
)
DEFAULT_ASR_DROP_FACTOR = 0.3

# Dialed NANP area codes and rate-center names invented for them (uppercase, as NANPA writes).
_NANP_AREAS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("201", "NJ", ("JERSEYCITY", "HACKENSACK", "BAYONNE")),
    ("212", "NY", ("NWYRCYZN01", "NWYRCYZN03")),
    ("213", "CA", ("LSAN DA 01", "LSAN DA 02")),
    ("305", "FL", ("MIAMI", "HOMESTEAD", "KEY WEST")),
    ("312", "IL", ("CHICAGO",)),
    ("404", "GA", ("ATLANTA", "DECATUR")),
    ("469", "TX", ("DALLAS", "PLANO", "GARLAND")),
    ("503", "OR", ("PORTLAND", "SALEM")),
    ("602", "AZ", ("PHOENIX", "SCOTTSDALE")),
    ("617", "MA", ("BOSTON", "CAMBRIDGE")),
    ("702", "NV", ("LAS VEGAS", "HENDERSON")),
    ("720", "CO", ("DENVER", "AURORA")),
    ("808", "HI", ("HONOLULU", "KANEOHE")),
    ("917", "NY", ("NWYRCYZN01", "NWYRCYZN05")),
)
_INTERNATIONAL = ("44207946", "4930901820", "525512", "919820", "63917", "61291", "33142")
_OFFSETS_MINUTES = (-300, -240, -420, 60, 120, 330, 0)
_DTMF_KEYS = "0123456789*#"
T = TypeVar("T")


@dataclass(frozen=True)
class GeneratorOptions:
    """Everything that shapes the stream; equal options give byte-identical messages."""

    seed: int = 1
    count: int = 0  # messages; 0 = endless
    start: float = 1_767_225_600.0  # event time of the first call, epoch seconds
    rate: float = 0.0  # calls per second of event time; 0 = advance by event_step
    event_step: float = 0.001
    customers: int = 40
    providers: int = 6
    asr_drop: Mapping[str, float] = field(default_factory=dict)  # prefix → ASR factor
    dtmf_fraction: float = 0.03
    late_fraction: float = 0.02
    duplicate_fraction: float = 0.01
    invalid_fraction: float = 0.0
    dt_spellings: tuple[str, ...] = DT_SPELLINGS
    key_by_customer: bool = True


@dataclass(frozen=True)
class _Plan:
    """The fixed world the calls happen in: who exists, what is dialed, who owns which DID."""

    customer_ids: list[int]
    customer_weights: list[float]
    primary_prefix: dict[int, str]
    provider_ids: list[int]
    nanp_prefixes: list[str]
    dids_by_owner: dict[int, list[str]]
    all_dids: list[str]


def nanp_prefixes() -> list[str]:
    """The NPA-NXX codes the generator dials, the same for every seed."""
    plan_rng = random.Random("streamagg-nanp-plan")
    prefixes = []
    for npa, _state, _centers in _NANP_AREAS:
        for nxx in plan_rng.sample(range(200, 1000), 3):
            prefixes.append(f"{npa}{nxx}")
    return prefixes


class CdrGenerator:
    """Iterates (key, value) Kafka messages of a synthetic softswitch CDR stream."""

    def __init__(self, options: GeneratorOptions) -> None:
        unknown = set(options.asr_drop) - set(TECH_PREFIXES)
        if unknown:
            raise ValueError(f"unknown tech prefix for --asr-drop: {sorted(unknown)}")
        bad = set(options.dt_spellings) - set(DT_SPELLINGS)
        if bad or not options.dt_spellings:
            raise ValueError(f"dt spellings must be among {', '.join(DT_SPELLINGS)}")
        if options.customers < 1 or options.providers < 1:
            raise ValueError("customers and providers must be at least 1")
        self.options = options
        self._plan = _build_plan(options)

    def did_inventory(self) -> list[tuple[str, str]]:
        """(did, owner account) of every DID the stream presents as CLI."""
        return [
            (did, str(owner))
            for owner, dids in sorted(self._plan.dids_by_owner.items())
            for did in dids
        ]

    def rate_center_rows(self) -> list[tuple[str, str, str]]:
        """A plain `prefix,rc,state` table for the dialed prefixes; some left out on purpose."""
        areas = {npa: (state, centers) for npa, state, centers in _NANP_AREAS}
        table_rng = random.Random("streamagg-rate-centers")
        rows = []
        for index, prefix in enumerate(self._plan.nanp_prefixes):
            if index % 7 == 3:
                continue  # not in the data: reported as UNKNOWN
            state, centers = areas[prefix[:3]]
            center = table_rng.choice(centers)
            rows.append((prefix, center, state))
            if index % 9 == 1:
                # A pooled thousands block whose rate center differs from its NPA-NXX.
                others = [c for c in centers if c != center] or [center + " 2"]
                rows.append((prefix + str(table_rng.randint(0, 9)), others[0], state))
        return rows

    def messages(self) -> Iterator[tuple[bytes | None, bytes]]:
        options = self.options
        rng = random.Random(options.seed)
        recent: list[tuple[bytes | None, bytes]] = []
        numbers = range(options.count) if options.count else itertools.count()
        step = 1.0 / options.rate if options.rate > 0 else options.event_step
        for sequence in numbers:
            roll = rng.random()
            if recent and roll < options.duplicate_fraction:
                yield recent[int(roll / options.duplicate_fraction * len(recent))]
                continue
            event_time = options.start + sequence * step
            if roll > 1.0 - options.invalid_fraction:
                yield None, _invalid_message(rng, sequence, event_time)
                continue
            if rng.random() < options.late_fraction:
                event_time -= rng.uniform(3600.0, 3 * 86400.0)
            key, cdr = self._call(rng, sequence, event_time)
            message = (key, orjson.dumps(cdr))
            if len(recent) < 2000:
                recent.append(message)
            else:
                recent[sequence % 2000] = message
            yield message

    def _call(
        self, rng: random.Random, sequence: int, event_time: float
    ) -> tuple[bytes | None, dict[str, object]]:
        options, plan = self.options, self._plan
        rand = rng.random
        customer = plan.customer_ids[
            bisect.bisect(plan.customer_weights, rand() * plan.customer_weights[-1])
        ]
        tech_prefix = plan.primary_prefix[customer]
        if rand() < 0.3:
            tech_prefix = _pick(rand, _PREFIX_NAMES)
        asr = TECH_PREFIXES[tech_prefix][1] * options.asr_drop.get(tech_prefix, 1.0)
        answered = rand() < asr
        international = rand() < 0.22
        cdr: dict[str, object] = {
            "callid": f"{rng.getrandbits(64):016x}-{sequence:x}@sbc{sequence % 4 + 1}",
            "dt": _spell_dt(rand, event_time, options.dt_spellings),
            "customer_id": customer if rand() < 0.5 else str(customer),
        }
        provider_roll = rand()
        if provider_roll < 0.97:
            provider = _pick(rand, plan.provider_ids)
            cdr["provider_id"] = provider if provider_roll < 0.5 else str(provider)
        elif provider_roll < 0.985:
            cdr["provider_id"] = None
        duration: float = 0
        if answered:
            duration = min(86400, max(1, round(rng.lognormvariate(5.2, 0.9))))
            if rand() < 0.1:
                duration = round(duration + rand(), 1)
            price_per_minute = (
                _uniform(rand, 0.02, 0.15) if international else _uniform(rand, 0.004, 0.02)
            )
            customer_charge = price_per_minute * duration / 60.0
            margin = _uniform(rand, 0.6, 0.95) if rand() < 0.96 else _uniform(rand, 1.01, 1.2)
            cdr["customer_charge"] = _amount(rand, customer_charge)
            cdr["provider_charge"] = _amount(rand, customer_charge * margin)
        elif rand() < 0.6:
            cdr["customer_charge"] = _amount(rand, 0.0)
            cdr["provider_charge"] = _amount(rand, 0.0)
        cdr["dest_number"] = (
            _international_number(rand) if international else _nanp_number(rand, plan, tech_prefix)
        )
        cli = _caller_id(rand, plan, customer)
        if cli is not None:
            cdr["dest_cli"] = cli
        cdr["tech_prefix"] = tech_prefix
        cdr["duration"] = duration
        if rand() < 0.98:
            cdr["sip_code"] = 200 if answered else _pick(rand, _FAILURE_POOL)
        if answered and rand() < options.dtmf_fraction / 0.5:
            cdr["dtmf"] = "".join(rng.choices(_DTMF_KEYS, k=rng.randint(1, 6)))
        elif rand() < 0.2:
            cdr["dtmf"] = "" if rand() < 0.7 else None
        key = str(customer).encode() if options.key_by_customer else None
        return key, cdr


_PREFIX_NAMES = tuple(TECH_PREFIXES)


def _build_plan(options: GeneratorOptions) -> _Plan:
    rng = random.Random(f"plan-{options.seed}")
    customer_ids = [1001 + index for index in range(options.customers)]
    # Zipf-like volume: the k-th customer sends about 1/k^1.1 of the first one's calls.
    cumulative, total = [], 0.0
    for rank in range(1, options.customers + 1):
        total += 1.0 / rank**1.1
        cumulative.append(total)
    shares = [share for share, _asr in TECH_PREFIXES.values()]
    primary = {c: rng.choices(_PREFIX_NAMES, weights=shares)[0] for c in customer_ids}
    provider_ids = [201 + index for index in range(options.providers)]
    prefixes = nanp_prefixes()
    dids_by_owner: dict[int, list[str]] = {}
    taken: set[str] = set()
    for customer in customer_ids[: max(1, options.customers * 3 // 4)]:
        owned = dids_by_owner[customer] = []
        while len(owned) < 1 + customer % 5:
            did = "1" + rng.choice(prefixes) + f"{rng.randrange(10000):04d}"
            if did not in taken:
                taken.add(did)
                owned.append(did)
    all_dids = [did for dids in dids_by_owner.values() for did in dids]
    return _Plan(customer_ids, cumulative, primary, provider_ids, prefixes, dids_by_owner, all_dids)


def _uniform(rand: Callable[[], float], low: float, high: float) -> float:
    return low + (high - low) * rand()


def _pick(rand: Callable[[], float], choices: Sequence[T]) -> T:
    return choices[int(rand() * len(choices))]


def _line_number(rand: Callable[[], float]) -> str:
    return f"{int(rand() * 10000):04d}"


def _spell_dt(rand: Callable[[], float], event_time: float, spellings: tuple[str, ...]) -> object:
    spelling = _pick(rand, spellings)
    if spelling == "epoch_int":
        return int(event_time)
    if spelling == "epoch_float":
        return round(event_time, 3)
    moment = datetime.fromtimestamp(event_time, UTC)
    if spelling == "iso_offset":
        offset = _pick(rand, _OFFSETS_MINUTES)
        moment = moment.astimezone(timezone(timedelta(minutes=offset)))
        return moment.isoformat(timespec="milliseconds" if offset % 120 else "seconds")
    text = moment.isoformat(timespec="microseconds")[:26]
    if spelling == "iso_z":
        return text[:23] + "Z" if rand() < 0.5 else text[:19] + "Z"
    if spelling == "space":
        return text.replace("T", " ")
    return text  # iso_naive: no zone means UTC


def _amount(rand: Callable[[], float], value: float) -> object:
    if rand() < 0.4:
        return round(value, 6)
    places = _pick(rand, (4, 5, 6))
    return f"{value:.{places}f}"


def _nanp_number(rand: Callable[[], float], plan: _Plan, tech_prefix: str) -> str:
    ten_digits = _pick(rand, plan.nanp_prefixes) + _line_number(rand)
    spelling = rand()
    if spelling < 0.4:
        number = "1" + ten_digits
    elif spelling < 0.7:
        number = "+1" + ten_digits
    elif spelling < 0.98:
        number = ten_digits
    else:
        number = "911"  # not a NANP subscriber number: left out of the rate-center report
    if tech_prefix and rand() < 0.3:
        number = tech_prefix + number
    return number


def _international_number(rand: Callable[[], float]) -> str:
    country_and_area = _pick(rand, _INTERNATIONAL)
    subscriber = _line_number(rand)
    spelling = rand()
    if spelling < 0.6:
        return "+" + country_and_area + subscriber
    if spelling < 0.85:
        return "011" + country_and_area + subscriber
    return "00" + country_and_area + subscriber


def _caller_id(rand: Callable[[], float], plan: _Plan, customer: int) -> str | None:
    roll = rand()
    if roll < 0.02:
        return None
    if roll < 0.05:
        return "anonymous"
    if roll < 0.30:
        own = plan.dids_by_owner.get(customer)
        did = _pick(rand, own) if own and rand() < 0.85 else _pick(rand, plan.all_dids)
        form = rand()
        return did if form < 0.5 else ("+" + did if form < 0.8 else did[1:])
    return "1" + _pick(rand, plan.nanp_prefixes) + _line_number(rand)


def _invalid_message(rng: random.Random, sequence: int, event_time: float) -> bytes:
    kind = rng.choice(INVALID_KINDS)
    good: dict[str, object] = {
        "callid": f"invalid-{sequence:x}",
        "dt": int(event_time),
        "customer_id": "1001",
        "customer_charge": "0.0100",
        "duration": 30,
        "sip_code": 200,
    }
    if kind == "bad_json":
        return orjson.dumps(good)[:-7]
    if kind == "not_object":
        return orjson.dumps([good])
    if kind == "missing_callid":
        del good["callid"]
    elif kind == "negative_amount":
        good["customer_charge"] = "-0.0150"
    else:
        good["dt"] = "2026-13-45T25:61:00"
    return orjson.dumps(good)


def epoch_seconds(text: str) -> float:
    """Parse a --start value: ISO-8601 (no zone = UTC) or epoch seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
