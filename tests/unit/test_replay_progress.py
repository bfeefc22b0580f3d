"""Where a `streamagg replay` starts, from the progress an earlier run committed (no Kafka)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamagg.cli.arg_types import kafka_id_part, positive_integer
from streamagg.cli.cdr_export import CdrExport
from streamagg.cli.replay_progress import (
    ExportProgress,
    Fingerprint,
    Mark,
    first_line_to_send,
)
from streamagg.errors import StreamaggError

FILE = Fingerprint(size=1000, head="00112233aabbccdd")
OTHER_FILE = Fingerprint(size=2000, head="ffeeddccbbaa9988")
AT = "2026-12-07T05:00:00Z"


def progress(fingerprint: Fingerprint | None = FILE) -> ExportProgress:
    return ExportProgress("cdrs", "nov.jsonl", fingerprint)


def test_a_first_replay_starts_at_line_one() -> None:
    assert first_line_to_send(None, progress(), resume=False, from_line=None) == 1


def test_resume_goes_on_after_the_committed_line() -> None:
    mark = Mark(4500, False, FILE, AT)
    assert first_line_to_send(mark, progress(), resume=True, from_line=None) == 4501


def test_from_line_wins_whatever_was_sent() -> None:
    for mark in (None, Mark(4500, False, FILE, AT), Mark(9000, True, FILE, AT)):
        assert first_line_to_send(mark, progress(), resume=False, from_line=17) == 17


@pytest.mark.parametrize(
    ("mark", "resume", "expected"),
    [
        (Mark(4500, False, FILE, AT), False, "stopped after line 4,500"),
        (Mark(9000, True, FILE, AT), False, "already sent to cdrs in full"),
        (None, True, "nothing to resume"),
        (Mark(4500, False, OTHER_FILE, AT), True, "read another file (2,000 bytes"),
    ],
)
def test_a_replay_that_could_count_twice_or_skip_is_refused_naming_the_choice(
    mark: Mark | None, resume: bool, expected: str
) -> None:
    with pytest.raises(StreamaggError, match=re.escape(expected)):
        first_line_to_send(mark, progress(), resume=resume, from_line=None)


def test_stdin_has_no_fingerprint_to_compare() -> None:
    mark = Mark(10, False, None, AT)
    assert first_line_to_send(mark, progress(None), resume=True, from_line=None) == 11
    assert first_line_to_send(Mark(10, False, FILE, AT), progress(None), True, None) == 11


@given(
    line=st.integers(min_value=0, max_value=2**62),
    finished=st.booleans(),
    size=st.none() | st.integers(min_value=0, max_value=2**50),
)
def test_a_mark_reads_back_as_written(line: int, finished: bool, size: int | None) -> None:
    fingerprint = None if size is None else Fingerprint(size, "0123456789abcdef")
    mark = Mark(line, finished, fingerprint, AT)
    assert Mark.parse(line, mark.metadata()) == mark


@pytest.mark.parametrize("metadata", ["", "{}", "not json", '{"finished": true}'])
def test_progress_that_is_not_streamagg_is_a_clear_error(metadata: str) -> None:
    with pytest.raises(StreamaggError, match="not streamagg's"):
        Mark.parse(3, metadata)


def test_the_fingerprint_tells_files_apart(tmp_path: Path) -> None:
    one, two, same = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    one.write_bytes(b'{"callid":"1"}\n' * 100)
    two.write_bytes(b'{"callid":"2"}\n' * 100)
    same.write_bytes(one.read_bytes())
    assert Fingerprint.of(one) == Fingerprint.of(same)
    assert Fingerprint.of(one) != Fingerprint.of(two)


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/data/nov cdrs.jsonl.gz", "nov_cdrs.jsonl.gz"), ("-", "stdin"), ("ok-1.csv", "ok-1.csv")],
)
def test_the_default_export_id_is_the_file_name(path: str, expected: str) -> None:
    assert ExportProgress.default_export_id(path) == expected
    assert ExportProgress("t", expected, None).group_id == f"streamagg-replay.t.{expected}"


def test_a_resumed_json_export_skips_the_lines_before_its_first() -> None:
    lines = [b'{"callid":"%d","dt":0,"customer_id":1}\n' % n for n in range(1, 6)]
    lines[1] = b"\n"
    export = CdrExport(lines, "jsonl", first_line=3)
    assert [value for _key, value in export.messages()] == [line.strip() for line in lines[2:]]
    assert export.blank_lines == 0  # the blank line 2 was before the start
    assert export.line_number == 5


def test_a_resumed_csv_export_reads_its_header_and_skips_rows_before_its_first() -> None:
    lines = [b"callid,dt,customer_id\n", b'a,0,"1\n', b"b,0,1\n", b"c,0,1\n", b"d,0,1\n"]
    export = CdrExport(lines, "csv", first_line=4)
    assert [value for _key, value in export.messages()] == [
        b'{"callid":"c","dt":0,"customer_id":"1"}',
        b'{"callid":"d","dt":0,"customer_id":"1"}',
    ]
    assert export.unparseable_lines == []  # line 2's stray quote was sent by the earlier run


@pytest.mark.parametrize("text", ["0", "-3", "1.5", "١", "", "x"])
def test_line_numbers_are_whole_numbers_from_one(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        positive_integer(text)


@pytest.mark.parametrize("text", ["", "a b", "x" * 101, "nov/cdrs", "é"])
def test_export_ids_are_names_kafka_ids_can_hold(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        kafka_id_part(text)
