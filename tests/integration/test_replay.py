"""`streamagg replay` and `streamagg generate` against a real broker, read back exactly."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections import Counter
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import DefaultPartitioner

from streamagg.cli.cdrgen import CdrGenerator, GeneratorOptions
from streamagg.cli.generate import epoch_seconds

REPO_ROOT = Path(__file__).resolve().parents[2]
STEP_TIMEOUT_S = 60
PARTITIONS = 3
Record = tuple[int, bytes | None, bytes]  # partition, key, value


async def create_topic(bootstrap: str, topic: str) -> None:
    """A topic with several partitions, so keyed sending is tested beyond one partition."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
        async with asyncio.timeout(STEP_TIMEOUT_S):
            while not all(
                t["error_code"] == 0 and len(t["partitions"]) == PARTITIONS
                and all(p["leader"] >= 0 for p in t["partitions"])
                for t in await admin.describe_topics([topic])
            ):  # fmt: skip
                await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def streamagg(bootstrap: str, topic: str, *args: str) -> tuple[int, str]:
    """Run the `streamagg` command as a user would; return its exit code and stderr."""
    env = {**os.environ, "STREAMAGG_BROKER": f"kafka://{bootstrap}", "STREAMAGG_TOPIC": topic}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streamagg.cli", *args,
        cwd=REPO_ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _stdout, stderr = await asyncio.wait_for(process.communicate(), STEP_TIMEOUT_S)
    assert process.returncode is not None
    return process.returncode, stderr.decode()


async def read_all(bootstrap: str, topic: str, expected: int) -> list[Record]:
    """Every message of the topic, from the beginning, once `expected` have arrived."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        records: list[Record] = []
        async with asyncio.timeout(STEP_TIMEOUT_S):
            while len(records) < expected:
                batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
                for tp, messages in batches.items():
                    records.extend((tp.partition, m.key, m.value or b"") for m in messages)
        extra = await consumer.getmany(timeout_ms=300)
        records.extend(
            (tp.partition, m.key, m.value or b"") for tp, ms in extra.items() for m in ms
        )
        return records
    finally:
        await consumer.stop()


def partition_of(key: bytes) -> int:
    return int(DefaultPartitioner()(key, list(range(PARTITIONS)), list(range(PARTITIONS))))


async def test_replay_sends_json_lines_unchanged(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    export = tmp_path / "cdrs.jsonl"
    lines = [
        b'{"callid":"a1","dt":"2026-11-25T13:04:05Z","customer_id":42,"duration":61}',
        b"",
        b'{ "callid": "a2", "dt": 1795000000, "customer_id": "43", "sip_code": 486 }',
        b"this is not JSON",
        b'{"callid":"a3","dt":"2026-11-25 13:00:00","customer_id":"42","dtmf":"12#"}',
    ]
    export.write_bytes(b"\n".join(lines) + b"\n")
    await create_topic(kafka_bootstrap, unique_name)

    code, stderr = await streamagg(kafka_bootstrap, unique_name, "replay", str(export))

    assert code == 0, stderr
    assert f"sent 4 messages to {unique_name}" in stderr
    assert "1 line not valid JSON, sent unchanged for the dead-letter topic: 4" in stderr
    records = await read_all(kafka_bootstrap, unique_name, 4)
    assert Counter((key, value) for _p, key, value in records) == Counter(
        [(b"42", lines[0]), (b"43", lines[2]), (None, lines[3]), (b"42", lines[4])]
    )
    for partition, key, _value in records:
        if key is not None:
            assert partition == partition_of(key)


async def test_replay_sends_csv_rows_as_json_objects(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    export = tmp_path / "export.csv"
    export.write_text(
        "callid,dt,customer_id,provider_id,customer_charge,provider_charge,dest_number,"
        "dest_cli,tech_prefix,duration,sip_code,dtmf\n"
        "c1,2026-11-25T13:04:05Z,42,7,0.012300,0.0100,123#12015550123,+12015550000,123#,61,200,\n"
        "\n"
        "c2,1795000000,43,,,,+442079460000,,,0,487,\n",
        encoding="utf-8",
    )
    await create_topic(kafka_bootstrap, unique_name)

    code, stderr = await streamagg(kafka_bootstrap, unique_name, "replay", str(export))

    assert code == 0, stderr
    records = await read_all(kafka_bootstrap, unique_name, 2)
    assert sorted((key or b"", value) for _p, key, value in records) == [
        (
            b"42",
            b'{"callid":"c1","dt":"2026-11-25T13:04:05Z","customer_id":"42","provider_id":"7",'
            b'"customer_charge":"0.012300","provider_charge":"0.0100",'
            b'"dest_number":"123#12015550123","dest_cli":"+12015550000","tech_prefix":"123#",'
            b'"duration":61,"sip_code":200}',
        ),
        (
            b"43",
            b'{"callid":"c2","dt":1795000000,"customer_id":"43",'
            b'"dest_number":"+442079460000","duration":0,"sip_code":487}',
        ),
    ]


async def test_generate_sends_exactly_the_generator_stream(
    kafka_bootstrap: str, unique_name: str
) -> None:
    await create_topic(kafka_bootstrap, unique_name)
    args = ["--count", "3000", "--seed", "5", "--start", "2026-11-25T13:00:00Z"]

    code, stderr = await streamagg(kafka_bootstrap, unique_name, "generate", *args)

    assert code == 0, stderr
    assert f"sent 3,000 messages to {unique_name}" in stderr
    options = GeneratorOptions(count=3000, seed=5, start=epoch_seconds("2026-11-25T13:00:00Z"))
    expected = list(CdrGenerator(options).messages())
    records = await read_all(kafka_bootstrap, unique_name, 3000)
    assert Counter((key, value) for _p, key, value in records) == Counter(expected)
    assert {partition for partition, _key, _value in records} == set(range(PARTITIONS))
    for partition, key, _value in records:
        assert key is not None and partition == partition_of(key)
    # Per partition the order is the generator's order.
    for partition in range(PARTITIONS):
        sent = [m for m in expected if m[0] is not None and partition_of(m[0]) == partition]
        assert [(k, v) for p, k, v in records if p == partition] == sent


async def test_generate_names_the_broker_it_cannot_reach(unique_name: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{probe.getsockname()[1]}"

    code, stderr = await streamagg(closed, unique_name, "generate", "--count", "10")

    assert code == 2
    assert f"cannot reach Kafka at {closed}" in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize("command", ["generate", "replay"])
async def test_help_is_shown(command: str) -> None:
    code, _stderr = await streamagg("127.0.0.1:9", "unused", command, "--help")
    assert code == 0
