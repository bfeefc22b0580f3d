"""Fixtures shared by every test layer: a real Kafka broker and collision-free names."""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterator

import pytest

from tests.support.broker import BrokerError, PrivateBroker


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Bootstrap address ("127.0.0.1:PORT") of a real Kafka broker shared by the whole session.

    With STREAMAGG_TEST_BROKER=host:port set (as .ci/run does), that broker is used as is.
    Otherwise deploy/kafka/kafka-local starts a private single-node broker on a free port with
    its data in a temporary folder, and stops it when the session ends (or, via KAFKA_OWNER_PID,
    when the pytest process dies without tearing down). Tests sharing a broker
    must use fresh topic and group names: see ``unique_name``.
    """
    external = os.environ.get("STREAMAGG_TEST_BROKER", "").strip()
    if external:
        yield external.removeprefix("kafka://")
        return

    broker = PrivateBroker(tmp_path_factory.mktemp("kafka"))
    try:
        broker.start()
    except BrokerError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield broker.bootstrap
    finally:
        with contextlib.suppress(BrokerError):
            broker.stop()


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A fresh name for a topic, consumer group or transactional id, unique on a shared broker.

    Built from the test's name (for readable broker logs) and a random suffix; only characters
    Kafka accepts in topic names. Append your own suffixes when a test needs several names.
    """
    base = re.sub(r"[^a-zA-Z0-9._-]+", "-", request.node.name).strip("-.")[:60]
    return f"{base}-{uuid.uuid4().hex[:10]}"
