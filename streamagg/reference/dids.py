"""The DID inventory: every worker's copy of the compacted DID topic (SPEC §2, reference data)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    TopicAlreadyExistsError,
    TopicAuthorizationFailedError,
    for_code,
)

from streamagg.cdr.model import is_account_id
from streamagg.errors import BrokerUnavailable, SettingsError
from streamagg.kafka_clients import (
    REQUEST_TIMEOUT_MS,
    admin_client,
    committed_reader,
    replication_factor,
    unreachable,
)
from streamagg.numbers import normalise_number
from streamagg.settings import Settings
from streamagg.topics import check_kept_for_ever

__all__ = [
    "DidInventory",
    "apply_record",
    "broker_unavailable",
    "ensure_dids_topic",
    "read_inventory",
]

_log = logging.getLogger(__name__)

_RETRY_FIRST_S = 1.0
_RETRY_MAX_S = 30.0
_TOLERATED_CREATE_ERRORS = (
    TopicAlreadyExistsError,
    TopicAuthorizationFailedError,
    ClusterAuthorizationFailedError,
)


def apply_record(mapping: dict[str, str], key: bytes | None, value: bytes | None) -> str | None:
    """Apply one record of the DID topic to ``mapping``; return a problem or None.

    A record that cannot be used changes nothing: the previous owner, if any, stays.
    """
    if key is None:
        return "record without a key (the key must be the DID)"
    try:
        raw = key.decode("utf-8")
    except UnicodeDecodeError:
        return f"key {key[:40]!r} is not UTF-8"
    # The loader writes normalised keys; normalising again makes a hand-written key usable.
    did = normalise_number(raw)
    if not did:
        return f"key {raw[:40]!r} is not a DID (no digits)"
    if value is None:
        mapping.pop(did, None)
        return None
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError:
        return f"DID {did}: value is not JSON"
    account = document.get("account") if isinstance(document, dict) else None
    if isinstance(account, int) and not isinstance(account, bool):
        account = str(account)
    if not isinstance(account, str) or not account.strip():
        return f'DID {did}: value has no "account" string'
    if not is_account_id(account.strip()):
        return f"DID {did}: account {account[:40]!r} is not a customer id (control characters?)"
    mapping[did] = account.strip()
    return None


async def ensure_dids_topic(settings: Settings) -> list[int]:
    """Create the compacted DID topic if it is missing; return its partition ids.

    Raises BrokerUnavailable naming the address when the cluster cannot be reached.
    """
    admin = admin_client(settings)
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        replicas = replication_factor(settings, len(cluster.get("brokers", ())))
        topic = NewTopic(
            settings.dids_topic,
            num_partitions=1,
            replication_factor=replicas,
            topic_configs={"cleanup.policy": "compact"},
        )
        response = await admin.create_topics([topic])
        for entry in response.topic_errors:
            error = for_code(entry[1])
            # Without the right to create topics, an existing topic (made by the admins) is fine.
            if entry[1] != 0 and error not in _TOLERATED_CREATE_ERRORS:
                raise error(f"cannot create topic {settings.dids_topic}: {entry[-1]}")
        await check_kept_for_ever(admin, [settings.dids_topic])
        return await _partitions(admin, settings)
    except (KafkaError, OSError) as exc:
        raise broker_unavailable(settings, exc) from exc
    finally:
        await admin.close()


async def read_inventory(settings: Settings) -> dict[str, str]:
    """The whole DID inventory as published now: the topic read up to its end offsets."""
    partitions = await ensure_dids_topic(settings)
    consumer = _consumer(settings)
    owners: dict[str, str] = {}
    try:
        tps = await _assign_from_beginning(consumer, settings.dids_topic, partitions)
        ends = await consumer.end_offsets(tps)
        await _read_to_end(consumer, ends, owners, _log, stall_s=REQUEST_TIMEOUT_MS / 1000)
        return owners
    except (KafkaError, OSError) as exc:
        raise broker_unavailable(settings, exc) from exc
    finally:
        await consumer.stop()


class DidInventory:
    """Every worker's copy of the DID inventory, read from the compacted topic."""

    def __init__(self, settings: Settings, *, log: logging.Logger | None = None) -> None:
        self._settings = settings
        self._log = log or _log
        self._owners: dict[str, str] = {}
        self._loaded = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._reading = False

    def owner(self, did: str) -> str:
        """The account owning ``did`` (already normalised), or "" when it is no DID of ours."""
        return self._owners.get(did, "")

    @property
    def loaded(self) -> bool:
        """True once the topic was read up to the end offsets taken at start."""
        return self._loaded.is_set()

    def __len__(self) -> int:
        return len(self._owners)

    async def start(self) -> None:
        """Start reading the topic in the background; returns at once."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="did-inventory")

    async def wait_loaded(self, timeout: float | None = None) -> None:
        """Return once the inventory is loaded; raise TimeoutError after ``timeout`` seconds."""
        await asyncio.wait_for(self._loaded.wait(), timeout)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        delay = _RETRY_FIRST_S
        warned = False
        while True:
            self._reading = False
            try:
                await self._follow(warned)
            except (BrokerUnavailable, KafkaError, OSError) as exc:
                if self._reading:  # it worked for a while: a new outage deserves a new line
                    warned, delay = False, _RETRY_FIRST_S
                # One clear line per outage, then quiet retries until the broker is back.
                self._log.log(
                    logging.DEBUG if warned else logging.WARNING,
                    "DID inventory: %s; retrying",
                    broker_unavailable(self._settings, exc),
                )
                warned = True
            except SettingsError as exc:  # (the topic deletes records: said until it is mended)
                self._log.error("DID inventory: %s; retrying", exc)
            except Exception:
                self._log.exception("DID inventory: the reader failed; restarting it")
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX_S)

    async def _follow(self, after_outage: bool) -> None:
        """Read the topic from its beginning into a fresh mapping, then keep applying updates."""
        partitions = await ensure_dids_topic(self._settings)
        consumer = _consumer(self._settings)
        try:
            tps = await _assign_from_beginning(consumer, self._settings.dids_topic, partitions)
            ends = await consumer.end_offsets(tps)
            self._reading = True
            if after_outage:
                self._log.info("DID inventory: reached %s again", self._settings.bootstrap_servers)
            # A re-read after a failure fills a new mapping; the old one serves meanwhile.
            owners: dict[str, str] = {}
            await _read_to_end(consumer, ends, owners, self._log)
            self._owners = owners
            if not self.loaded:
                self._log.info(
                    "DID inventory loaded from %s: %d DIDs", self._settings.dids_topic, len(owners)
                )
            self._loaded.set()
            while True:
                await _read_batch(consumer, owners, self._log)
        finally:
            await consumer.stop()


def _consumer(settings: Settings) -> AIOKafkaConsumer:
    return committed_reader(settings, request_timeout_ms=REQUEST_TIMEOUT_MS)


async def _assign_from_beginning(
    consumer: AIOKafkaConsumer, topic: str, partitions: list[int]
) -> list[TopicPartition]:
    await consumer.start()
    tps = [TopicPartition(topic, p) for p in partitions]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    return tps


async def _read_to_end(
    consumer: AIOKafkaConsumer,
    ends: dict[TopicPartition, int],
    owners: dict[str, str],
    log: logging.Logger,
    stall_s: float | None = None,
) -> None:
    """Apply records until every partition's position reaches ``ends``.

    With ``stall_s``, give up (KafkaTimeoutError) when no record arrives for that long.
    """
    loop = asyncio.get_running_loop()
    last_progress = loop.time()
    while True:
        behind = [tp for tp, end in ends.items() if await consumer.position(tp) < end]
        if not behind:
            return
        if await _read_batch(consumer, owners, log):
            last_progress = loop.time()
        elif stall_s is not None and loop.time() - last_progress > stall_s:
            raise KafkaTimeoutError(f"no record of {behind[0].topic} for {stall_s:.0f} s")


async def _read_batch(
    consumer: AIOKafkaConsumer, owners: dict[str, str], log: logging.Logger
) -> int:
    """Apply the next records (waiting up to a second for them); return how many came."""
    count = 0
    batches = await consumer.getmany(timeout_ms=1000, max_records=10_000)
    for tp, records in batches.items():
        count += len(records)
        for record in records:
            problem = apply_record(owners, record.key, record.value)
            if problem is not None:
                log.warning(
                    "DID inventory: skipped %s/%d/%d: %s",
                    tp.topic,
                    tp.partition,
                    record.offset,
                    problem,
                )
    return count


async def _partitions(admin: AIOKafkaAdminClient, settings: Settings) -> list[int]:
    topic = settings.dids_topic
    # Metadata of a topic created a moment ago can lag behind; ask again briefly.
    for _ in range(50):
        for described in await admin.describe_topics([topic]):
            ids = sorted(p["partition"] for p in described.get("partitions", ()))
            if described.get("topic") == topic and described.get("error_code") == 0 and ids:
                return ids
        await asyncio.sleep(0.1)
    raise BrokerUnavailable(
        f"the Kafka cluster at {settings.bootstrap_servers} has no topic {topic}, "
        "and streamagg could not create it"
    )


def broker_unavailable(settings: Settings, exc: BaseException) -> BrokerUnavailable:
    """The one line an operator reads when the cluster cannot be used, naming its address."""
    if isinstance(exc, BrokerUnavailable):
        return exc
    if isinstance(exc, KafkaConnectionError | OSError):
        return BrokerUnavailable(unreachable(settings.bootstrap_servers, exc))
    reason = str(exc).strip() or type(exc).__name__
    return BrokerUnavailable(f"the Kafka cluster at {settings.bootstrap_servers} failed: {reason}")
