"""Per-tech-prefix metric labels are bounded (issue 14): a CDR chooses its tech prefix, and
50,000 distinct ones made a 27 MB /metrics that took seconds to render on the event loop."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from streamagg.cdr import Cdr
from streamagg.metrics import LATENCY_BUCKETS, OTHER_PREFIXES, create_metrics


def call(prefix: str, answered: bool = True) -> Cdr:
    return Cdr(
        callid=f"c-{prefix}",
        customer_id="42",
        start=1_795_608_000,
        provider_id="7",
        customer_charge=0,
        provider_charge=0,
        tech_prefix=prefix,
        duration=10_000_000 if answered else 0,
        answered=answered,
        has_dtmf=False,
        nanp_number="",
        cli="",
    )


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_prefixes_past_the_limit_are_counted_under_other() -> None:
    registry = CollectorRegistry()
    metrics = create_metrics(registry, max_prefixes=3)
    metrics.count_accepted([call("1#"), call("2#"), call("3#", answered=False)])
    metrics.count_accepted([call("4#"), call("5#"), call("5#", answered=False), call("1#")])
    assert value(registry, "streamagg_calls_total", tech_prefix="1#") == 2
    assert value(registry, "streamagg_calls_total", tech_prefix="4#") is None
    assert value(registry, "streamagg_calls_total", tech_prefix=OTHER_PREFIXES) == 3
    assert value(registry, "streamagg_calls_answered_total", tech_prefix=OTHER_PREFIXES) == 2
    assert value(registry, "streamagg_answered_seconds_total", tech_prefix=OTHER_PREFIXES) == 20
    assert value(registry, "streamagg_metrics_prefixes_folded_total") == 3
    # Every call is still counted once: totals over all labels equal the calls.
    assert value(registry, "streamagg_cdrs_total", outcome="accepted") == 7


def test_fifty_thousand_prefixes_keep_the_exposition_small() -> None:
    registry = CollectorRegistry()
    metrics = create_metrics(registry)  # the default limit, 1,000
    metrics.count_accepted(call(f"{n}#") for n in range(50_000))
    text = generate_latest(registry).decode()
    series = [line for line in text.splitlines() if line.startswith("streamagg_calls_total{")]
    assert len(series) == 1_001  # 1,000 prefixes and __other__
    # Four per-prefix counters (calls, answered, effective, answered seconds) of 1,001 series
    # each, with their _created samples: ~130 bytes a series, whatever the prefixes sent.
    assert len(text) < 600_000
    assert value(registry, "streamagg_metrics_prefixes_folded_total") == 49_000


@given(st.lists(st.floats(min_value=0, max_value=100, allow_nan=False), max_size=60))
def test_bulk_latency_observations_expose_what_one_observe_per_value_does(
    amounts: list[float],
) -> None:
    one_by_one, bulk = CollectorRegistry(), CollectorRegistry()
    latency = create_metrics(bulk).processing_latency
    reference = Histogram(
        "streamagg_processing_latency_seconds", "", buckets=LATENCY_BUCKETS, registry=one_by_one
    )
    for amount in [*amounts, *LATENCY_BUCKETS]:  # (bucket bounds exactly, too)
        reference.observe(amount)
    latency.observe_many([*amounts, *LATENCY_BUCKETS])
    name = "streamagg_processing_latency_seconds"
    for bound in [*LATENCY_BUCKETS, float("inf")]:
        le = "+Inf" if bound == float("inf") else str(bound)
        assert value(bulk, f"{name}_bucket", le=le) == value(one_by_one, f"{name}_bucket", le=le)
    assert value(bulk, f"{name}_count") == value(one_by_one, f"{name}_count")
    assert value(bulk, f"{name}_sum") == pytest.approx(value(one_by_one, f"{name}_sum"))
