"""`streamagg replay FILE`: send a CDR export (JSON lines or CSV) to the CDR topic."""

from __future__ import annotations

import argparse
import itertools
import shlex
import sys
from collections.abc import Iterable
from pathlib import Path

from streamagg.cdr.model import MAX_MESSAGE_BYTES
from streamagg.cli.arg_types import kafka_id_part, non_negative_number, positive_integer
from streamagg.cli.cdr_export import (
    CdrExport,
    count_lines,
    detect_format,
    leading_lines,
    open_export,
)
from streamagg.cli.kafka_out import (
    Message,
    SendPlan,
    SendSummary,
    progress_wanted,
    send_in_transactions,
)
from streamagg.cli.replay_progress import (
    AlreadySent,
    Checkpoints,
    ExportProgress,
    Fingerprint,
    first_line_to_send,
)
from streamagg.errors import StreamaggError
from streamagg.settings import Settings

SHOWN_LINE_NUMBERS = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Send a CDR export to the CDR topic (STREAMAGG_TOPIC), one message per CDR, keyed by "
        "customer_id. JSON lines: every non-blank line is sent byte for byte, even one that is "
        "not valid JSON (the worker sends it to the dead-letter topic; the summary lists its "
        "line number). CSV: a header line of CDR field names (SPEC §1); empty cells are left "
        "out, sip_code, pdd_ms, duration and dt become numbers where they parse, amounts "
        "stay decimal strings, and each row is sent as a JSON object."
    )
    parser.add_argument("file", help="a .jsonl/.json or .csv file (.gz accepted), or - for stdin")
    parser.add_argument(
        "--format",
        choices=("auto", "jsonl", "csv"),
        default="auto",
        help="file format; auto: by extension, else by the first line",
    )
    parser.add_argument(
        "--rate",
        type=non_negative_number,
        default=0.0,
        help="messages per second; 0 = as fast as possible",
    )
    parser.add_argument("--no-key", action="store_true", help="send messages without a key")
    parser.add_argument("--progress", action="store_true",
                        help="show progress even when stderr is not a terminal")  # fmt: skip
    parser.epilog = (
        "The export is sent in Kafka transactions that also record, in Kafka, the last line "
        "they hold: a replay cut off anywhere (broker gone, Ctrl-C, kill) goes on exactly "
        "where it stopped with --resume. A second replay of an export that was sent, or half "
        "sent, is refused unless --resume or --from-line says what to do."
    )
    start = parser.add_mutually_exclusive_group()
    start.add_argument(
        "--resume",
        action="store_true",
        help="send the lines after the last one a replay of this export committed",
    )
    start.add_argument(
        "--from-line",
        type=positive_integer,
        default=None,
        metavar="N",
        help="start at line N of the file (1 = all of it), whatever was sent before",
    )
    parser.add_argument(
        "--export-id",
        type=kafka_id_part,
        default=None,
        metavar="NAME",
        help="the name the progress is recorded under (default: the file's name)",
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    path_name = args.file
    with open_export(path_name) as export_file:
        fingerprint = None if path_name == "-" else Fingerprint.of(Path(path_name))
        export_id = args.export_id or ExportProgress.default_export_id(path_name)
        progress = ExportProgress(settings.topic, export_id, fingerprint)
        leading = leading_lines(export_file)
        file_format = args.format
        if file_format == "auto":
            first_line = leading[-1].decode("utf-8", "replace") if leading else ""
            file_format = detect_format(path_name, first_line.lstrip("\ufeff"))
        lines = itertools.chain(leading, export_file)
        replay = _Replay(args, settings, progress, file_format, lines)
        try:
            summary = send_in_transactions(
                settings, settings.topic, replay.messages, replay.plan, replay.checkpoints
            )
        except AlreadySent as done:
            print(f"{export_id!r} was {done}", file=sys.stderr)
            return 0
        except StreamaggError as exc:
            if not replay.sending:
                raise
            raise StreamaggError(f"{exc}\n{replay.where_it_stopped()}") from None
    _print_summary(summary, replay.export, file_format)
    if summary.stopped_by:
        print(replay.where_it_stopped(), file=sys.stderr)
    return {"SIGINT": 130, "SIGTERM": 143}.get(summary.stopped_by or "", 0)


class _Replay:
    """One run of `streamagg replay`: where it starts (decided once the producer has fenced
    any earlier run of the export), its messages, and what it committed."""

    def __init__(
        self,
        args: argparse.Namespace,
        settings: Settings,
        progress: ExportProgress,
        file_format: str,
        lines: Iterable[bytes],
    ) -> None:
        self.args = args
        self.settings = settings
        self.progress = progress
        self.file_format = file_format
        self.first_line = args.from_line or 1
        self.export = CdrExport(lines, file_format, keyed=not args.no_key)
        self.sending = False  # (the start was decided; a stop leaves something to resume)
        self.plan = SendPlan(
            rate=args.rate, show_progress=progress_wanted(args.progress), label="replay"
        )
        self.checkpoints = Checkpoints(
            progress.transactional_id, progress.group_id, progress.partition, self._position
        )

    async def messages(self) -> Iterable[Message]:
        """The messages from the start line on, decided from the committed progress (read
        once every earlier run of the export is fenced)."""
        mark = await self.progress.read(self.settings)
        self.first_line = first_line_to_send(
            mark, self.progress, self.args.resume, self.args.from_line
        )
        self.export.first_line = self.first_line
        self.plan.total = self._lines_to_send()
        self.sending = True
        return self.export.messages()

    def _lines_to_send(self) -> int | None:
        total = count_lines(self.args.file)
        if total is None:
            return None
        skipped = max(self.first_line - 1, 1 if self.file_format == "csv" else 0)
        return max(total - skipped, 0)

    def _position(self, finished: bool) -> tuple[int, str]:
        # (never below where this run started: a stop before its first line keeps the mark)
        line = max(self.export.line_number, self.first_line - 1)
        return line, self.progress.mark(line, finished).metadata()

    def where_it_stopped(self) -> str:
        """What is in Kafka after a stop, and the command that sends the rest."""
        committed = self.checkpoints.offset
        if committed is None:
            again = " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else ""
            return "nothing of this run was committed: run the same command again" + (
                f" (streamagg {again})" if again else ""
            )
        command = ["streamagg", "replay", self.args.file, "--resume"]
        if self.args.export_id:
            command += ["--export-id", self.args.export_id]
        if self.args.format != "auto":
            command += ["--format", self.args.format]
        if self.args.no_key:
            command.append("--no-key")
        return (
            f"lines {self.first_line:,} to {committed:,} are committed "
            f"({self.checkpoints.messages:,} messages); to send the rest: "
            + " ".join(shlex.quote(part) for part in command)
        )


def _print_summary(summary: SendSummary, export: CdrExport, file_format: str) -> None:
    print(summary.line(), file=sys.stderr)
    if export.blank_lines:
        print(f"skipped {_lines(export.blank_lines)} (blank)", file=sys.stderr)
    if export.unparseable_lines:
        shown = ", ".join(str(n) for n in export.unparseable_lines[:SHOWN_LINE_NUMBERS])
        more = len(export.unparseable_lines) - SHOWN_LINE_NUMBERS
        shown += f" and {more:,} more" if more > 0 else ""
        kind = (
            "CSV (a quote not closed on its line, or text after one)"
            if file_format == "csv"
            else "JSON"
        )
        print(
            f"{_lines(len(export.unparseable_lines))} not valid {kind}, sent unchanged for "
            f"the dead-letter topic: {shown}",
            file=sys.stderr,
        )
    if export.oversized_lines:
        shown = ", ".join(f"{n} ({size:,} bytes)" for n, size in export.oversized_lines[:20])
        print(
            f"{_lines(len(export.oversized_lines))} larger than a CDR's 64 KiB, sent cut to "
            f"{MAX_MESSAGE_BYTES + 1:,} bytes for the dead-letter topic: {shown}",
            file=sys.stderr,
        )


def _lines(count: int) -> str:
    return f"{count:,} line" if count == 1 else f"{count:,} lines"
