"""US rate centers by dialed NPA-NXX(-X): loading NANPA's files and resolving report prefixes.

Decisions (also in docs/reference-data.md):

- The longest prefix wins: a thousands block (NPA-NXX-X) before its NPA-NXX. A block is reported
  under its own 7 digits only when its rate center (or state) differs from its NPA-NXX's, or when
  the NPA-NXX itself is unknown or unassigned; otherwise it folds into the 6-digit row.
- Unassigned codes (``Use`` = ``UA``), prefixes marked ``UNKNOWN`` in the plain CSV, and NANP
  prefixes no file knows report as ``rc`` = ``state`` = ``"UNKNOWN"`` under the 6-digit prefix.
- Outside the US (``resolve`` → None): an NPA whose ``COUNTRY`` in the NPA database is set and is
  not ``US``. A blank ``COUNTRY`` (NANPA leaves it blank for toll-free and other non-geographic
  codes) places the NPA nowhere, so its prefixes stay in the report as UNKNOWN. For NPAs the NPA
  database does not place, the State column decides: a row naming a Canadian province or territory
  is outside the US, and so is every prefix of an NPA whose rows all name one.
- Several files merge in the order given (a folder's files sorted by name); a prefix listed again
  by a later file replaces the earlier entry.
- A load is all or nothing: an unreadable file, a file in no known format, a file without one
  usable row, or a missing path fails the whole load, and a ``RateCenterSource`` keeps its old data.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from streamagg.errors import RateCenterLoadError, ReferenceDataError
from streamagg.reference.nanpa_formats import ParsedFile, PrefixAssignment, parse_file

UNKNOWN = "UNKNOWN"
US_COUNTRY_NAMES = frozenset({"US", "USA", "UNITED STATES"})
# Canada is the other large NANP member; its province codes are what a State column shows for it.
CANADIAN_PROVINCE_CODES = frozenset(
    {"AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT"}
)
_NANP_LEADING_DIGITS = frozenset("23456789")
_MAX_LOGGED_PROBLEMS = 20


@dataclass(frozen=True, slots=True)
class RateCenterRow:
    """What the rate-center report shows for a dialed prefix."""

    prefix: str  # 6 digits NPA-NXX, or 7 digits NPA-NXX-X when the block's rate center differs
    rc: str  # rate center name, or "UNKNOWN"
    state: str  # 2-letter state, or "UNKNOWN"


_NOT_LISTED = RateCenterRow("", "", "")


class RateCenterDirectory:
    """Immutable prefix → report row lookup; every answer is one or two dict lookups."""

    __slots__ = ("_by_block", "_by_code", "_outside_npas")

    def __init__(
        self,
        by_code: Mapping[str, RateCenterRow | None],
        by_block: Mapping[str, RateCenterRow | None],
        outside_npas: Iterable[str],
    ) -> None:
        # None in either map = that prefix is outside the US.
        self._by_code = dict(by_code)
        self._by_block = dict(by_block)
        self._outside_npas = frozenset(outside_npas)

    @classmethod
    def empty(cls) -> RateCenterDirectory:
        """No data: every NANP prefix reports as UNKNOWN."""
        return cls({}, {}, ())

    def resolve(self, npanxxx: str) -> RateCenterRow | None:
        """npanxxx: the first 7 digits of a 10-digit NANP number. None = outside the US (leave out
        of the report); a string that is not such a prefix is also None, as it is no NANP number."""
        if (
            len(npanxxx) != 7
            or not npanxxx.isascii()
            or not npanxxx.isdigit()
            or npanxxx[0] not in _NANP_LEADING_DIGITS
            or npanxxx[3] not in _NANP_LEADING_DIGITS
        ):
            return None
        if npanxxx[:3] in self._outside_npas:
            return None
        row = self._by_block.get(npanxxx, _NOT_LISTED)
        if row is not _NOT_LISTED:
            return row
        npa_nxx = npanxxx[:6]
        row = self._by_code.get(npa_nxx, _NOT_LISTED)
        if row is not _NOT_LISTED:
            return row
        return RateCenterRow(npa_nxx, UNKNOWN, UNKNOWN)

    @property
    def prefix_count(self) -> int:
        """NPA-NXX codes plus separately reported thousands blocks known."""
        return len(self._by_code) + len(self._by_block)

    @property
    def outside_npas(self) -> frozenset[str]:
        return self._outside_npas


@dataclass(frozen=True)
class LoadResult:
    """A usable directory, and the rows that were rejected on the way."""

    directory: RateCenterDirectory
    problems: list[str]  # one line each: "path:line: reason"
    rows_loaded: int


def load_rate_centers(paths: Sequence[Path]) -> LoadResult:
    """Load files and folders (a folder's regular, non-hidden files, sorted by name), in order."""
    files, failures = _expand_paths(paths)
    parsed_files: list[ParsedFile] = []
    problems: list[str] = []
    for path in files:
        try:
            parsed = parse_file(path)
        except ReferenceDataError as exc:
            failures.append(str(exc))
            continue
        problems.extend(parsed.problems)
        if parsed.rows_loaded == 0:
            rejected = len(parsed.problems)
            reason = f"all {rejected} data rows rejected" if rejected else "no data rows"
            failures.append(f"{path}: no usable row in this {parsed.format_name} ({reason})")
        parsed_files.append(parsed)
    if not paths:
        failures.append("no rate-center file or folder given")
    if failures:
        raise RateCenterLoadError(failures, problems)
    return LoadResult(
        directory=build_directory(parsed_files),
        problems=problems,
        rows_loaded=sum(parsed.rows_loaded for parsed in parsed_files),
    )


def build_directory(parsed_files: Iterable[ParsedFile]) -> RateCenterDirectory:
    """Merge parsed files (later ones win per prefix) into the lookup the report uses."""
    codes: dict[str, PrefixAssignment] = {}
    blocks: dict[str, PrefixAssignment] = {}
    countries: dict[str, str] = {}
    for parsed in parsed_files:
        for assignment in parsed.assignments:
            target = blocks if len(assignment.prefix) == 7 else codes
            target[assignment.prefix] = assignment
        countries.update(parsed.npa_countries)

    # NPA → in the US, for the NPAs the NPA database places in a country.
    placed_npas = {npa: c in US_COUNTRY_NAMES for npa, c in countries.items() if c}
    outside_npas = {npa for npa, in_us in placed_npas.items() if not in_us}
    states_by_npa: dict[str, set[str]] = defaultdict(set)
    for assignment in (*codes.values(), *blocks.values()):
        if assignment.state:
            states_by_npa[assignment.prefix[:3]].add(assignment.state)
    for npa, states in states_by_npa.items():
        if npa not in placed_npas and states <= CANADIAN_PROVINCE_CODES:
            outside_npas.add(npa)

    def is_outside(assignment: PrefixAssignment) -> bool:
        npa = assignment.prefix[:3]
        return npa not in placed_npas and assignment.state in CANADIAN_PROVINCE_CODES

    by_code: dict[str, RateCenterRow | None] = {
        prefix: None if is_outside(code) else _report_row(code) for prefix, code in codes.items()
    }
    by_block: dict[str, RateCenterRow | None] = {}
    for prefix, block in blocks.items():
        if is_outside(block):
            by_block[prefix] = None
            continue
        code = codes.get(prefix[:6])
        if code is not None and by_code.get(code.prefix) and _same_place(code, block):
            continue  # the block reports under its NPA-NXX's row
        by_block[prefix] = _report_row(block)
    return RateCenterDirectory(by_code, by_block, outside_npas)


def _report_row(assignment: PrefixAssignment) -> RateCenterRow:
    if not assignment.rate_center:
        return RateCenterRow(assignment.prefix, UNKNOWN, UNKNOWN)
    return RateCenterRow(assignment.prefix, assignment.rate_center, assignment.state or UNKNOWN)


def _same_place(code: PrefixAssignment, block: PrefixAssignment) -> bool:
    # Case differences between files (e.g. a hand-written CSV) are not a different rate center.
    return (
        bool(code.rate_center)
        and code.rate_center.casefold() == block.rate_center.casefold()
        and code.state == block.state
    )


def _expand_paths(paths: Sequence[Path]) -> tuple[list[Path], list[str]]:
    files: list[Path] = []
    failures: list[str] = []
    for path in paths:
        try:
            if path.is_dir():
                entries = sorted(_folder_files(path))
                if not entries:
                    failures.append(f"{path}: the folder holds no rate-center file")
                files.extend(entries)
            elif path.is_file():
                files.append(path)
            elif path.exists():
                failures.append(f"{path}: not a regular file or folder")
            else:
                failures.append(f"{path}: no such file or folder")
        except OSError as exc:
            failures.append(f"{path}: cannot read ({exc.strerror or exc})")
    return files, failures


def _folder_files(folder: Path) -> list[Path]:
    # Hidden names are skipped so a file can be written as '.name' and renamed into place.
    return [p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file()]


class RateCenterSource:
    """Holds the current directory; reloads when the files change (mtime/size/set of files)."""

    def __init__(self, spec: str, log: logging.Logger | None = None) -> None:
        """spec: the STREAMAGG_RATECENTERS value, paths separated by ':'; "" = no data."""
        self.paths: tuple[Path, ...] = tuple(
            Path(part.strip()) for part in spec.split(":") if part.strip()
        )
        self._log = log or logging.getLogger(__name__)
        self._current = RateCenterDirectory.empty()
        self._fingerprint: tuple[tuple[object, ...], ...] | None = None
        self.last_problems: list[str] = []
        self.last_error: str | None = None
        self.loaded_at: datetime | None = None
        self.rows_loaded = 0
        self.maybe_reload()

    @property
    def current(self) -> RateCenterDirectory:
        return self._current

    def maybe_reload(self) -> bool:
        """Reload if any file changed; True when new data was taken. Cheap when nothing changed:
        one stat per file. A failed load keeps the old data and is logged once per change."""
        if not self.paths:
            return False
        fingerprint = self._fingerprint_now()
        if fingerprint == self._fingerprint:
            return False
        # Remembered before loading: a file changing during the load triggers another reload,
        # and a broken file is reported once, not at every check.
        self._fingerprint = fingerprint
        try:
            result = load_rate_centers(self.paths)
        except RateCenterLoadError as exc:
            self.last_error = str(exc)
            self.last_problems = [*exc.failures, *exc.problems]
            kept = (
                f"keeping the data loaded at {self.loaded_at:%Y-%m-%d %H:%M:%S}Z"
                if self.loaded_at
                else "no data yet: every NANP prefix reports as UNKNOWN"
            )
            self._log.warning("%s; %s", exc, kept)
            self._log_problems(exc.problems)
            return False
        self._current = result.directory
        self.last_error = None
        self.last_problems = result.problems
        self.loaded_at = datetime.now(UTC)
        self.rows_loaded = result.rows_loaded
        self._log.info(
            "rate centers loaded: %d rows from %s, %d rows rejected",
            result.rows_loaded,
            ":".join(str(p) for p in self.paths),
            len(result.problems),
        )
        self._log_problems(result.problems)
        return True

    def _log_problems(self, problems: list[str]) -> None:
        # A broken export can reject every row; the log shows a sample, the status view all.
        for problem in problems[:_MAX_LOGGED_PROBLEMS]:
            self._log.warning("rate-center row rejected: %s", problem)
        if len(problems) > _MAX_LOGGED_PROBLEMS:
            self._log.warning(
                "rate-center rows rejected: %d more not shown", len(problems) - _MAX_LOGGED_PROBLEMS
            )

    def _fingerprint_now(self) -> tuple[tuple[object, ...], ...]:
        marks: list[tuple[object, ...]] = []
        for path in self.paths:
            try:
                candidates = sorted(_folder_files(path)) if path.is_dir() else [path]
                for file in candidates:
                    stat = os.stat(file)
                    marks.append((str(file), stat.st_mtime_ns, stat.st_size))
            except OSError as exc:
                marks.append((str(path), type(exc).__name__))
        return tuple(marks)
