"""The fixed world a synthetic CDR stream happens in: accounts, carriers, numbers, DIDs."""

from __future__ import annotations

import random
from dataclasses import dataclass

# Tech prefix → (share of attempts, normal answer-seizure ratio).
TECH_PREFIXES: dict[str, tuple[float, float]] = {
    "": (0.34, 0.52),
    "123#": (0.24, 0.47),
    "77*": (0.16, 0.58),
    "9001": (0.14, 0.43),
    "44#": (0.12, 0.55),
}
PREFIX_NAMES = tuple(TECH_PREFIXES)

# Dialed NANP area codes and rate-center names invented for them (uppercase, as NANPA writes).
NANP_AREAS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("201", "NJ", ("JERSEYCITY", "HACKENSACK", "BAYONNE")),
    ("212", "NY", ("NWYRCYZN01", "NWYRCYZN03")),
    ("213", "CA", ("LSAN DA 01", "LSAN DA 02")),
    ("305", "FL", ("MIAMI", "HOMESTEAD", "KEY WEST")),
    ("312", "IL", ("CHICAGO", "CHICAGO ZONE 2")),
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


@dataclass(frozen=True)
class CallPlan:
    """Who exists, what is dialed, who owns which DID: fixed for one seed."""

    customer_ids: list[int]
    customer_texts: dict[int, str]
    customer_weights: list[float]  # cumulative, for a bisect draw
    primary_prefix: dict[int, str]
    provider_ids: list[int]
    nanp_prefixes: list[str]
    dids_by_owner: dict[int, list[str]]
    all_dids: list[str]


def nanp_prefixes() -> list[str]:
    """The NPA-NXX codes the generator dials, the same for every seed."""
    plan_rng = random.Random("streamagg-nanp-plan")
    return [
        f"{npa}{nxx}"
        for npa, _state, _centers in NANP_AREAS
        for nxx in plan_rng.sample(range(200, 1000), 3)
    ]


def build_plan(seed: int, customers: int, providers: int) -> CallPlan:
    rng = random.Random(f"plan-{seed}")
    customer_ids = [1001 + index for index in range(customers)]
    # Zipf-like volume: the k-th customer sends about 1/k^1.1 of the first one's calls.
    cumulative, total = [], 0.0
    for rank in range(1, customers + 1):
        total += 1.0 / rank**1.1
        cumulative.append(total)
    shares = [share for share, _asr in TECH_PREFIXES.values()]
    primary = {c: rng.choices(PREFIX_NAMES, weights=shares)[0] for c in customer_ids}
    prefixes = nanp_prefixes()
    # Three customers in four own 1-5 DIDs (11-digit, as many inventories keep them).
    dids_by_owner: dict[int, list[str]] = {}
    taken: set[str] = set()
    for customer in customer_ids[: max(1, customers * 3 // 4)]:
        owned = dids_by_owner[customer] = []
        while len(owned) < 1 + customer % 5:
            did = "1" + rng.choice(prefixes) + f"{rng.randrange(10000):04d}"
            if did not in taken:
                taken.add(did)
                owned.append(did)
    return CallPlan(
        customer_ids=customer_ids,
        customer_texts={customer: str(customer) for customer in customer_ids},
        customer_weights=cumulative,
        primary_prefix=primary,
        provider_ids=[201 + index for index in range(providers)],
        nanp_prefixes=prefixes,
        dids_by_owner=dids_by_owner,
        all_dids=[did for dids in dids_by_owner.values() for did in dids],
    )


def did_inventory(plan: CallPlan) -> list[tuple[str, str]]:
    """(did, owner account) of every DID of the plan."""
    return [(did, str(owner)) for owner, dids in sorted(plan.dids_by_owner.items()) for did in dids]


def rate_center_rows(plan: CallPlan) -> list[tuple[str, str, str]]:
    """`prefix,rc,state` rows: a few prefixes left out (UNKNOWN), a few pooled 7-digit blocks."""
    areas = {npa: (state, centers) for npa, state, centers in NANP_AREAS}
    table_rng = random.Random("streamagg-rate-centers")
    rows = []
    for index, prefix in enumerate(plan.nanp_prefixes):
        if index % 7 == 3:
            continue  # not in the data: reported as UNKNOWN
        state, centers = areas[prefix[:3]]
        center = table_rng.choice(centers)
        rows.append((prefix, center, state))
        if index % 9 == 1:
            # A pooled thousands block whose rate center differs from its NPA-NXX.
            block_center = next(c for c in centers if c != center)
            rows.append((prefix + str(table_rng.randint(0, 9)), block_center, state))
    return rows
