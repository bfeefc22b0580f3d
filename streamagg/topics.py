"""Create the topics a worker needs, and check the internal ones: the right partitions, and
the ones that hold state kept for ever (compacted, never deleted by age or size)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    TopicAlreadyExistsError,
    UnknownTopicOrPartitionError,
)

from streamagg.errors import BrokerUnavailable, SettingsError
from streamagg.kafka_clients import (
    MAX_BATCH_BYTES,
    admin_client,
    authentication_failure,
    replication_factor,
    unreachable,
)
from streamagg.settings import Settings, env_name

log = logging.getLogger(__name__)

UNKNOWN_TOPIC_OR_PARTITION = UnknownTopicOrPartitionError.errno


async def ensure_topics(settings: Settings) -> int:
    """Create missing topics; raise SettingsError when the batch topic's partitions differ.

    Returns the replication factor to use for topics (capped at the number of brokers)."""
    admin = admin_client(settings)
    try:
        await admin.start()
    except (KafkaConnectionError, KafkaError, OSError) as exc:
        refused = await authentication_failure(settings)
        raise BrokerUnavailable(refused or unreachable(settings.bootstrap_servers, exc)) from None
    try:
        wanted = {
            settings.topic: settings.partitions,
            settings.batches_topic: settings.partitions,
            settings.dlq_topic: settings.partitions,
            settings.changelog_topic: settings.partitions,
        }
        # (Kafka's default size limit, set explicitly: a lower broker-wide default would stop
        # the stages at their first large record)
        sized = {"max.message.bytes": str(KAFKA_DEFAULT_MESSAGE_BYTES)}
        configs = {
            settings.batches_topic: sized,
            settings.dlq_topic: sized,
            settings.changelog_topic: {"cleanup.policy": "compact", **sized},
        }
        # describe_topics of a missing topic would auto-create it with default partitions.
        present = set(await admin.list_topics()) & set(wanted)
        described = await admin.describe_topics(sorted(present)) if present else []
        partitions = {t["topic"]: len(t["partitions"]) for t in described}
        missing = [
            NewTopic(name, n, _replication(settings, admin), topic_configs=configs.get(name, {}))
            for name, n in wanted.items()
            if name not in partitions
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
            log.info("created topics %s", ", ".join(t.name for t in missing))
        # The state of batch partition n lives in changelog partition n: both must match.
        for internal in (settings.batches_topic, settings.changelog_topic):
            found = partitions.get(internal)
            if found is not None and found != settings.partitions:
                raise SettingsError(
                    f"topic {internal} has {found} partitions but "
                    f"{env_name('partitions')}={settings.partitions}; they must match"
                )
        await check_kept_for_ever(admin, [settings.changelog_topic, settings.dids_topic])
        written = [settings.batches_topic, settings.dlq_topic, settings.changelog_topic]
        await check_message_size(admin, written)
        return _replication(settings, admin)
    finally:
        await admin.close()


# Kafka's default max.message.bytes, and the least streamagg needs of a topic it writes to: its
# largest record (MAX_BATCH_BYTES) with room for the record batch's framing and headers.
KAFKA_DEFAULT_MESSAGE_BYTES = 1_048_588
MIN_MESSAGE_BYTES = MAX_BATCH_BYTES + 100_000
# The retention settings that decide whether Kafka ever deletes a topic's records.
_RETENTION_CONFIGS = ("cleanup.policy", "retention.ms", "retention.bytes")


async def check_kept_for_ever(admin: AIOKafkaAdminClient, topics: Sequence[str]) -> None:
    """Raise SettingsError when one of these existing topics holding state (the changelog: the
    reports; the DID inventory) lets Kafka delete records by age or size: every worker that
    rebuilds a partition from it (a lost disk, a move without a standby) would silently lose
    what was deleted. Topics that do not exist yet are skipped (streamagg creates them
    compacted); a broker that refuses to describe a topic's settings (ACLs) gets a warning."""
    configs = await _describe(admin, topics, _RETENTION_CONFIGS, "cleanup.policy=compact")
    for name, config in configs.items():
        problem = deleted_by_retention(config)
        if problem:
            raise SettingsError(
                f"topic {name} holds streamagg's state, but Kafka deletes its records "
                f"({problem}): rebuilding a worker's state from it would lose them. Make it "
                f"compacted only: kafka-configs.sh --bootstrap-server ... --alter "
                f"--entity-type topics --entity-name {name} --add-config cleanup.policy=compact"
            )


async def check_message_size(admin: AIOKafkaAdminClient, topics: Sequence[str]) -> None:
    """Raise SettingsError when one of these existing topics that streamagg writes to takes
    smaller records than streamagg writes (a batch, a changelog or dead-letter record of up to
    MAX_BATCH_BYTES): the broker would refuse the first such record, and the stage writing it
    would retry the same transaction for ever."""
    configs = await _describe(
        admin, topics, ("max.message.bytes",), f"max.message.bytes>={MIN_MESSAGE_BYTES}"
    )
    for name, config in configs.items():
        limit = int(config.get("max.message.bytes") or KAFKA_DEFAULT_MESSAGE_BYTES)
        if limit < MIN_MESSAGE_BYTES:
            raise SettingsError(
                f"topic {name} takes records of at most {limit:,} bytes (max.message.bytes); "
                f"streamagg writes records of up to {MAX_BATCH_BYTES:,} bytes to it, and the "
                f"first one the broker refused would stop the stage writing it. Raise it: "
                f"kafka-configs.sh --bootstrap-server ... --alter --entity-type topics "
                f"--entity-name {name} --add-config max.message.bytes={KAFKA_DEFAULT_MESSAGE_BYTES}"
            )


async def _describe(
    admin: AIOKafkaAdminClient, topics: Sequence[str], names: Sequence[str], wanted: str
) -> dict[str, dict[str, str | None]]:
    """The settings ``names`` of the topics that exist, by topic; a topic whose settings the
    broker does not describe (ACLs) gets a warning saying what it should have (``wanted``)."""
    resources = [ConfigResource(ConfigResourceType.TOPIC, t, dict.fromkeys(names)) for t in topics]
    found: dict[str, dict[str, str | None]] = {}
    for response in await admin.describe_configs(resources):
        for resource in response.to_object()["resources"]:
            name, code = resource["resource_name"], resource["error_code"]
            if code == UNKNOWN_TOPIC_OR_PARTITION:
                continue
            if code:
                log.warning(
                    "cannot check the settings of topic %s (Kafka error %d %s); make sure it "
                    "has %s",
                    name,
                    code,
                    resource["error_message"] or "",
                    wanted,
                )
                continue
            found[name] = {e["config_names"]: e["config_value"] for e in resource["config_entries"]}
    return found


def deleted_by_retention(config: Mapping[str, str | None]) -> str | None:
    """What makes Kafka delete records of a topic with these settings (None: nothing does;
    every key's latest record stays). Absent settings take Kafka's defaults (delete, 7 days)."""
    policies = {p.strip() for p in (config.get("cleanup.policy") or "delete").split(",")}
    if "delete" not in policies:
        return None
    values = {
        name: config.get(name) or default
        for name, default in (("retention.ms", "604800000"), ("retention.bytes", "-1"))
    }
    limits = [f"{name}={value}" for name, value in values.items() if value != "-1"]
    if not limits:
        return None  # (deleted by nothing: every record is kept, compacted or not)
    policy = ",".join(sorted(policies))
    return f"cleanup.policy={policy}, " + ", ".join(limits)


def _replication(settings: Settings, admin: AIOKafkaAdminClient) -> int:
    return replication_factor(settings, len(admin._client.cluster.brokers()))


async def wait_for_broker(settings: Settings, retry_seconds: float = 5.0) -> int:
    """ensure_topics, retrying with one clear line per attempt while the broker is down."""
    while True:
        try:
            return await ensure_topics(settings)
        except BrokerUnavailable as exc:
            log.warning("%s; retrying in %.0f s", exc, retry_seconds)
            await asyncio.sleep(retry_seconds)


async def cluster_id(settings: Settings) -> str | None:
    """The Kafka cluster's id, or None when the broker does not say (a very old broker)."""
    admin = admin_client(settings)
    try:
        await admin.start()
        found = (await admin.describe_cluster()).get("cluster_id")
    finally:
        await admin.close()
    return str(found) if found else None
