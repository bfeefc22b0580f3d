"""Fixtures shared by every test layer: a real Kafka broker and collision-free names."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.common import BROKER_VARS
from tests.support.worker import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
KAFKA_LOCAL = REPO_ROOT / "deploy" / "kafka" / "kafka-local"
# Room for a first-time jar fetch plus the broker's own start timeout.
BROKER_START_TIMEOUT_S = 600
# kafka-local settings that name one broker; the private test broker never inherits them.


def _kafka_local(command: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(KAFKA_LOCAL), command],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


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

    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if k not in BROKER_VARS},
        "KAFKA_PORT": str(port),
        "KAFKA_DIR": str(tmp_path_factory.mktemp("kafka")),
        # Should the session be killed before its teardown, the broker still stops.
        "KAFKA_OWNER_PID": str(os.getpid()),
    }
    started = _kafka_local("start", env, timeout=BROKER_START_TIMEOUT_S)
    if started.returncode != 0:
        pytest.fail(
            f"kafka-local start failed (exit {started.returncode}):\n"
            f"{started.stdout}{started.stderr}",
            pytrace=False,
        )
    try:
        yield f"127.0.0.1:{port}"
    finally:
        _kafka_local("stop", env, timeout=120)


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A fresh name for a topic, consumer group or transactional id, unique on a shared broker.

    Built from the test's name (for readable broker logs) and a random suffix; only characters
    Kafka accepts in topic names. Append your own suffixes when a test needs several names.
    """
    base = re.sub(r"[^a-zA-Z0-9._-]+", "-", request.node.name).strip("-.")[:60]
    return f"{base}-{uuid.uuid4().hex[:10]}"
