"""How the parent shows the ingest child's counters: each snapshot's growth, once."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from streamagg.agents.ingest_process import _GrowthMirror, _samples
from streamagg.metrics import create_metrics


def test_a_childs_counter_is_shown_by_its_growth_and_counts_again_after_a_restart() -> None:
    registry = CollectorRegistry()
    metrics = create_metrics(registry)
    lost = _GrowthMirror(metrics.messages_lost, "topic")
    lost.show({"cdr-events": 3.0})
    lost.show({"cdr-events": 5.0, "other": 1.0})
    lost.show({"cdr-events": 5.0, "other": 1.0})  # (a snapshot with nothing new)
    lost.restart()  # the child died and was started again: its counters begin at 0
    lost.show({"cdr-events": 2.0})

    def shown(topic: str) -> float | None:
        return registry.get_sample_value("streamagg_messages_lost_total", {"topic": topic})

    assert (shown("cdr-events"), shown("other")) == (7.0, 1.0)


def test_samples_are_read_by_their_labels() -> None:
    registry = CollectorRegistry()
    metrics = create_metrics(registry)
    metrics.consumer_lag.labels(topic="cdr-events", partition="3").set(12)
    metrics.messages_lost.labels(topic="cdr-events").inc(4)
    lag = _samples(registry, "streamagg_consumer_lag_messages", "topic", "partition")
    assert lag == {("cdr-events", "3"): 12.0}
    assert _samples(registry, "streamagg_messages_lost_total", "topic") == {("cdr-events",): 4.0}
