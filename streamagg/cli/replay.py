"""`streamagg replay FILE`: send a CDR export (JSON lines or CSV) to the CDR topic."""

from __future__ import annotations

import argparse
import gzip
import itertools
import math
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, cast

import orjson

from streamagg.cdr.model import MAX_MESSAGE_BYTES
from streamagg.cli.arg_types import non_negative_number
from streamagg.cli.kafka_out import Message, SendPlan, progress_wanted, send_messages
from streamagg.csv_lines import csv_lines
from streamagg.errors import StreamaggError
from streamagg.settings import Settings

CDR_FIELDS = (
    "callid", "dt", "customer_id", "provider_id", "customer_charge", "provider_charge",
    "dest_number", "dest_cli", "tech_prefix", "duration", "sip_code", "dtmf",
)  # fmt: skip
INTEGER_COLUMNS = ("sip_code",)
NUMBER_COLUMNS = ("duration", "dt")  # dt: an epoch number stays a number, a date stays text
SHOWN_LINE_NUMBERS = 20
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_MAX_INTEGER_DIGITS = 40  # (longer: sent as text, refused by the worker as out of range)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Send a CDR export to the CDR topic (STREAMAGG_TOPIC), one message per CDR, keyed by "
        "customer_id. JSON lines: every non-blank line is sent byte for byte, even one that is "
        "not valid JSON (the worker sends it to the dead-letter topic; the summary lists its "
        "line number). CSV: a header line of CDR field names (SPEC §1); empty cells are left "
        "out, sip_code and duration become numbers where they parse, amounts stay decimal "
        "strings, and each row is sent as a JSON object."
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


class CdrExport:
    """Reads one export file as Kafka messages and remembers what it could not parse."""

    def __init__(self, lines: Iterable[bytes], file_format: str, keyed: bool = True) -> None:
        self.lines = lines
        self.file_format = file_format
        self.keyed = keyed
        self.blank_lines = 0
        self.unparseable_lines: list[int] = []
        self.oversized_lines: list[tuple[int, int]] = []  # (line number, bytes)
        self.line_number = 0  # of the message last read

    def messages(self) -> Iterator[Message]:
        lines = self._csv_messages() if self.file_format == "csv" else self._json_line_messages()
        for key, value in lines:
            if len(value) <= MAX_MESSAGE_BYTES:
                yield key, value
                continue
            # The worker refuses it whole (to the dead-letter topic); cut, it still fits a
            # Kafka batch, and one such line no longer stops the export.
            self.oversized_lines.append((self.line_number, len(value)))
            yield key, value[: MAX_MESSAGE_BYTES + 1]

    def _json_line_messages(self) -> Iterator[Message]:
        for line_number, line in enumerate(self.lines, start=1):
            self.line_number = line_number
            value = line.rstrip(b"\r\n")
            if not value.strip():
                self.blank_lines += 1
                continue
            try:
                cdr = orjson.loads(value)
            except orjson.JSONDecodeError:
                self.unparseable_lines.append(line_number)
                cdr = None
            yield self._key_of(cdr), value

    def _csv_messages(self) -> Iterator[Message]:
        not_utf8: dict[int, bytes] = {}  # line number → the line as read
        rows = csv_lines(_decoded(self.lines, not_utf8))
        header = next(rows, None)
        fieldnames = [name.strip() for name in header.cells] if header is not None else []
        missing = {"callid", "dt", "customer_id"} - set(fieldnames)
        if missing:
            raise StreamaggError(
                f"the CSV header has no {', '.join(sorted(missing))} column "
                f"(expected CDR field names: {', '.join(CDR_FIELDS)})"
            )
        for row in rows:
            self.line_number = row.number
            if row.problem is not None or row.number in not_utf8:
                # (a stray quote, bytes that are not UTF-8: this line alone, as written, for the
                # dead-letter topic; stopping here would leave the rest unsent, and sending the
                # file again would count its first part twice past the dedup horizon)
                self.unparseable_lines.append(row.number)
                raw = not_utf8.pop(row.number, None)
                yield None, raw if raw is not None else row.text.encode()
                continue
            if not any(row.cells):
                self.blank_lines += 1
                continue
            cdr = cdr_from_csv_row(dict(zip(fieldnames, row.cells, strict=False)))
            yield self._key_of(cdr), orjson.dumps(cdr)

    def _key_of(self, cdr: object) -> bytes | None:
        if not self.keyed or not isinstance(cdr, dict):
            return None
        customer = cdr.get("customer_id")
        if isinstance(customer, bool) or not isinstance(customer, str | int):
            return None
        return str(customer).encode("utf-8")


def _decoded(lines: Iterable[bytes], not_utf8: dict[int, bytes]) -> Iterator[str]:
    """The lines as text; those that are not UTF-8 are noted in ``not_utf8`` (and read with
    their bad bytes as lone surrogates)."""
    for line_number, line in enumerate(lines, start=1):
        try:
            yield line.decode("utf-8-sig" if line_number == 1 else "utf-8")
        except UnicodeDecodeError:
            not_utf8[line_number] = line.rstrip(b"\r\n")
            yield line.decode("utf-8", "surrogateescape")


def cdr_from_csv_row(row: dict[str, str]) -> dict[str, object]:
    """One CSV row as a CDR object: empty cell = absent, numbers where the SPEC wants them."""
    return {name: _csv_value(name, cell) for name, cell in row.items() if name and cell != ""}


def _csv_value(name: str, cell: str) -> object:
    """A number when the cell is one as JSON writes it (ASCII digits, finite); anything else —
    `nan`, `inf`, `1_5`, full-width digits, `busy` — is sent as written, for the worker to
    refuse naming the field."""
    if name in INTEGER_COLUMNS or name in NUMBER_COLUMNS:
        text = cell.strip()
        if _INTEGER.fullmatch(text) and len(text) <= _MAX_INTEGER_DIGITS:
            return int(text)
        if name in NUMBER_COLUMNS and _DECIMAL.fullmatch(text):
            number = float(text)
            if math.isfinite(number):
                return number
    return cell


def detect_format(path_name: str, first_line: str) -> str:
    """jsonl or csv, from the extension or else from the first non-blank line."""
    name = path_name.lower().removesuffix(".gz")
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    return "jsonl" if first_line.lstrip().startswith("{") else "csv"


def _open_export(path_name: str) -> IO[bytes]:
    if path_name == "-":
        return sys.stdin.buffer
    path = Path(path_name)
    if not path.is_file():
        raise StreamaggError(f"{path_name}: no such file")
    if path.suffix == ".gz":
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


def _leading_lines(text: IO[bytes]) -> list[bytes]:
    """Lines up to and including the first non-blank one (read ahead to detect the format)."""
    lines = []
    for line in text:
        lines.append(line)
        if line.strip():
            break
    return lines


def _count_lines(path_name: str) -> int | None:
    if path_name == "-" or path_name.endswith(".gz"):
        return None
    count = 0
    with open(path_name, "rb") as raw:
        for block in iter(lambda: raw.read(1 << 20), b""):
            count += block.count(b"\n")
    return count


def run(args: argparse.Namespace, settings: Settings) -> int:
    path_name = args.file
    with _open_export(path_name) as export_file:
        leading = _leading_lines(export_file)
        file_format = args.format
        if file_format == "auto":
            first_line = leading[-1].decode("utf-8", "replace") if leading else ""
            file_format = detect_format(path_name, first_line.lstrip("\ufeff"))
        total = _count_lines(path_name)
        if total is not None and file_format == "csv":
            total = max(total - 1, 0)
        plan = SendPlan(
            rate=args.rate,
            total=total,
            show_progress=progress_wanted(args.progress),
            label="replay",
        )
        lines = itertools.chain(leading, export_file)
        export = CdrExport(lines, file_format, keyed=not args.no_key)
        summary = send_messages(settings, settings.topic, export.messages(), plan)
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
    return {"SIGINT": 130, "SIGTERM": 143}.get(summary.stopped_by or "", 0)


def _lines(count: int) -> str:
    return f"{count:,} line" if count == 1 else f"{count:,} lines"
