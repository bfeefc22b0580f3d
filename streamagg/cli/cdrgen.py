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

from streamagg.cli.cdrplan import (
    PREFIX_NAMES,
    TECH_PREFIXES,
    CallPlan,
    build_plan,
    did_inventory,
    rate_center_rows,
)

DT_SPELLINGS = ("iso_z", "iso_offset", "iso_naive", "space", "epoch_int", "epoch_float")
INVALID_KINDS = ("bad_json", "missing_callid", "negative_amount", "bad_dt", "not_object")
FAILURE_SIP_CODES = (487, 486, 480, 503, 404, 408, 603, 403)
FAILURE_WEIGHTS = (30, 25, 14, 12, 8, 5, 4, 2)
_FAILURE_POOL = tuple(
    c for c, w in zip(FAILURE_SIP_CODES, FAILURE_WEIGHTS, strict=True) for _ in range(w)
)
DEFAULT_ASR_DROP_FACTOR = 0.3

_INTERNATIONAL = ("44207946", "4930901820", "525512", "919820", "63917", "61291", "33142")
_OFFSETS_MINUTES = (-300, -240, -420, 60, 120, 330, 0)
_DTMF_KEYS = "0123456789*#"
T = TypeVar("T")


# The plan of accounts is built whole at start: a million is minutes of it already.
MAX_ACCOUNTS = 100_000


@dataclass(frozen=True)
class GeneratorOptions:
    """Everything that shapes the stream; equal options give byte-identical messages."""

    seed: int = 1  # the calls
    world_seed: int = 1  # customers' tech prefixes and DIDs: keep it to pair several streams
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


class CdrGenerator:
    """Iterates (key, value) Kafka messages of a synthetic softswitch CDR stream."""

    def __init__(self, options: GeneratorOptions) -> None:
        unknown = set(options.asr_drop) - set(TECH_PREFIXES)
        if unknown:
            raise ValueError(f"unknown tech prefix for --asr-drop: {sorted(unknown)}")
        bad = set(options.dt_spellings) - set(DT_SPELLINGS)
        if bad or not options.dt_spellings:
            raise ValueError(f"dt spellings must be among {', '.join(DT_SPELLINGS)}")
        if not 1 <= options.customers <= MAX_ACCOUNTS or not 1 <= options.providers <= MAX_ACCOUNTS:
            raise ValueError(f"customers and providers must be from 1 to {MAX_ACCOUNTS:,}")
        self.options = options
        self._plan = build_plan(options.world_seed, options.customers, options.providers)

    def did_inventory(self) -> list[tuple[str, str]]:
        """(did, owner account) of every DID the stream presents as CLI."""
        return did_inventory(self._plan)

    def rate_center_rows(self) -> list[tuple[str, str, str]]:
        """A plain `prefix,rc,state` table for the dialed prefixes; some left out on purpose."""
        return rate_center_rows(self._plan)

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
        customer_text = plan.customer_texts[customer]
        tech_prefix = plan.primary_prefix[customer]
        if rand() < 0.3:
            tech_prefix = _pick(rand, PREFIX_NAMES)
        asr = TECH_PREFIXES[tech_prefix][1] * options.asr_drop.get(tech_prefix, 1.0)
        answered = rand() < asr
        international = rand() < 0.22
        cdr: dict[str, object] = {
            "callid": f"{rng.getrandbits(64):016x}-{sequence:x}@sbc{sequence % 4 + 1}",
            "dt": _spell_dt(rand, event_time, options.dt_spellings),
            "customer_id": customer if rand() < 0.5 else customer_text,
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
        if rand() < 0.9:  # post-dial delay: mostly 1-3 s, a tail to ~8 s
            cdr["pdd_ms"] = int(800 + 7000 * rand() ** 3)
        key = customer_text.encode() if options.key_by_customer else None
        return key, cdr


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
    if spelling == "iso_offset":
        moment = datetime.fromtimestamp(event_time, UTC)
        offset = _pick(rand, _OFFSETS_MINUTES)
        moment = moment.astimezone(timezone(timedelta(minutes=offset)))
        return moment.isoformat(timespec="milliseconds" if offset % 120 else "seconds")
    text = _utc_text(event_time)
    if spelling == "iso_z":
        return text[:23] + "Z" if rand() < 0.5 else text[:19] + "Z"
    if spelling == "space":
        return text.replace("T", " ")
    return text  # iso_naive: no zone means UTC


_second_text_cache: dict[int, str] = {}


def _utc_text(event_time: float) -> str:
    """`YYYY-MM-DDTHH:MM:SS.ffffff` in UTC; the seconds part is cached (calls share seconds)."""
    microseconds = round(event_time * 1_000_000)
    second, fraction = divmod(microseconds, 1_000_000)
    text = _second_text_cache.get(second)
    if text is None:
        if len(_second_text_cache) > 4096:
            _second_text_cache.clear()
        text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second_text_cache[second] = text
    return f"{text}.{fraction:06d}"


def _amount(rand: Callable[[], float], value: float) -> object:
    if rand() < 0.4:
        return round(value, 6)
    places = _pick(rand, (4, 5, 6))
    return f"{value:.{places}f}"


def _nanp_number(rand: Callable[[], float], plan: CallPlan, tech_prefix: str) -> str:
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


def _caller_id(rand: Callable[[], float], plan: CallPlan, customer: int) -> str | None:
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
