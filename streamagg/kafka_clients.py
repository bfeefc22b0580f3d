"""The Kafka clients streamagg's stages use, built one way from the settings.

Transactional producers fence: starting one with a transactional id aborts the open transaction
of any earlier producer with that id and makes every later call of that producer fail with
ProducerFenced. Readers use read_committed: they see committed transactions only, whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.conn import create_conn
from aiokafka.errors import (
    AuthenticationFailedError,
    IllegalSaslStateError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)
from prometheus_client import Gauge

from streamagg.settings import Settings, env_name

log = logging.getLogger(__name__)

# The broker's default message limit is 1 MiB; stay under it with room for headers.
MAX_BATCH_BYTES = 900_000
MAX_REQUEST_BYTES = 4 * 1024 * 1024
# A killed worker's partitions wait this long for a new owner: short, for fast recovery.
SESSION_TIMEOUT_MS = 10_000
TRANSACTION_TIMEOUT_MS = 60_000
# A transactional producer's wait before it sends a batch again after a retriable error. Brokers
# since Kafka 3.6 check with the transaction coordinator that a transactional batch's partition
# is in the transaction (KIP-890); a retriable failure of that check, the usual one being the
# coordinator still finishing the previous transaction of the same producer, reaches clients of
# older Produce versions (aiokafka's) as NOT_ENOUGH_REPLICAS, even on a single broker. aiokafka's
# default 100 ms held a whole poll's transaction that long each time (a few times a second
# under a live stream in the bench, none in a backlog); the previous transaction's markers take
# ~20 ms, the wait aiokafka itself uses for the same race on AddPartitionsToTxn.
TRANSACTION_RETRY_BACKOFF_MS = 20
# How long an admin or producer request may take before it counts as "cannot reach Kafka".
REQUEST_TIMEOUT_MS = 15_000
# How often the ingest stage's group looks for partitions added to the input topic (the
# softswitch side may add some while workers run); a new partition is read from its first CDR.
INPUT_METADATA_MAX_AGE_MS = 10_000
# Stages read in large polls: fetch up to this much per partition and per request.
PARTITION_FETCH_BYTES = 8 * 1024 * 1024
FETCH_BYTES = 32 * 1024 * 1024


def unreachable(address: str, exc: BaseException) -> str:
    """The one line an operator reads when the cluster cannot be reached, naming its address.
    (aiokafka's own text for a refused connection is a list of socket tuples: say more.)"""
    if isinstance(exc, KafkaConnectionError | OSError):
        detail = f"no connection; check {env_name('broker')} and that the broker runs"
    else:
        detail = str(exc).strip() or type(exc).__name__
    return f"cannot reach Kafka at {address} ({detail})"


def kafka_failure(address: str, exc: BaseException) -> str:
    """What went wrong in a stage's talk with Kafka: "cannot reach" only when the connection
    is what failed; anything else (a refused request, an I/O error) by its own name."""
    if isinstance(exc, KafkaConnectionError | KafkaTimeoutError | ConnectionError | TimeoutError):
        return unreachable(address, exc)
    detail = str(exc).strip()
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


# A refused login is told apart from a broker that is down by one connection per address.
AUTH_PROBE_TIMEOUT_S = 15.0
_AUTH_ERRORS = (
    AuthenticationFailedError,
    IllegalSaslStateError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)


async def authentication_failure(settings: Settings) -> str | None:
    """Say so when the brokers refuse the SASL login, or None (no SASL, down, other causes).

    aiokafka only logs a refused login and then reports "Unable to bootstrap", which reads like
    a broker that is down; one direct connection per address tells the two apart.
    """
    if not settings.security_protocol.startswith("SASL"):
        return None
    options: dict[str, Any] = dict(settings.kafka_client_options())
    for address in settings.broker_hosts:
        host, _, port = address.rpartition(":")
        try:
            conn = await asyncio.wait_for(
                create_conn(host.strip("[]"), int(port), **options), AUTH_PROBE_TIMEOUT_S
            )
        except _AUTH_ERRORS as exc:
            given = exc.args[0] if exc.args else None  # the broker's text, or the connection
            reason = (given if isinstance(given, str) and given else exc.description).rstrip(".")
            return (
                f"authentication failed at Kafka broker {address} "
                f"({settings.sasl_mechanism} as user {settings.sasl_username!r}): {reason}; "
                f"check {env_name('sasl_username')}, {env_name('sasl_password')} and "
                f"{env_name('sasl_mechanism')}"
            )
        except (KafkaError, OSError, TimeoutError, ValueError):
            continue
        conn.close()
    return None


def admin_client(settings: Settings) -> AIOKafkaAdminClient:
    """An admin client (topic creation, cluster description); start() it, close() it."""
    return AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers,
        request_timeout_ms=REQUEST_TIMEOUT_MS,
        **settings.kafka_client_options(),
    )


def replication_factor(settings: Settings, brokers: int) -> int:
    """The one rule for every topic streamagg creates: STREAMAGG_REPLICATION_FACTOR, capped
    at the brokers the cluster has (a one-broker development cluster gets 1)."""
    return max(1, min(settings.replication_factor, brokers))


def common_options(settings: Settings) -> dict[str, Any]:
    return {"bootstrap_servers": settings.bootstrap_servers, **settings.kafka_client_options()}


async def fencing_producer(settings: Settings, transactional_id: str) -> AIOKafkaProducer:
    """A started transactional producer that has fenced every earlier one of its id."""
    producer = AIOKafkaProducer(
        transactional_id=transactional_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=0,
        max_batch_size=MAX_BATCH_BYTES,
        max_request_size=MAX_REQUEST_BYTES,
        retry_backoff_ms=TRANSACTION_RETRY_BACKOFF_MS,
        transaction_timeout_ms=TRANSACTION_TIMEOUT_MS,
        **common_options(settings),
    )
    try:
        await producer.start()
        # The producer id (and with it the fencing of earlier producers) is obtained before
        # the first transaction: do it now, while nothing is at stake.
        await producer.begin_transaction()
        await producer.abort_transaction()
    except BaseException:
        await stop_quietly(producer)
        raise
    return producer


def committed_reader(settings: Settings, **options: Any) -> AIOKafkaConsumer:
    """A consumer of no group that reads committed records only (assign and seek it)."""
    return AIOKafkaConsumer(**{**_reader_options(settings), **options})


def acked_producer(settings: Settings, linger_ms: int, **options: Any) -> AIOKafkaProducer:
    """A plain producer whose sends the brokers acknowledge only once every in-sync replica
    has them (the commands' producer: DID inventory, generator, replay); not started."""
    return AIOKafkaProducer(
        acks="all",
        linger_ms=linger_ms,
        max_batch_size=MAX_BATCH_BYTES,
        request_timeout_ms=REQUEST_TIMEOUT_MS,
        **{**common_options(settings), **options},
    )


def group_reader(settings: Settings, group_id: str, **options: Any) -> AIOKafkaConsumer:
    """A member of a consumer group that reads committed records only, in large polls, and
    commits its offsets itself (or in transactions); options add to or override these."""
    return AIOKafkaConsumer(
        **{
            **_reader_options(settings),
            "group_id": group_id,
            "session_timeout_ms": SESSION_TIMEOUT_MS,
            "heartbeat_interval_ms": SESSION_TIMEOUT_MS // 3,
            **options,
        }
    )


def _reader_options(settings: Settings) -> dict[str, Any]:
    return {
        "enable_auto_commit": False,
        "isolation_level": "read_committed",
        "auto_offset_reset": "earliest",
        "max_partition_fetch_bytes": PARTITION_FETCH_BYTES,
        "fetch_max_bytes": FETCH_BYTES,
        **common_options(settings),
    }


async def stop_quietly(client: AIOKafkaProducer | AIOKafkaConsumer, timeout: float = 10) -> None:
    """Stop a client that may be fenced or cut off from the cluster, without raising."""
    with contextlib.suppress(Exception, asyncio.TimeoutError):
        await asyncio.wait_for(client.stop(), timeout)


class LagSeries:
    """A consumer's lag per partition on one gauge (streamagg_consumer_lag_messages): the
    messages between its position and the partition's high watermark. Every stage shows lag
    through one of these: a series appears with the first position known and goes when the
    partition goes (an old owner's series would otherwise stay, frozen, after a rebalance)."""

    def __init__(self, gauge: Gauge) -> None:
        self.gauge = gauge
        self._shown: set[tuple[str, str]] = set()

    def show(self, topic: str, partition: int | str, lag: float) -> None:
        key = (topic, str(partition))
        self.gauge.labels(topic=key[0], partition=key[1]).set(max(0.0, lag))
        self._shown.add(key)

    def show_position(self, consumer: AIOKafkaConsumer, tp: TopicPartition, position: int) -> None:
        """The lag of ``tp`` when ``position`` is the next offset to read (if the consumer
        knows the high watermark yet)."""
        highwater = consumer.highwater(tp)
        if highwater is not None:
            self.show(tp.topic, tp.partition, highwater - position)

    def forget(self, topic: str, partition: int | str) -> None:
        key = (topic, str(partition))
        self._shown.discard(key)
        with contextlib.suppress(KeyError):
            self.gauge.remove(*key)

    def show_only(self, lags: Mapping[tuple[str, str], float]) -> None:
        """Exactly these series (another process's, mirrored): set them, forget the rest."""
        for topic, partition in self._shown - lags.keys():
            self.forget(topic, partition)
        for (topic, partition), lag in lags.items():
            self.show(topic, partition, lag)
