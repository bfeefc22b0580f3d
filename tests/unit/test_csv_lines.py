"""CSV read a record per line: a stray quote costs its own line, never the lines after it."""

from __future__ import annotations

import csv
import io

import pytest

from streamagg.csv_lines import CsvLine, csv_lines


def read(text: str, **dialect: object) -> list[CsvLine]:
    return list(csv_lines(io.StringIO(text, newline=""), **dialect))


def test_lines_read_as_csv_are_numbered_from_one_blank_ones_included() -> None:
    rows = read('did,account\r\n"+1 212 555 0100","Acme, Inc."\r\n\r\n2125550101,"say ""hi"""\n')
    assert [(r.number, r.cells, r.problem) for r in rows] == [
        (1, ["did", "account"], None),
        (2, ["+1 212 555 0100", "Acme, Inc."], None),
        (3, [], None),
        (4, ["2125550101", 'say "hi"'], None),
    ]


@pytest.mark.parametrize("size", [10, 20_000])
def test_an_unclosed_quote_is_its_lines_problem_and_every_later_line_is_read(size: int) -> None:
    """Read as one record, the quote takes every later line into one cell, to the end of the
    file (or past the csv module's cell size limit, an error that ends the reading)."""
    lines = [f"{2125550000 + i},acct{i}" for i in range(size)]
    lines[3] = '"2125550003,acct3'
    rows = read("\n".join(lines) + "\n")
    assert len(rows) == size
    assert rows[3] == CsvLine(
        4, [], "a quote opens a cell that does not close on its line", lines[3]
    )
    assert [r.cells for r in rows if r.number != 4] == [
        line.split(",") for i, line in enumerate(lines) if i != 3
    ]


def test_a_record_that_closes_a_quote_lines_later_is_read_line_by_line() -> None:
    rows = read('a,"b\nc,d\ne",f\ng,h\n')
    assert [(r.number, r.cells, r.problem is None) for r in rows] == [
        (1, [], False),
        (2, ["c", "d"], True),
        (3, ['e"', "f"], True),  # (a quote inside a cell that does not start with one is text)
        (4, ["g", "h"], True),
    ]


def test_text_after_a_closing_quote_and_an_oversized_cell_are_problems_by_line() -> None:
    rows = read(f'c29,"42,"1.00"\nok,1\n{"x" * (csv.field_size_limit() + 1)},2\nok,3\n')
    assert [(r.number, r.problem) for r in rows] == [
        (1, "a quoted cell is followed by more text before the next separator"),
        (2, None),
        (3, f"a cell longer than {csv.field_size_limit():,} characters"),
        (4, None),
    ]
    assert rows[0].text == 'c29,"42,"1.00"'


def test_a_tab_file_without_quoting_reads_quotes_as_text() -> None:
    rows = read(
        'NJ\t201-200\t"ACME TEL\tX\nNJ\t201-201\tB\tY\n', delimiter="\t", quoting=csv.QUOTE_NONE
    )
    assert [r.cells for r in rows] == [
        ["NJ", "201-200", '"ACME TEL', "X"],
        ["NJ", "201-201", "B", "Y"],
    ]
