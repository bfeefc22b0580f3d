"""The commands' producer to one topic: started with one clear line when Kafka refuses it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaConnectionError, KafkaError, UnknownTopicOrPartitionError

from streamagg.errors import BrokerUnavailable, StreamaggError
from streamagg.kafka_clients import (
    acked_producer,
    authentication_failure,
    fencing_producer,
    stop_quietly,
    unreachable,
)
from streamagg.settings import Settings


async def start_producer(
    settings: Settings, topic: str, transactional_id: str | None
) -> AIOKafkaProducer:
    address = settings.bootstrap_servers
    try:
        with quiet_aiokafka(logging.CRITICAL):  # its warnings would repeat our error
            if transactional_id is not None:
                producer = await fencing_producer(settings, transactional_id)
            else:
                producer = acked_producer(settings, linger_ms=5, client_id="streamagg-tools")
                try:
                    await producer.start()
                except BaseException:
                    await stop_quietly(producer)
                    raise
    except (KafkaConnectionError, OSError) as exc:
        with quiet_aiokafka(logging.CRITICAL):
            refused = await authentication_failure(settings)
        raise BrokerUnavailable(refused or unreachable(address, exc)) from None
    except KafkaError as exc:  # e.g. no ACL for the transactional id
        raise StreamaggError(
            f"starting a producer with transactional id {transactional_id!r} failed: {exc!r}"
        ) from None
    try:
        with quiet_aiokafka(logging.CRITICAL):  # "topic not found" while it is created
            await producer.partitions_for(topic)
    except UnknownTopicOrPartitionError:
        await producer.stop()
        raise StreamaggError(
            f"topic {topic!r} does not exist on {address} and the broker does not create it"
        ) from None
    return producer


@contextlib.contextmanager
def quiet_aiokafka(level: int) -> Iterator[None]:
    logger = logging.getLogger("aiokafka")
    previous = logger.level
    logger.setLevel(max(level, previous))
    try:
        yield
    finally:
        logger.setLevel(previous)
