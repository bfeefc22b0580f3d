"""`streamagg replay` cut off anywhere, then resumed: every line of the export on the topic once.

Invariant (read with read_committed, as the worker's ingest reads): after a replay has been
killed any number of times at random moments and resumed until it finished, the topic holds
every non-blank line of the export exactly once, and for each key in the file's order. The
faults are drawn from a seed (SIGKILL of the replay at a random moment, several times in a row,
or a second replay of the same export started while the first runs, which fences the first).
A kill before the first commit leaves nothing to resume: the operator then runs the plain
command again, as the replay's message says.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
from collections import Counter, defaultdict
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.integration.test_replay import PARTITIONS, REPO_ROOT, create_topic

LINES = 6000
RATE = 3000  # messages per second: a run lasts about two seconds, several transactions
SEEDS = range(1, 7)
RUN_TIMEOUT_S = 60


def export_lines(seed: int) -> list[bytes]:
    """CDR lines of a dozen customers, with blank and invalid lines among them."""
    rng = random.Random(seed)
    lines = []
    for number in range(1, LINES + 1):
        if rng.random() < 0.01:
            lines.append(b"")
        elif rng.random() < 0.01:
            lines.append(b"not json at line %d" % number)
        else:
            customer = str(rng.randrange(12))
            cdr = {
                "callid": f"s{seed}-{number}",
                "dt": 1795000000 + number,
                "customer_id": customer,
            }
            lines.append(orjson.dumps(cdr))
    return lines


async def start_replay(bootstrap: str, topic: str, *args: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "STREAMAGG_BROKER": f"kafka://{bootstrap}", "STREAMAGG_TOPIC": topic}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streamagg.cli", "replay", *args,
        cwd=REPO_ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def finish(process: asyncio.subprocess.Process) -> tuple[int, str]:
    _stdout, stderr = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT_S)
    assert process.returncode is not None
    return process.returncode, stderr.decode()


async def read_committed(bootstrap: str, topic: str) -> list[tuple[int, bytes | None, bytes]]:
    """Every committed message of the topic (partition, key, value), up to its end."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)  # the last stable offsets
        records = []
        async with asyncio.timeout(RUN_TIMEOUT_S):
            while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
                batches = await consumer.getmany(timeout_ms=500, max_records=10_000)
                for tp, messages in batches.items():
                    records.extend((tp.partition, m.key, m.value or b"") for m in messages)
        return records
    finally:
        await consumer.stop()


def resume_args(export: Path) -> tuple[str, ...]:
    return (str(export), "--resume", "--rate", str(RATE))


async def replay_through_faults(
    bootstrap: str, topic: str, export: Path, rng: random.Random
) -> list[str]:
    """Replay with random faults until a run finishes; return what happened, for messages."""
    events = []
    args: tuple[str, ...] = (str(export), "--rate", str(RATE))
    for _attempt in range(rng.randint(1, 3)):
        process = await start_replay(bootstrap, topic, *args)
        delay = rng.uniform(0.3, 3.5)
        await asyncio.sleep(delay)
        if rng.random() < 0.3:
            # A second replay of the same export while this one runs: it fences this one.
            rival = await start_replay(
                bootstrap, topic, str(export), "--resume", "--rate", str(RATE)
            )
            code, stderr = await finish(process)
            events.append(f"rival after {delay:.1f} s: first exited {code}")
            process = rival
            await asyncio.sleep(rng.uniform(0.3, 2.0))
        with contextlib.suppress(ProcessLookupError):  # (a rival with nothing to resume ended)
            process.send_signal(signal.SIGKILL)
        code, stderr = await finish(process)
        events.append(f"SIGKILL after {delay:.1f} s (exit {code})")
        args = resume_args(export)
    for _attempt in range(3):
        code, stderr = await finish(await start_replay(bootstrap, topic, *args))
        if code == 0:
            events.append("finished")
            return events
        # Killed before its first commit: nothing to resume, the plain command sends it all.
        assert "nothing to resume" in stderr or "already sent in full" in stderr, stderr
        events.append("nothing committed yet: the plain command")
        args = (str(export), "--rate", str(RATE))
    raise AssertionError(f"the replay did not finish: {events}")


@pytest.mark.parametrize("seed", SEEDS)
async def test_a_replay_killed_anywhere_and_resumed_sends_every_line_once(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path, seed: int
) -> None:
    lines = export_lines(seed)
    export = tmp_path / "cdrs.jsonl"
    export.write_bytes(b"\n".join(lines) + b"\n")
    await create_topic(kafka_bootstrap, unique_name)

    events = await replay_through_faults(kafka_bootstrap, unique_name, export, random.Random(seed))

    records = await read_committed(kafka_bootstrap, unique_name)
    sent = [line for line in lines if line.strip()]
    assert Counter(value for _p, _k, value in records) == Counter(sent), events
    # Per key, the file's order (a resumed run goes on after the committed lines).
    order = {line: number for number, line in enumerate(sent)}
    by_key: dict[bytes | None, list[int]] = defaultdict(list)
    for _partition, key, value in records:
        by_key[key].append(order[value])
    for key, numbers in by_key.items():
        if key is not None:
            assert numbers == sorted(numbers), (key, events)


async def test_an_interrupted_replay_says_how_to_go_on_and_refuses_to_count_twice(
    kafka_bootstrap: str, unique_name: str, tmp_path: Path
) -> None:
    lines = export_lines(99)
    export = tmp_path / "nov.jsonl"
    export.write_bytes(b"\n".join(lines) + b"\n")
    await create_topic(kafka_bootstrap, unique_name)
    process = await start_replay(kafka_bootstrap, unique_name, str(export), "--rate", str(RATE))
    await asyncio.sleep(2.0)  # past its first commits (transactions of half a second)

    process.send_signal(signal.SIGINT)
    code, stderr = await finish(process)

    assert code == 130, stderr
    assert f"to send the rest: streamagg replay {export} --resume" in stderr, stderr
    for args, refusal in [
        ((), "stopped after line"),  # the plain command again would send the start twice
        (("--export-id", "nov.jsonl", "--from-line", "x"), "not a whole number"),
    ]:
        code, stderr = await finish(
            await start_replay(kafka_bootstrap, unique_name, str(export), *args)
        )
        assert code == 2 and refusal in stderr, stderr
        assert "Traceback" not in stderr
    edited = tmp_path / "other" / "nov.jsonl"  # same name, other content
    edited.parent.mkdir()
    edited.write_bytes(b"\n".join(reversed(lines)) + b"\n")
    code, stderr = await finish(
        await start_replay(kafka_bootstrap, unique_name, str(edited), "--resume")
    )
    assert code == 2 and "read another file" in stderr, stderr

    code, stderr = await finish(
        await start_replay(kafka_bootstrap, unique_name, str(export), "--resume")
    )

    assert code == 0, stderr
    records = await read_committed(kafka_bootstrap, unique_name)
    assert Counter(value for _p, _k, value in records) == Counter(
        line for line in lines if line.strip()
    )
    code, stderr = await finish(await start_replay(kafka_bootstrap, unique_name, str(export)))
    assert code == 2 and "already sent" in stderr and "in full" in stderr, stderr
    code, stderr = await finish(
        await start_replay(kafka_bootstrap, unique_name, str(export), "--resume")
    )
    assert code == 0 and "nothing to resume" in stderr, stderr
