"""Create the topics a worker needs, and check the internal one has the right partitions."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError, TopicAlreadyExistsError

from streamagg.errors import BrokerUnavailable, SettingsError
from streamagg.settings import Settings, env_name

log = logging.getLogger(__name__)


async def ensure_topics(settings: Settings) -> None:
    """Create missing topics; raise SettingsError when the batch topic's partitions differ."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        request_timeout_ms=15000,
        **settings.kafka_client_options(),
    )
    try:
        await admin.start()
    except (KafkaConnectionError, KafkaError, OSError) as exc:
        raise BrokerUnavailable(
            f"cannot reach Kafka at {settings.bootstrap_servers} ({exc})"
        ) from None
    try:
        wanted = {
            settings.topic: settings.partitions,
            settings.batches_topic: settings.partitions,
            settings.dlq_topic: settings.partitions,
        }
        # describe_topics of a missing topic would auto-create it with default partitions.
        present = set(await admin.list_topics()) & set(wanted)
        described = await admin.describe_topics(sorted(present)) if present else []
        partitions = {t["topic"]: len(t["partitions"]) for t in described}
        missing = [
            NewTopic(name, n, 1 if _single_broker(admin) else 3)
            for name, n in wanted.items()
            if name not in partitions
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
            log.info("created topics %s", ", ".join(t.name for t in missing))
        found = partitions.get(settings.batches_topic)
        if found is not None and found != settings.partitions:
            raise SettingsError(
                f"topic {settings.batches_topic} has {found} partitions but "
                f"{env_name('partitions')}={settings.partitions}; they must match"
            )
    finally:
        await admin.close()


def _single_broker(admin: AIOKafkaAdminClient) -> bool:
    brokers = admin._client.cluster.brokers()
    return len(brokers) < 3


async def wait_for_broker(settings: Settings, retry_seconds: float = 5.0) -> None:
    """ensure_topics, retrying with one clear line per attempt while the broker is down."""
    while True:
        try:
            await ensure_topics(settings)
            return
        except BrokerUnavailable as exc:
            log.warning("%s; retrying in %.0f s", exc, retry_seconds)
            await asyncio.sleep(retry_seconds)
