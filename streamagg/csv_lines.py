"""CSV where a record is one line: what every file streamagg reads (DID inventories, rate
centers, CDR exports) holds, since none of their cells holds a line break.

Python's csv module lets a quoted cell run over line breaks, so one stray quote (`"2125550100,
acct6` in a DID file) joins every later line into one cell, up to the next quote or the end:
thousands of rows gone, and one problem reported, at the wrong line. Here a record that would
span lines, or that the csv module refuses (an unclosed quote, a cell past its size limit), is
read again line by line: the line at fault is reported by its number and every other line is
read on its own. Files read right cost one reader, as before.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class CsvLine:
    """One line of the file (numbered from 1): its cells, or why it has none."""

    number: int
    cells: list[str]
    problem: str | None = None
    text: str = ""  # the line as read, when it has a problem


def csv_lines(lines: Iterable[str], **dialect: Any) -> Iterator[CsvLine]:
    """The records of ``lines`` (each a line, its line break kept or not), one per line;
    ``dialect`` as for csv.reader. A blank line has no cells."""
    taken: list[str] = []  # the lines handed to the reader since the last record

    def tape() -> Iterator[str]:
        for line in lines:
            taken.append(line)
            yield line

    reader = csv.reader(tape(), strict=True, **dialect)
    number = 0
    while True:
        taken.clear()
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error:
            cells = None
        if cells is not None and len(taken) == 1:
            number += 1
            yield CsvLine(number, cells)
            continue
        for line in list(taken):  # (a record over several lines, or refused: each alone)
            number += 1
            yield _alone(number, line, dialect)


def _alone(number: int, line: str, dialect: dict[str, Any]) -> CsvLine:
    """One line read on its own, strictly: a quote that does not close on it, text after a
    closing quote (`"42,"1.00"`), a cell past the size limit are the line's problem."""
    try:
        return CsvLine(number, next(csv.reader((line,), strict=True, **dialect), []))
    except csv.Error as exc:
        return CsvLine(number, [], _problem(str(exc)), line.rstrip("\r\n"))


def _problem(reason: str) -> str:
    if "unexpected end of data" in reason:
        return "a quote opens a cell that does not close on its line"
    if "field larger than field limit" in reason:
        return f"a cell longer than {csv.field_size_limit():,} characters"
    if "expected after" in reason:
        return "a quoted cell is followed by more text before the next separator"
    return f"not valid CSV ({reason})"
