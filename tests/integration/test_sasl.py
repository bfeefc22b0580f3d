"""A secured cluster: the CLI commands and a worker over SASL_PLAINTEXT with SCRAM-SHA-256.

A second, private broker is started with kafka-local's extra SASL listener (the session's broker
has none). That broker also has its PLAINTEXT listener; every client here uses the SASL port.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from prometheus_client.parser import text_string_to_metric_families

from tests.support.worker import WorkerProcess, free_port, http_get, worker_env

REPO_ROOT = Path(__file__).resolve().parents[2]
KAFKA_LOCAL = REPO_ROOT / "deploy" / "kafka" / "kafka-local"
BROKER_START_TIMEOUT_S = 600  # a first-time jar fetch plus the broker's own start timeout
COMMAND_TIMEOUT_S = 90  # a CLI command, even one that fails, ends well within this
STEP_TIMEOUT_S = 60  # one broker round trip or one CDR through a worker
USER = "streamagg-client"
PASSWORD = "s3cret-Pass"
MECHANISM = "SCRAM-SHA-256"


@dataclass(frozen=True)
class SaslBroker:
    sasl_address: str  # 127.0.0.1:PORT of the SASL_PLAINTEXT listener

    def settings_env(self, password: str = PASSWORD) -> dict[str, str]:
        """The STREAMAGG_* variables of a client of this broker."""
        return {
            "STREAMAGG_BROKER": f"kafka://{self.sasl_address}",
            "STREAMAGG_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "STREAMAGG_SASL_MECHANISM": MECHANISM,
            "STREAMAGG_SASL_USERNAME": USER,
            "STREAMAGG_SASL_PASSWORD": password,
        }

    def client_options(self) -> dict[str, object]:
        """aiokafka options of the test's own clients (independent of streamagg's code)."""
        return {
            "bootstrap_servers": self.sasl_address,
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": MECHANISM,
            "sasl_plain_username": USER,
            "sasl_plain_password": PASSWORD,
        }


def _kafka_local(command: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(KAFKA_LOCAL), command],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SaslBroker]:
    port, sasl_port = free_port(), free_port()
    while sasl_port == port:
        sasl_port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("KAFKA_")},
        "KAFKA_PORT": str(port),
        "KAFKA_SASL_PORT": str(sasl_port),
        "KAFKA_SASL_USER": USER,
        "KAFKA_SASL_PASSWORD": PASSWORD,
        "KAFKA_DIR": str(tmp_path_factory.mktemp("kafka-sasl")),
        # Should the session be killed before its teardown, the broker still stops.
        "KAFKA_OWNER_PID": str(os.getpid()),
    }
    started = _kafka_local("start", env, timeout=BROKER_START_TIMEOUT_S)
    if started.returncode != 0:
        pytest.fail(
            f"kafka-local start (SASL) failed (exit {started.returncode}):\n"
            f"{started.stdout}{started.stderr}",
            pytrace=False,
        )
    try:
        yield SaslBroker(f"127.0.0.1:{sasl_port}")
    finally:
        _kafka_local("stop", env, timeout=120)


def cli_env(broker: SaslBroker, name: str, password: str = PASSWORD) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMAGG_")}
    env.update(broker.settings_env(password))
    env["STREAMAGG_DIDS_TOPIC"] = f"{name}-dids"
    env["STREAMAGG_TOPIC"] = f"{name}-cdrs"
    return env


def streamagg(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "streamagg.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )


async def read_topic(broker: SaslBroker, topic: str, expected: int) -> list[ConsumerRecord]:
    """Every record of ``topic`` from its beginning, read over SASL, until ``expected`` came."""
    consumer = AIOKafkaConsumer(
        topic,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **broker.client_options(),
    )
    await consumer.start()
    records: list[ConsumerRecord] = []
    try:
        async with asyncio.timeout(STEP_TIMEOUT_S):
            while len(records) < expected:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    records.extend(batch)
    finally:
        await consumer.stop()
    return records


def test_dids_load_over_sasl(sasl_broker: SaslBroker, unique_name: str, tmp_path: Path) -> None:
    dids = tmp_path / "dids.csv"
    dids.write_text("did,account\n2125550100,42\n+1 (212) 555-0101,43\n", encoding="utf-8")

    result = streamagg(cli_env(sasl_broker, unique_name), "dids", "load", str(dids))

    assert result.returncode == 0, result.stderr
    assert "published 2" in result.stdout
    records = asyncio.run(read_topic(sasl_broker, f"{unique_name}-dids", 2))
    owners = {r.key.decode(): orjson.loads(r.value)["account"] for r in records}
    assert owners == {"2125550100": "42", "2125550101": "43"}


def test_replay_over_sasl(sasl_broker: SaslBroker, unique_name: str, tmp_path: Path) -> None:
    lines = [
        orjson.dumps({"callid": f"c{i}", "dt": "2026-01-05T10:00:00Z", "customer_id": "42"})
        for i in range(3)
    ]
    export = tmp_path / "cdrs.jsonl"
    export.write_bytes(b"\n".join(lines) + b"\n")

    result = streamagg(cli_env(sasl_broker, unique_name), "replay", str(export))

    assert result.returncode == 0, result.stderr
    records = asyncio.run(read_topic(sasl_broker, f"{unique_name}-cdrs", 3))
    assert sorted(r.value for r in records) == sorted(lines)
    assert {r.key for r in records} == {b"42"}


@pytest.mark.parametrize("command", ["dids load", "replay"])
def test_wrong_password_is_one_clear_line(
    sasl_broker: SaslBroker, unique_name: str, tmp_path: Path, command: str
) -> None:
    dids = tmp_path / "dids.csv"
    dids.write_text("did,account\n2125550100,42\n", encoding="utf-8")
    export = tmp_path / "cdrs.jsonl"
    export.write_text('{"callid": "c1", "dt": "2026-01-05T10:00:00Z", "customer_id": "42"}\n')
    args = {"dids load": ["dids", "load", str(dids)], "replay": ["replay", str(export)]}[command]

    # subprocess.run's timeout bounds the wait: a hang fails the test with TimeoutExpired.
    result = streamagg(cli_env(sasl_broker, unique_name, password="not-the-password"), *args)

    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "authentication failed" in lines[0].lower()
    assert sasl_broker.sasl_address in lines[0]
    assert "not-the-password" not in result.stderr + result.stdout


def accepted_cdrs(worker: WorkerProcess) -> float:
    text = http_get(f"{worker.base_url}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "streamagg_cdrs_total" and sample.labels["outcome"] == "accepted":
                return sample.value
    return 0.0


async def produce_over_sasl(broker: SaslBroker, topic: str, value: bytes, key: bytes) -> None:
    producer = AIOKafkaProducer(acks="all", **broker.client_options())
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


def start_worker(
    broker: SaslBroker, name: str, tmp_path: Path, password: str = PASSWORD
) -> WorkerProcess:
    data_dir = tmp_path / "worker" / "data"
    data_dir.mkdir(parents=True)
    port = free_port()
    env = worker_env(
        broker.sasl_address, name, data_dir, port, None, **broker.settings_env(password)
    )
    return WorkerProcess(env, data_dir, port, tmp_path / "worker.log").start()


def test_worker_over_sasl_processes_a_cdr(
    sasl_broker: SaslBroker, unique_name: str, tmp_path: Path
) -> None:
    worker = start_worker(sasl_broker, unique_name, tmp_path)
    try:
        worker.wait_ready()
        dt = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        cdr = {"callid": "sasl-1", "dt": dt, "customer_id": "42", "duration": 30, "sip_code": 200}
        asyncio.run(produce_over_sasl(sasl_broker, f"{unique_name}-cdrs", orjson.dumps(cdr), b"42"))
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while accepted_cdrs(worker) < 1 and time.monotonic() < deadline:
            time.sleep(0.3)
        assert accepted_cdrs(worker) == 1, worker.tail()
    finally:
        worker.stop()


def test_worker_with_wrong_password_logs_it_and_keeps_retrying(
    sasl_broker: SaslBroker, unique_name: str, tmp_path: Path
) -> None:
    worker = start_worker(sasl_broker, unique_name, tmp_path, password="not-the-password")

    def refusals() -> list[str]:
        text = worker.log_path.read_text(errors="replace") if worker.log_path.exists() else ""
        return [
            line
            for line in text.splitlines()
            if "authentication failed" in line.lower() and sasl_broker.sasl_address in line
        ]

    try:
        deadline = time.monotonic() + STEP_TIMEOUT_S
        # Two refusals: the worker tried again after the first one instead of giving up.
        while len(refusals()) < 2 and time.monotonic() < deadline:
            assert worker.process is not None and worker.process.poll() is None, worker.tail()
            time.sleep(0.3)
        assert len(refusals()) >= 2, worker.tail()
        assert worker.process is not None and worker.process.poll() is None, worker.tail()
        log = worker.log_path.read_text(errors="replace")
        assert "Traceback" not in log
        assert "not-the-password" not in log
    finally:
        worker.stop()
