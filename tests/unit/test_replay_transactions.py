"""What a replay commits, transaction by transaction, with a producer that records the calls.

The recorded mark is the last line every committed transaction holds: never lower than what
an earlier run committed, never higher than what was sent (tests/integration/test_replay_resume.py
checks the same through a real broker, with SIGKILLs)."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Iterable
from typing import Any

import orjson
import pytest

from streamagg.cli.kafka_out import SendPlan, _BatchSender, _StopFlag
from streamagg.cli.replay import _Replay
from streamagg.cli.replay_progress import AlreadySent, ExportProgress, Fingerprint, Mark
from streamagg.errors import StreamaggError
from streamagg.settings import Settings

FILE = Fingerprint(1000, "00112233aabbccdd")


class Producer:
    """Records the transaction calls; ``hang`` makes commits wait for ever (the broker away)."""

    def __init__(self, hang: bool = False) -> None:
        self.calls: list[Any] = []
        self.hang = hang

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1}

    async def begin_transaction(self) -> None:
        self.calls.append("begin")

    async def send_offsets_to_transaction(self, offsets: dict[Any, Any], group: str) -> None:
        ((offset, metadata),) = offsets.values()
        self.calls.append(("mark", offset, orjson.loads(metadata)["finished"]))
        if self.hang:
            await asyncio.Event().wait()

    async def commit_transaction(self) -> None:
        self.calls.append("commit")

    def create_batch(self) -> Any:
        return Batch()

    async def send_batch(self, batch: Any, topic: str, partition: int) -> Any:
        future = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future

    def marks(self) -> list[tuple[int, bool]]:
        return [(call[1], call[2]) for call in self.calls if isinstance(call, tuple)]


class Batch:
    def append(self, key: bytes | None, value: bytes, timestamp: None) -> int:
        return 1


def lines(count: int) -> list[bytes]:
    return [b'{"callid":"%d","dt":0,"customer_id":"1"}\n' % n for n in range(1, count + 1)]


def replay(
    mark: Mark | None, export: Iterable[bytes], monkeypatch: pytest.MonkeyPatch, **args: Any
) -> _Replay:
    async def read(self: ExportProgress, settings: Settings) -> Mark | None:
        return mark

    monkeypatch.setattr(ExportProgress, "read", read)
    options = argparse.Namespace(
        file="-", rate=0.0, progress=False, no_key=False, format="auto", export_id=None,
        resume=args.get("resume", False), from_line=args.get("from_line"),
    )  # fmt: skip
    progress = ExportProgress("cdrs", "x.jsonl", FILE)
    return _Replay(options, Settings(), progress, "jsonl", export)


async def run(the_replay: _Replay, producer: Producer, stop: _StopFlag | None = None) -> None:
    sender = _BatchSender(
        producer,  # type: ignore[arg-type]
        "cdrs",
        SendPlan(),
        stop or _StopFlag(),
        the_replay.checkpoints,
    )
    await sender.send(await the_replay.messages())


async def test_a_whole_export_ends_with_its_last_line_marked_finished(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    producer = Producer()
    await run(replay(None, lines(12_000), monkeypatch), producer)
    assert producer.marks()[-1] == (12_000, True)


async def test_a_stop_before_the_first_line_keeps_the_earlier_mark(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found by review: a Ctrl-C during the start of a --resume committed line 0, and the next
    --resume sent the whole export again."""
    stop = _StopFlag()
    stop.set("SIGINT")
    producer = Producer()
    earlier = Mark(6, False, FILE, "2026-12-07T00:00:00Z")
    await run(replay(earlier, lines(10), monkeypatch, resume=True), producer, stop)
    assert producer.marks() == []  # nothing sent, nothing committed: the mark stays at 6


async def test_a_resume_never_marks_below_where_it_started(monkeypatch: pytest.MonkeyPatch) -> None:
    producer = Producer()
    earlier = Mark(9_000, False, FILE, "2026-12-07T00:00:00Z")
    # The lines after the mark are all blank: nothing to send, and finished at the end.
    export = lines(9_000) + [b"\n"] * 5
    await run(replay(earlier, export, monkeypatch, resume=True), producer)
    assert producer.marks() == [(9_005, True)]


async def test_resume_of_another_file_under_a_finished_name_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Found by review: checked 'finished' first, so a new day's cdrs.jsonl was 'already sent'."""
    other = Mark(10, True, Fingerprint(77, "ffffffffffffffff"), "2026-12-06T00:00:00Z")
    with pytest.raises(StreamaggError, match="read another file"):
        await run(replay(other, lines(10), monkeypatch, resume=True), Producer())
    same = Mark(10, True, FILE, "2026-12-06T00:00:00Z")
    producer = Producer()
    with pytest.raises(AlreadySent):
        await run(replay(same, lines(10), monkeypatch, resume=True), producer)
    assert producer.calls == []  # (nothing begun, nothing committed)


async def test_a_second_stop_ends_a_commit_that_waits_for_the_broker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    producer = Producer(hang=True)
    stop = _StopFlag()
    task = asyncio.ensure_future(run(replay(None, lines(10), monkeypatch), producer, stop))
    await asyncio.sleep(0.2)  # the commit of the 10 lines waits
    assert producer.marks() == [(10, True)] and not task.done()
    stop.set("SIGINT")
    await asyncio.sleep(0.1)
    assert not task.done()  # the first stop lets the commit finish
    stop.set("SIGINT")
    with pytest.raises(StreamaggError, match="committing to cdrs stopped by SIGINT"):
        await asyncio.wait_for(task, 5)
