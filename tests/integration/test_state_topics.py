"""Topics that hold state on a real broker: a worker (and `dids load`) refuses one that lets
Kafka delete records by age or size, naming the topic, the setting and the fix; a compacted
one passes, and the same topic passes once an operator has made it compacted."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streamagg.errors import SettingsError
from streamagg.reference.dids import ensure_dids_topic
from streamagg.settings import Settings
from streamagg.topics import ensure_topics

PARTITIONS = 2


@pytest.fixture
def settings(kafka_bootstrap: str, unique_name: str) -> Settings:
    return Settings(
        broker="kafka://" + kafka_bootstrap,
        app_id=unique_name,
        topic=f"{unique_name}-cdrs",
        dlq_topic=f"{unique_name}-dlq",
        dids_topic=f"{unique_name}-dids",
        partitions=PARTITIONS,
    )


async def test_a_changelog_that_deletes_by_age_stops_the_worker_before_it_starts(
    settings: Settings, admin: AIOKafkaAdminClient
) -> None:
    # As an operator's tooling creates a topic with the cluster's defaults: delete, 7 days.
    await admin.create_topics([NewTopic(settings.changelog_topic, PARTITIONS, 1)])
    with pytest.raises(SettingsError) as refused:
        await ensure_topics(settings)
    message = str(refused.value)
    assert f"topic {settings.changelog_topic} holds streamagg's state" in message
    assert "cleanup.policy=delete, retention.ms=604800000" in message
    assert (
        f"--entity-name {settings.changelog_topic} --add-config cleanup.policy=compact" in message
    )

    # The fix the message names (kafka-configs.sh does the same through the admin API).
    resource = ConfigResource(
        ConfigResourceType.TOPIC, settings.changelog_topic, {"cleanup.policy": "compact"}
    )
    await admin.alter_configs([resource])
    assert await ensure_topics(settings) == 1


async def test_compacted_with_a_time_limit_is_refused_too(
    settings: Settings, admin: AIOKafkaAdminClient
) -> None:
    configs = {"cleanup.policy": "compact,delete", "retention.ms": "86400000"}
    topic = NewTopic(settings.changelog_topic, PARTITIONS, 1, topic_configs=configs)
    await admin.create_topics([topic])
    with pytest.raises(SettingsError) as refused:
        await ensure_topics(settings)
    assert "(cleanup.policy=compact,delete, retention.ms=86400000)" in str(refused.value)


async def test_topics_streamagg_creates_pass_and_are_compacted(settings: Settings) -> None:
    assert await ensure_topics(settings) == 1
    assert await ensure_dids_topic(settings) == [0]
    assert await ensure_topics(settings) == 1  # (a second start finds them as it made them)


async def test_a_did_topic_the_broker_created_on_first_write_is_refused(
    settings: Settings, kafka_bootstrap: str, admin: AIOKafkaAdminClient
) -> None:
    # A producer wrote to the topic before anything created it: automatic creation.
    await admin.create_topics([NewTopic(settings.dids_topic, 1, 1)])
    with pytest.raises(SettingsError, match=f"topic {settings.dids_topic} holds"):
        await ensure_dids_topic(settings)
    with pytest.raises(SettingsError, match=f"topic {settings.dids_topic} holds"):
        await ensure_topics(settings)


async def test_the_commands_say_it_in_one_line_and_exit_2(
    settings: Settings, kafka_bootstrap: str, admin: AIOKafkaAdminClient, tmp_path
) -> None:
    await admin.create_topics([NewTopic(settings.changelog_topic, PARTITIONS, 1)])
    await admin.create_topics([NewTopic(settings.dids_topic, 1, 1)])
    env = {
        **os.environ,
        "STREAMAGG_BROKER": settings.broker,
        "STREAMAGG_APP_ID": settings.app_id,
        "STREAMAGG_TOPIC": settings.topic,
        "STREAMAGG_DLQ_TOPIC": settings.dlq_topic,
        "STREAMAGG_DIDS_TOPIC": settings.dids_topic,
        "STREAMAGG_PARTITIONS": str(PARTITIONS),
        "STREAMAGG_DATA_DIR": str(tmp_path / "state"),
    }
    dids = tmp_path / "dids.csv"
    dids.write_text("did,account\n2125550001,acct-A\n", encoding="utf-8")
    for command, topic in (
        (["worker"], settings.changelog_topic),
        (["dids", "load", str(dids)], settings.dids_topic),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "streamagg.cli", *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2, done.stderr
        errors = [line for line in done.stderr.splitlines() if line.startswith("streamagg: ")]
        assert errors == [errors[0]] and f"topic {topic} holds streamagg's state" in errors[0]
        assert "Traceback" not in done.stderr


@pytest.mark.parametrize("which", ["dlq_topic", "batches_topic"])
async def test_a_topic_that_takes_smaller_records_than_streamagg_writes_is_refused(
    settings: Settings, admin: AIOKafkaAdminClient, which: str
) -> None:
    """A DLQ or batch topic created with a small max.message.bytes: the first dead-letter copy
    or batch over it was refused by the broker, and the stage retried that transaction for
    ever (one large message stopped the ingest)."""
    topic = getattr(settings, which)
    configs = {"max.message.bytes": "100000"}
    await admin.create_topics([NewTopic(topic, PARTITIONS, 1, topic_configs=configs)])
    with pytest.raises(SettingsError) as refused:
        await ensure_topics(settings)
    message = str(refused.value)
    assert f"topic {topic} takes records of at most 100,000 bytes (max.message.bytes)" in message
    assert f"--entity-name {topic} --add-config max.message.bytes=1048588" in message

    resource = ConfigResource(ConfigResourceType.TOPIC, topic, {"max.message.bytes": "1048588"})
    await admin.alter_configs([resource])
    await until_configured(admin, topic, "max.message.bytes", "1048588")  # (a busy broker lags)
    assert await ensure_topics(settings) == 1


async def until_configured(
    admin: AIOKafkaAdminClient, topic: str, name: str, value: str, timeout: float = 30
) -> None:
    """Until the broker describes the topic's config ``name`` as ``value``."""
    async with asyncio.timeout(timeout):
        while True:
            resource = ConfigResource(ConfigResourceType.TOPIC, topic, {name: None})
            (response,) = await admin.describe_configs([resource])
            entries = response.to_object()["resources"][0]["config_entries"]
            if any(e["config_names"] == name and e["config_value"] == value for e in entries):
                return
            await asyncio.sleep(0.2)


async def test_the_topics_streamagg_creates_take_its_largest_records_whatever_the_broker_default(
    settings: Settings, admin: AIOKafkaAdminClient
) -> None:
    await ensure_topics(settings)
    topics = [settings.batches_topic, settings.dlq_topic, settings.changelog_topic]
    resources = [
        ConfigResource(ConfigResourceType.TOPIC, t, {"max.message.bytes": None}) for t in topics
    ]
    (response,) = await admin.describe_configs(resources)
    for resource in response.to_object()["resources"]:
        (entry,) = [
            e for e in resource["config_entries"] if e["config_names"] == "max.message.bytes"
        ]
        assert int(entry["config_value"]) >= 1_000_000, resource["resource_name"]
        # Set on the topic itself (source 1, a topic's own setting; 5 is the broker's default):
        # a broker whose default is lower does not decide it.
        assert entry["config_source"] == 1, resource["resource_name"]
