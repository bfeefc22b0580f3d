"""Readers of NANPA's rate-center files and of the plain prefix CSV, told apart by their header.

Each reader turns one file into ``PrefixAssignment``s (and, for the NPA database, NPA → country),
rejecting bad rows one by one with ``path:line: reason`` so the rest of the file still loads.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamagg.csv_lines import csv_lines
from streamagg.errors import ReferenceDataError

CENTRAL_OFFICE_CODES = "central office code file"
THOUSANDS_BLOCKS = "thousands-block file"
NPA_DATABASE = "NPA database"
PREFIX_CSV = "prefix CSV"

EXPECTED_FORMATS = (
    "expected NANPA's central office code file (tab-separated header "
    "State, NPA-NXX, OCN, Company, RateCenter, EffectiveDate, Use, AssignDate, Initial/Growth), "
    "the thousands-block file (comma-separated header with State, NPA, NXX, X, Rate Center), "
    "the NPA database (first line 'File Date,MM/DD/YYYY', then a header with NPA_ID and COUNTRY) "
    "or a CSV with the header prefix,rc,state"
)

_NPA = re.compile(r"[2-9]\d\d", re.ASCII)
# Dashes are allowed only between the parts: 201-200, 201200, 201-200-4, 2012004.
_NPA_NXX = re.compile(r"([2-9]\d\d)-?([2-9]\d\d)", re.ASCII)
_NPA_NXX_X = re.compile(r"([2-9]\d\d)-?([2-9]\d\d)(?:-?(\d))?", re.ASCII)
_NPA_NXX_X_DIGITS = re.compile(r"[2-9]\d\d[2-9]\d\d\d", re.ASCII)
_STATE = re.compile(r"[A-Z]{2}")
_UNASSIGNED = "UA"
_HEADER_SEARCH_LINES = 20  # blank lines tolerated before a header (and its File Date line)
_UNKNOWN = "UNKNOWN"


@dataclass(frozen=True, slots=True)
class PrefixAssignment:
    """Where one NPA-NXX (6 digits) or thousands block (7 digits) is, as one file says."""

    prefix: str
    rate_center: str  # "" = no rate center (unassigned code, or marked UNKNOWN)
    state: str  # "" = not given


@dataclass
class ParsedFile:
    """What one file contributed, and the rows it had to reject."""

    path: Path
    format_name: str
    assignments: list[PrefixAssignment] = field(default_factory=list)
    npa_countries: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    rows_loaded: int = 0
    rows_skipped: int = 0  # valid rows that carry nothing, e.g. unassigned thousands blocks
    # Raw → normalised rate-center name: thousands of rows share a name, so they share one string.
    names: dict[str, str] = field(default_factory=dict, repr=False)


class _BadRow(ReferenceDataError):
    """Control flow: the current row cannot be used; the message says why."""


def column_key(name: str) -> str:
    """Header names compared without case, spaces or punctuation: 'Rate Center' = 'RateCenter'."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def normalise_name(value: str) -> str:
    """Rate-center names keep NANPA's spelling; only runs of whitespace become one space."""
    return " ".join(value.split())


def parse_file(path: Path) -> ParsedFile:
    """Read one rate-center file in whichever known format its header shows."""
    text = _read_text(path)
    # Only the head is split into lines: the rows are read by the csv reader, without a copy.
    head = itertools.islice(io.StringIO(text, newline=""), _HEADER_SEARCH_LINES)
    lines = [line.rstrip("\r\n") for line in head]
    header_index = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_index is None:
        raise ReferenceDataError(f"{path}: wrong format: the file is empty; {EXPECTED_FORMATS}")
    header_line = lines[header_index]
    delimiter = "\t" if "\t" in header_line else ","
    keys = [column_key(cell) for cell in _cells(header_line, delimiter)]
    if keys and keys[0] == "filedate":
        # The NPA database's own header follows its 'File Date' line.
        header_index = next(
            (i for i in range(header_index + 1, len(lines)) if lines[i].strip()), header_index
        )
        keys = [column_key(cell) for cell in _cells(lines[header_index], ",")]
        delimiter = ","
        if not {"npaid", "country"} <= set(keys):
            raise _wrong_format(path, header_index + 1, lines[header_index])
    kind = _classify(keys)
    if kind is None:
        raise _wrong_format(path, header_index + 1, header_line)
    format_name, read_row = kind
    parsed = ParsedFile(path=path, format_name=format_name)
    _read_rows(parsed, text, delimiter, header_index, keys=keys, read_row=read_row)
    return parsed


# A row reader gets the row's cells (padded so every header column and index -1 exist, -1 being
# always "") and the header's column key → index map (absent columns → -1).
_RowReader = Callable[[list[str], dict[str, int], ParsedFile], None]
_ABSENT = -1


def _classify(keys: list[str]) -> tuple[str, _RowReader] | None:
    present = set(keys)
    if {"state", "npanxx", "ratecenter", "use"} <= present:
        return CENTRAL_OFFICE_CODES, _central_office_row
    if {"state", "npa", "nxx", "x", "ratecenter"} <= present:
        return THOUSANDS_BLOCKS, _thousands_block_row
    if {"npaid", "country"} <= present:
        return NPA_DATABASE, _npa_database_row
    if {"prefix", "rc", "state"} <= present:
        return PREFIX_CSV, _prefix_csv_row
    return None


def _read_rows(
    parsed: ParsedFile,
    text: str,
    delimiter: str,
    header_index: int,
    *,
    keys: list[str],
    read_row: _RowReader,
) -> None:
    column: dict[str, int] = defaultdict(lambda: _ABSENT)
    for index, key in enumerate(keys):
        column.setdefault(key, index)
    width = len(keys)
    # NANPA's tab file is not quoted; a stray '"' in a company name must not swallow lines.
    dialect: dict[str, Any] = {"delimiter": delimiter}
    if delimiter == "\t":
        dialect["quoting"] = csv.QUOTE_NONE
    not_utf8 = _NOT_UTF8.search(text) is not None  # (see _read_text)
    for row in csv_lines(io.StringIO(text, newline=""), **dialect):
        if row.number <= header_index + 1:
            continue
        if row.problem is not None:  # (a record is a line: the lines after it are read)
            parsed.problems.append(f"{parsed.path}:{row.number}: {row.problem}")
            continue
        cells = row.cells
        joined = "".join(cells)
        if not joined.strip():
            continue
        if not_utf8 and _NOT_UTF8.search(joined):
            parsed.problems.append(f"{parsed.path}:{row.number}: bytes that are not UTF-8")
            continue
        if len(cells) < width:
            cells.extend([""] * (width - len(cells)))
        cells.append("")  # what an absent column (index -1) reads
        try:
            read_row(cells, column, parsed)
        except _BadRow as bad:
            parsed.problems.append(f"{parsed.path}:{row.number}: {bad}")


def _central_office_row(cells: list[str], column: dict[str, int], parsed: ParsedFile) -> None:
    raw = cells[column["npanxx"]].strip()
    match = _NPA_NXX.fullmatch(raw)
    if match is None:
        raise _BadRow(f"NPA-NXX {raw!r} is not an NPA-NXX like 201-200")
    npa_nxx = match[1] + match[2]
    state = cells[column["state"]].strip().upper()
    if cells[column["use"]].strip().upper() == _UNASSIGNED:
        # Unassigned: a NANP code with no rate center, reported as UNKNOWN (not outside the US).
        parsed.assignments.append(PrefixAssignment(npa_nxx, "", state))
    else:
        rate_center = _rate_center(cells[column["ratecenter"]], "RateCenter", parsed)
        parsed.assignments.append(PrefixAssignment(npa_nxx, rate_center, _state(state)))
    parsed.rows_loaded += 1


def _thousands_block_row(cells: list[str], column: dict[str, int], parsed: ParsedFile) -> None:
    npa = cells[column["npa"]].strip()
    nxx = cells[column["nxx"]].strip()
    block = cells[column["x"]].strip()
    block_prefix = npa + nxx + block
    if not (len(npa) == 3 and len(nxx) == 3 and _NPA_NXX_X_DIGITS.fullmatch(block_prefix)):
        raise _BadRow(f"NPA {npa!r}, NXX {nxx!r}, X {block!r} is not a thousands block")
    status = cells[column["use"]].strip() or cells[column["status"]].strip()
    if status.upper() == _UNASSIGNED:
        # An unassigned block stays in its code's pool: its NPA-NXX's rate center applies.
        parsed.rows_skipped += 1
        return
    rate_center = _rate_center(cells[column["ratecenter"]], "Rate Center", parsed)
    state = _state(cells[column["state"]].strip().upper())
    parsed.assignments.append(PrefixAssignment(block_prefix, rate_center, state))
    parsed.rows_loaded += 1


def _npa_database_row(cells: list[str], column: dict[str, int], parsed: ParsedFile) -> None:
    npa = cells[column["npaid"]].strip()
    if not _NPA.fullmatch(npa):
        raise _BadRow(f"NPA_ID {npa!r} is not an area code")
    parsed.npa_countries[npa] = normalise_name(cells[column["country"]]).upper()
    parsed.rows_loaded += 1


def _prefix_csv_row(cells: list[str], column: dict[str, int], parsed: ParsedFile) -> None:
    raw = cells[column["prefix"]].strip()
    match = _NPA_NXX_X.fullmatch(raw)
    if match is None:
        raise _BadRow(f"prefix {raw!r} is not a 6-digit NPA-NXX or a 7-digit NPA-NXX-X")
    prefix = match[1] + match[2] + (match[3] or "")
    rate_center = _rate_center(cells[column["rc"]], "rc", parsed)
    if rate_center.upper() == _UNKNOWN:
        parsed.assignments.append(PrefixAssignment(prefix, "", ""))
    else:
        state = _state(cells[column["state"]].strip().upper())
        parsed.assignments.append(PrefixAssignment(prefix, rate_center, state))
    parsed.rows_loaded += 1


def _rate_center(raw: str, column: str, parsed: ParsedFile) -> str:
    name = parsed.names.get(raw)
    if name is None:
        name = parsed.names[raw] = normalise_name(raw)
    if not name:
        raise _BadRow(f"{column} is empty")
    return name


def _state(state: str) -> str:
    if not _STATE.fullmatch(state):
        raise _BadRow(f"State {state!r} is not a 2-letter state or province code")
    return state


def _cells(line: str, delimiter: str) -> list[str]:
    if delimiter == "\t":
        return [cell.strip() for cell in line.split("\t")]
    return [cell.strip() for cell in next(csv.reader([line]), [])]


# A multi-byte UTF-8 character: a file that holds one is UTF-8, not Latin-1 (where such pairs,
# "Ã©", are as good as never written).
_UTF8_SEQUENCE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)
_NOT_UTF8 = re.compile("[\udc80-\udcff]")


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ReferenceDataError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    if data.startswith(b"PK\x03\x04"):
        raise ReferenceDataError(
            f"{path}: wrong format: a zip archive; unzip NANPA's download first; {EXPECTED_FORMATS}"
        )
    if b"\x00" in data[:65536]:
        raise ReferenceDataError(f"{path}: wrong format: a binary file; {EXPECTED_FORMATS}")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    if _UTF8_SEQUENCE.search(data) is None:
        # Older NANPA exports are Windows-1252/Latin-1; Latin-1 decodes any byte.
        return data.decode("latin-1")
    # UTF-8 with a few bad bytes (a line pasted from elsewhere): read as Latin-1, every name of
    # the file would be mojibake (Montréal as MontrÃ©al). The bad bytes become lone surrogates,
    # and the rows holding them are rejected by line (_read_rows).
    return data.decode("utf-8-sig", "surrogateescape")


def _wrong_format(path: Path, line: int, header: str) -> ReferenceDataError:
    shown = header.strip()
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return ReferenceDataError(f"{path}:{line}: wrong format: header {shown!r}; {EXPECTED_FORMATS}")
