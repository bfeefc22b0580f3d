"""DID inventory on a real broker: `streamagg dids load` feeding every worker's DidInventory."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streamagg.cli import build_parser, did_loader
from streamagg.reference.dids import DidInventory, read_inventory
from streamagg.settings import Settings

# Generous bound for one broker round trip or propagation; tests never assert on durations.
STEP_TIMEOUT_S = 60


@pytest.fixture
def settings(kafka_bootstrap: str, unique_name: str) -> Settings:
    """Settings pointing at the session's broker, with a DID topic of this test's own."""
    return Settings(broker="kafka://" + kafka_bootstrap, dids_topic=unique_name)


@pytest.fixture
async def start_inventory(settings: Settings) -> AsyncIterator[Callable[[], object]]:
    """Start DidInventory objects on ``settings`` and wait until loaded; all stop at teardown."""
    started: list[DidInventory] = []

    async def start() -> DidInventory:
        inventory = DidInventory(settings)
        started.append(inventory)
        await inventory.start()
        await inventory.wait_loaded(STEP_TIMEOUT_S)
        return inventory

    yield start
    for inventory in started:
        await inventory.stop()


def csv_file(tmp_path: Path, name: str, *rows: str) -> Path:
    path = tmp_path / name
    path.write_text("\n".join(("did,account", *rows)) + "\n", encoding="utf-8")
    return path


async def load(path: Path, settings: Settings, replace: bool = False, *options: str) -> int:
    """Run `streamagg dids load` in a thread (it runs its own event loop, as from the shell),
    its arguments parsed as the command line's."""
    words = ["dids", "load", str(path), *(["--replace"] if replace else []), *options]
    args = build_parser().parse_args(words)
    return await asyncio.to_thread(did_loader.run, args, settings)


async def wait_for(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(STEP_TIMEOUT_S):
        while not condition():
            await asyncio.sleep(0.05)


async def test_load_then_replace_reaches_a_running_inventory(
    settings: Settings, start_inventory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    full = csv_file(
        tmp_path,
        "full.csv",
        "+1 (212) 555-0100,42",
        "12125550101,42",
        "2125550102,43",
        "2125550103,44",
    )
    assert await load(full, settings) == did_loader.EXIT_OK
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"published 4, removed 0, skipped 0 bad rows to topic {settings.dids_topic}"
    ]
    assert err == ""

    inventory = await start_inventory()
    assert inventory.loaded
    assert len(inventory) == 4
    assert inventory.owner("2125550100") == "42"
    assert inventory.owner("2125550101") == "42"
    assert inventory.owner("2125550102") == "43"
    assert inventory.owner("2125550103") == "44"
    assert inventory.owner("2125550199") == ""

    # The whole inventory is now smaller, one DID changed hands and one is new.
    smaller = csv_file(tmp_path, "smaller.csv", "2125550100,42", "2125550102,45", "2125550104,46")
    assert await load(smaller, settings, replace=True) == did_loader.EXIT_OK
    assert capsys.readouterr().out.splitlines() == [
        f"published 3, removed 2, skipped 0 bad rows to topic {settings.dids_topic}"
    ]
    await wait_for(lambda: inventory.owner("2125550101") == "" and len(inventory) == 3)
    await wait_for(lambda: inventory.owner("2125550104") == "46")
    assert inventory.owner("2125550103") == ""
    assert inventory.owner("2125550102") == "45"
    assert inventory.owner("2125550100") == "42"

    # A worker starting now reads the same inventory from the compacted topic.
    late = await start_inventory()
    assert {did: late.owner(did) for did in ("2125550100", "2125550102", "2125550104")} == {
        "2125550100": "42",
        "2125550102": "45",
        "2125550104": "46",
    }
    assert len(late) == 3


async def test_a_file_with_bad_rows_loads_the_rest_and_says_which_lines(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = csv_file(
        tmp_path, "bad.csv", "2125550100,42", "not-a-did,42", "2125550101,", "2125550102,43"
    )
    assert await load(path, settings) == did_loader.EXIT_SKIPPED_ROWS
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        f"{path}:3: DID 'not-a-did' is not a phone number",
        f"{path}:4: DID 2125550101 has no account",
    ]
    assert "published 2, removed 0, skipped 2 bad rows" in out
    assert await read_inventory(settings) == {"2125550100": "42", "2125550102": "43"}


async def test_replace_keeps_dids_that_the_file_names_only_on_bad_rows(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = csv_file(tmp_path, "first.csv", "2125550100,42", "2125550101,42", "2125550102,42")
    assert await load(first, settings) == did_loader.EXIT_OK
    # 2125550101 lost its account in this export by mistake: it must not vanish.
    second = csv_file(tmp_path, "second.csv", "2125550100,42", "2125550101,")
    assert await load(second, settings, replace=True) == did_loader.EXIT_SKIPPED_ROWS
    out = capsys.readouterr().out
    assert "published 1, removed 1, skipped 1 bad rows" in out
    assert "kept 1 DIDs named on bad rows" in out
    assert await read_inventory(settings) == {"2125550100": "42", "2125550101": "42"}


async def test_a_cut_off_export_does_not_wipe_the_inventory(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hourly cron's export stopped after 40 of its 400 lines (a full disk, a killed job):
    `--replace` would remove 360 DIDs (90 %). It publishes nothing and says why; the operator's
    deliberate full change goes through with --max-removals."""
    whole = [f"212555{i:04d},{i % 7}" for i in range(400)]
    assert await load(csv_file(tmp_path, "whole.csv", *whole), settings) == did_loader.EXIT_OK
    before = await read_inventory(settings)
    assert len(before) == 400
    cut = csv_file(tmp_path, "cut.csv", *whole[:40], "2125559999,new")
    capsys.readouterr()

    assert await load(cut, settings, True) == did_loader.EXIT_FAILED
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "streamagg: --replace would remove 360 of the 400 DIDs published (90 %), more than "
        "--max-removals 10 % allows; nothing was published. If the file is the whole inventory "
        "(not a cut-off export), run it again with --max-removals 100"
    ]
    assert await read_inventory(settings) == before  # (not even the new DID)

    assert await load(cut, settings, True, "--max-removals", "95") == did_loader.EXIT_OK
    assert "published 41, removed 360, skipped 0 bad rows" in capsys.readouterr().out
    assert len(await read_inventory(settings)) == 41


async def test_removals_under_the_share_or_the_floor_go_through(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    whole = [f"212555{i:04d},{i % 7}" for i in range(2_000)]
    assert await load(csv_file(tmp_path, "whole.csv", *whole), settings) == did_loader.EXIT_OK
    # 180 of 2,000 (9 %): a normal day of ports and cancellations.
    assert await load(csv_file(tmp_path, "a.csv", *whole[180:]), settings, True) == 0
    assert "published 1820, removed 180" in capsys.readouterr().out
    # 210 of 1,820 (11.5 %) is refused by the default share, and passes with a larger one.
    assert await load(csv_file(tmp_path, "b.csv", *whole[390:]), settings, True) == 2
    assert (
        await load(
            csv_file(tmp_path, "b.csv", *whole[390:]), settings, True, "--max-removals", "12"
        )
        == 0
    )
    assert "published 1610, removed 210" in capsys.readouterr().out
    # After a deliberate full change to 110 DIDs, removing 100 of them (91 %) goes through: up
    # to REMOVALS_ALWAYS_ALLOWED DIDs go whatever their share.
    small = whole[390:500]
    assert (
        await load(csv_file(tmp_path, "c.csv", *small), settings, True, "--max-removals", "100")
        == 0
    )
    assert await load(csv_file(tmp_path, "d.csv", *small[100:]), settings, True) == 0
    assert "published 10, removed 100" in capsys.readouterr().out
    assert len(await read_inventory(settings)) == 10


async def test_an_empty_inventory_loads_and_its_topic_is_created_compacted(
    settings: Settings, start_inventory, kafka_bootstrap: str
) -> None:
    inventory = await start_inventory()
    assert inventory.loaded and len(inventory) == 0

    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        resource = ConfigResource(ConfigResourceType.TOPIC, settings.dids_topic)
        described = await admin.describe_configs([resource])
    finally:
        await admin.close()
    entries = described[0].to_object()["resources"][0]["config_entries"]
    config = {entry["config_names"]: entry["config_value"] for entry in entries}
    assert config["cleanup.policy"] == "compact"


async def test_bad_records_in_the_topic_are_logged_and_skipped(
    settings: Settings, start_inventory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = csv_file(tmp_path, "good.csv", "2125550100,42")
    assert await load(good, settings) == did_loader.EXIT_OK
    producer = AIOKafkaProducer(bootstrap_servers=settings.bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(settings.dids_topic, b"oops", key=b"2125550101")
        await producer.send_and_wait(settings.dids_topic, b'{"owner": "42"}', key=b"2125550102")
        await producer.send_and_wait(settings.dids_topic, b'{"account": "43"}', key=b"2125550103")
    finally:
        await producer.stop()

    with caplog.at_level(logging.WARNING, logger="streamagg.reference.dids"):
        inventory = await start_inventory()
    assert len(inventory) == 2
    assert inventory.owner("2125550100") == "42"
    assert inventory.owner("2125550103") == "43"
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 2
    assert skipped[0].endswith("DID 2125550101: value is not JSON")
    assert skipped[1].endswith('DID 2125550102: value has no "account" string')


# `streamagg dids load --replace FILE` as cli.py dispatches it, in a fresh process with no logging
# set up, without importing the other commands.
DIDS_LOAD = """
import argparse, sys
from streamagg.cli import did_loader
from streamagg.settings import Settings
args = argparse.Namespace(file=sys.argv[1], replace=True, max_removals=10.0)
sys.exit(did_loader.run(args, Settings.from_env()))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_command_says_in_one_line_when_the_broker_is_unreachable(tmp_path: Path) -> None:
    path = csv_file(tmp_path, "ok.csv", "2125550100,42")
    address = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "STREAMAGG_BROKER": f"kafka://{address}"}
    done = subprocess.run(
        [sys.executable, "-c", DIDS_LOAD, str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == did_loader.EXIT_FAILED
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"streamagg: cannot reach Kafka at {address}")


async def test_an_inventory_without_broker_keeps_trying_and_says_so_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    address = f"127.0.0.1:{free_port()}"
    inventory = DidInventory(Settings(broker=f"kafka://{address}"))
    with caplog.at_level(logging.DEBUG, logger="streamagg.reference.dids"):
        await inventory.start()  # returns at once: the worker decides how long to wait
        with pytest.raises(TimeoutError):
            await inventory.wait_loaded(timeout=4)
        await inventory.stop()
    assert not inventory.loaded
    assert inventory.owner("2125550100") == ""
    ours = [r for r in caplog.records if r.name == "streamagg.reference.dids"]
    warnings = [r for r in ours if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert f"cannot reach Kafka at {address}" in warnings[0].getMessage()
    assert warnings[0].exc_info is None
    assert len(ours) >= 2, "it retried"
