"""How far a `streamagg replay` of one export got, kept in Kafka with the CDRs it sent.

The replay sends in Kafka transactions. Each transaction also commits, as the consumer-group
offset of the export's own group, the number of the last line it holds: the CDRs and the mark
of how far they reach are committed together or not at all. A replay cut off at any moment
(the broker gone, Ctrl-C, SIGKILL, the machine lost) is resumed with ``--resume`` at the line
after that mark, and every line reaches the topic exactly once for read_committed readers.

One export is one transactional id, so a second replay of it fences the first, and a resumed
replay first ends (aborts) whatever transaction the dead one left open, before reading the
mark. The mark names the file (its size and the hash of its first 64 KiB), so that ``--resume``
refuses to go on with another file under the same name.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    CoordinatorLoadInProgressError,
    CoordinatorNotAvailableError,
    KafkaError,
    NotCoordinatorError,
)
from aiokafka.structs import OffsetAndMetadata

from streamagg.errors import StreamaggError
from streamagg.kafka_clients import admin_client
from streamagg.settings import Settings

HEAD_BYTES = 64 * 1024
MARK_FORMAT = 1
COORDINATOR_WAIT_S = 30.0
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9._-]")


@dataclass(frozen=True)
class Fingerprint:
    """What identifies an export file well enough to refuse resuming with another one."""

    size: int
    head: str  # sha256 of the first HEAD_BYTES, hex, shortened

    @classmethod
    def of(cls, path: Path) -> Fingerprint:
        with path.open("rb") as file:
            head = hashlib.sha256(file.read(HEAD_BYTES)).hexdigest()[:16]
        return cls(path.stat().st_size, head)


@dataclass(frozen=True)
class Mark:
    """The committed progress of one export: every line up to ``line`` is on the topic."""

    line: int
    finished: bool
    fingerprint: Fingerprint | None  # None: read from stdin
    at: str  # when it was committed, ISO 8601 UTC

    def metadata(self) -> str:
        fingerprint = self.fingerprint
        return orjson.dumps(
            {
                "format": MARK_FORMAT,
                "finished": self.finished,
                "size": fingerprint.size if fingerprint else None,
                "head": fingerprint.head if fingerprint else None,
                "at": self.at,
            }
        ).decode()

    @classmethod
    def parse(cls, line: int, metadata: str) -> Mark:
        try:
            fields = orjson.loads(metadata)
            size, head = fields["size"], fields["head"]
            fingerprint = Fingerprint(int(size), str(head)) if size is not None else None
            return cls(line, bool(fields["finished"]), fingerprint, str(fields["at"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise StreamaggError(
                f"the replay progress in Kafka is not streamagg's (metadata {metadata[:80]!r}); "
                "give --export-id another name, or --from-line"
            ) from None


class Checkpoints:
    """How `kafka_out` sends in transactions (of about half a second), every one of which also
    commits how far the source got (``position``: an offset and its metadata, as the offset of
    ``group_id`` on ``partition``), so that a run cut off anywhere can go on exactly after its
    last committed transaction."""

    def __init__(
        self,
        transactional_id: str,
        group_id: str,
        partition: TopicPartition,
        position: Callable[[bool], tuple[int, str]],  # (finished) → offset, metadata
    ) -> None:
        self.transactional_id = transactional_id
        self.group_id = group_id
        self.partition = partition
        self.position = position
        self.messages = 0  # committed so far
        self.offset: int | None = None  # the last committed position
        self.finished = False

    def committed(self, messages: int, offset: int, finished: bool) -> None:
        self.messages, self.offset, self.finished = messages, offset, finished


class ExportProgress:
    """The mark of one export (``export_id``) on one topic: read once, then written with every
    transaction of the replay."""

    def __init__(self, topic: str, export_id: str, fingerprint: Fingerprint | None) -> None:
        self.topic = topic
        self.export_id = export_id
        self.fingerprint = fingerprint
        self.transactional_id = self.group_id = f"streamagg-replay.{topic}.{export_id}"
        self.partition = TopicPartition(topic, 0)  # where the group's offset is kept

    @staticmethod
    def default_export_id(path_name: str) -> str:
        """The file's name (stdin: ``stdin``), with characters Kafka ids do not like replaced."""
        name = "stdin" if path_name == "-" else Path(path_name).name
        return _UNSAFE_ID.sub("_", name)

    async def read(self, settings: Settings) -> Mark | None:
        """The committed mark; call it after the transactional producer started (it has then
        ended any transaction a dead replay of this export left open)."""
        admin = admin_client(settings)
        try:
            await admin.start()
            offsets = await self._fetch(admin)
        except KafkaError as exc:
            raise StreamaggError(
                f"reading how far earlier replays of {self.export_id!r} got failed: {exc!r}"
            ) from None
        finally:
            with contextlib.suppress(Exception):
                await admin.close()
        found = offsets.get(self.partition)
        if found is None or found.offset < 0:
            return None
        return Mark.parse(found.offset, found.metadata or "")

    async def _fetch(self, admin: AIOKafkaAdminClient) -> dict[TopicPartition, OffsetAndMetadata]:
        # A new cluster makes its offsets topic on the first group's request: wait for it.
        deadline = time.monotonic() + COORDINATOR_WAIT_S
        while True:
            try:
                offsets: dict[TopicPartition, OffsetAndMetadata]
                offsets = await admin.list_consumer_group_offsets(
                    self.group_id, partitions=[self.partition]
                )
                return offsets
            except (CoordinatorNotAvailableError, CoordinatorLoadInProgressError,
                    NotCoordinatorError):  # fmt: skip
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)

    def mark(self, line: int, finished: bool) -> Mark:
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        return Mark(line, finished, self.fingerprint, now)


class AlreadySent(StreamaggError):
    """--resume of an export whose every line is committed: nothing to send (exit 0)."""

    def __init__(self, mark: Mark) -> None:
        super().__init__(f"already sent in full ({mark.at}); nothing to resume")
        self.mark = mark


def first_line_to_send(
    mark: Mark | None, progress: ExportProgress, resume: bool, from_line: int | None
) -> int:
    """Where this replay starts, or a refusal naming the choice the operator has to make
    (AlreadySent: a --resume with nothing left)."""
    name = progress.export_id
    if from_line is not None:
        return from_line
    if resume:
        if mark is None:
            raise StreamaggError(
                f"no replay of {name!r} to {progress.topic} was committed; nothing to resume "
                "(run it without --resume)"
            )
        if (
            mark.fingerprint is not None
            and progress.fingerprint is not None
            and mark.fingerprint != progress.fingerprint
        ):
            raise StreamaggError(
                f"the replay of {name!r} that got to line {mark.line:,} read another file "
                f"({mark.fingerprint.size:,} bytes; this one has {progress.fingerprint.size:,}); "
                "resume with the same file, or choose the line with --from-line"
            )
        if mark.finished:
            raise AlreadySent(mark)
        return mark.line + 1
    if mark is None:
        return 1
    if mark.finished:
        raise StreamaggError(
            f"{name!r} was already sent to {progress.topic} in full ({mark.at}); sending it "
            "again counts calls older than the dedup horizon twice. To send it anyway: "
            "--from-line 1"
        )
    raise StreamaggError(
        f"a replay of {name!r} to {progress.topic} stopped after line {mark.line:,} ({mark.at}); "
        f"--resume sends the rest, --from-line 1 sends everything again"
    )
