"""Which topic settings let Kafka delete the records of a topic that holds state."""

from __future__ import annotations

import pytest

from streamagg.topics import deleted_by_retention

WEEK_MS = "604800000"


@pytest.mark.parametrize(
    "config",
    [
        {"cleanup.policy": "compact", "retention.ms": WEEK_MS, "retention.bytes": "-1"},
        # (compaction alone ignores the retention settings: every key's latest record stays)
        {"cleanup.policy": "compact", "retention.ms": "3600000", "retention.bytes": "1024"},
        {"cleanup.policy": "delete", "retention.ms": "-1", "retention.bytes": "-1"},
        {"cleanup.policy": "compact,delete", "retention.ms": "-1", "retention.bytes": "-1"},
    ],
)
def test_topics_that_keep_every_key_are_accepted(config: dict[str, str]) -> None:
    assert deleted_by_retention(config) is None


@pytest.mark.parametrize(
    ("config", "named"),
    [
        # Kafka's defaults: what the broker's automatic creation of a topic gives it.
        ({}, "cleanup.policy=delete, retention.ms=604800000"),
        (
            {"cleanup.policy": "delete", "retention.ms": WEEK_MS, "retention.bytes": "-1"},
            "cleanup.policy=delete, retention.ms=604800000",
        ),
        (
            {"cleanup.policy": "compact, delete", "retention.ms": "3600000"},
            "cleanup.policy=compact,delete, retention.ms=3600000",
        ),
        (
            {"cleanup.policy": "delete,compact", "retention.ms": "-1", "retention.bytes": "10"},
            "cleanup.policy=compact,delete, retention.bytes=10",
        ),
    ],
)
def test_topics_that_delete_records_by_age_or_size_are_named_with_the_setting(
    config: dict[str, str], named: str
) -> None:
    assert deleted_by_retention(config) == named
