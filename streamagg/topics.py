"""Create the topics a worker needs, and check the internal ones have the right partitions."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from streamagg.errors import BrokerUnavailable, SettingsError
from streamagg.kafka_clients import (
    admin_client,
    authentication_failure,
    replication_factor,
    unreachable,
)
from streamagg.settings import Settings, env_name

log = logging.getLogger(__name__)


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
        configs = {settings.changelog_topic: {"cleanup.policy": "compact"}}
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
        return _replication(settings, admin)
    finally:
        await admin.close()


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
