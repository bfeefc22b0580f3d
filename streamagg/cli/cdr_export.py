"""A CDR export file (JSON lines or CSV) read as Kafka messages, for `streamagg replay`."""

from __future__ import annotations

import gzip
import math
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, cast

import orjson

from streamagg.cdr.model import MAX_MESSAGE_BYTES
from streamagg.cli.kafka_out import Message
from streamagg.csv_lines import csv_lines
from streamagg.errors import StreamaggError

CDR_FIELDS = (
    "callid", "dt", "customer_id", "provider_id", "customer_charge", "provider_charge",
    "dest_number", "dest_cli", "tech_prefix", "duration", "sip_code", "dtmf", "pdd_ms",
)  # fmt: skip
INTEGER_COLUMNS = ("sip_code", "pdd_ms")
NUMBER_COLUMNS = ("duration", "dt")  # dt: an epoch number stays a number, a date stays text
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_MAX_INTEGER_DIGITS = 40  # (longer: sent as text, refused by the worker as out of range)


class CdrExport:
    """Reads one export file as Kafka messages and remembers what it could not parse."""

    def __init__(
        self, lines: Iterable[bytes], file_format: str, keyed: bool = True, first_line: int = 1
    ) -> None:
        self.lines = lines
        self.file_format = file_format
        self.keyed = keyed
        self.first_line = first_line  # lines before it are read past (a resumed replay)
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
            if line_number < self.first_line:
                continue
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
            if row.number < self.first_line:
                not_utf8.pop(row.number, None)
                continue
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


def open_export(path_name: str) -> IO[bytes]:
    if path_name == "-":
        return sys.stdin.buffer
    path = Path(path_name)
    if not path.is_file():
        raise StreamaggError(f"{path_name}: no such file")
    if path.suffix == ".gz":
        return cast(IO[bytes], gzip.open(path, "rb"))
    return path.open("rb")


def leading_lines(text: IO[bytes]) -> list[bytes]:
    """Lines up to and including the first non-blank one (read ahead to detect the format)."""
    lines = []
    for line in text:
        lines.append(line)
        if line.strip():
            break
    return lines


def count_lines(path_name: str) -> int | None:
    if path_name == "-" or path_name.endswith(".gz"):
        return None
    count = 0
    with open(path_name, "rb") as raw:
        for block in iter(lambda: raw.read(1 << 20), b""):
            count += block.count(b"\n")
    return count
