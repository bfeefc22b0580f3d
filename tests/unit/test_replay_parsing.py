"""How `streamagg replay` turns JSON-lines and CSV exports into CDR messages, without Kafka."""

from __future__ import annotations

import io
from typing import Annotated, get_args, get_origin

import msgspec
import orjson
import pytest

from streamagg.cdr.typical import _Typical
from streamagg.cli.cdr_export import (
    CDR_FIELDS,
    INTEGER_COLUMNS,
    NUMBER_COLUMNS,
    CdrExport,
    detect_format,
)
from streamagg.errors import StreamaggError


def test_json_lines_are_sent_byte_for_byte_with_the_customer_as_key() -> None:
    lines = [
        b'{"callid":"a","dt":0,"customer_id":42}\n',
        b"\n",
        b'{"callid": "b", "customer_id": "x7", "dt": "2026-01-01T00:00:00Z"}\r\n',
        b"   \n",
        b"not json at all \xff\n",
        b'{"callid":"c","dt":0}\n',
        b'{"callid":"d","dt":0,"customer_id":true}',
    ]
    export = CdrExport(lines, "jsonl")
    assert list(export.messages()) == [
        (b"42", b'{"callid":"a","dt":0,"customer_id":42}'),
        (b"x7", b'{"callid": "b", "customer_id": "x7", "dt": "2026-01-01T00:00:00Z"}'),
        (None, b"not json at all \xff"),
        (None, b'{"callid":"c","dt":0}'),
        (None, b'{"callid":"d","dt":0,"customer_id":true}'),
    ]
    assert export.blank_lines == 2
    assert export.unparseable_lines == [5]


def test_json_lines_without_keys_when_asked() -> None:
    export = CdrExport([b'{"callid":"a","dt":0,"customer_id":42}'], "jsonl", keyed=False)
    assert [key for key, _value in export.messages()] == [None]


def test_csv_rows_become_cdr_objects_with_numbers_where_the_spec_wants_them() -> None:
    text = io.BytesIO(
        "\ufeffcallid,dt,customer_id,provider_id,customer_charge,provider_charge,dest_number,"
        "dest_cli,tech_prefix,duration,sip_code,dtmf\n"
        "c1,2026-01-01 00:00:00,42,7,0.012300,0.0100,+12015550123,12015550000,123#,61,200,\n"
        "c2,1767225600,43,,,,,,,0,486,12#\n"
        "c3,1767225600.25,44,,1.5,,,,,12.5,busy,\n"
        ",,,,,,,,,,,\n"
        '"c4","2026-01-01T00:00:00Z","45",,,,,"12015550000",,,,\n'.encode()
    )
    export = CdrExport(text, "csv")
    messages = list(export.messages())
    assert [key for key, _value in messages] == [b"42", b"43", b"44", b"45"]
    assert [orjson.loads(value) for _key, value in messages] == [
        {
            "callid": "c1",
            "dt": "2026-01-01 00:00:00",
            "customer_id": "42",
            "provider_id": "7",
            "customer_charge": "0.012300",
            "provider_charge": "0.0100",
            "dest_number": "+12015550123",
            "dest_cli": "12015550000",
            "tech_prefix": "123#",
            "duration": 61,
            "sip_code": 200,
        },
        {"callid": "c2", "dt": 1767225600, "customer_id": "43", "duration": 0, "sip_code": 486,
         "dtmf": "12#"},
        # An unparseable sip_code is kept as written: the worker rejects it, naming the field.
        {"callid": "c3", "dt": 1767225600.25, "customer_id": "44", "customer_charge": "1.5",
         "duration": 12.5, "sip_code": "busy"},
        {"callid": "c4", "dt": "2026-01-01T00:00:00Z", "customer_id": "45",
         "dest_cli": "12015550000"},
    ]  # fmt: skip
    assert export.blank_lines == 1


def test_csv_cells_beyond_the_header_and_extra_columns() -> None:
    export = CdrExport([b"callid,dt,customer_id,switch\n", b"c,x,1,sbc1,extra\n"], "csv")
    (message,) = export.messages()
    assert orjson.loads(message[1]) == {
        "callid": "c",
        "dt": "x",
        "customer_id": "1",
        "switch": "sbc1",
    }


def test_a_stray_quote_costs_its_own_line_only_sent_as_written_for_the_dead_letter_topic() -> None:
    """Read as one CSV record, a quote that does not close on its line takes every later line
    into one cell (the export's rest lost, one bad message); a CDR export's record is a line."""
    lines = [b"callid,dt,customer_id,customer_charge\n"]
    lines += [f"c{i},1795613400,42,1.00\n".encode() for i in range(50)]
    lines[10] = b'c9,1795613400,"42,1.00\n'
    lines[30] = b'c29,1795613400,"42,"1.00"\n'  # (a closing quote further on, not at a comma)
    export = CdrExport(lines, "csv")
    messages = list(export.messages())
    assert len(messages) == 50
    assert messages[9] == (None, b'c9,1795613400,"42,1.00')
    assert messages[29] == (None, b'c29,1795613400,"42,"1.00"')
    assert export.unparseable_lines == [11, 31]
    good = [orjson.loads(value)["callid"] for key, value in messages if key is not None]
    assert good == [f"c{i}" for i in range(50) if i not in (9, 29)]


@pytest.mark.parametrize(
    ("cell", "sent"),
    [
        ("61", 61),
        ("+200", 200),
        (" 12.5 ", 12.5),
        ("1e3", 1000.0),
        ("nan", "nan"),  # (float() takes these; JSON would write them as null: accepted as 0)
        ("inf", "inf"),
        ("-Infinity", "-Infinity"),
        ("1_5", "1_5"),
        ("\uff12\uff10\uff10", "\uff12\uff10\uff10"),  # full-width digits
        ("1" + "0" * 400, "1" + "0" * 400),
        ("1e400", "1e400"),
    ],
)
def test_numbers_are_sent_as_numbers_only_when_json_would_write_them_so(
    cell: str, sent: object
) -> None:
    header = b"callid,dt,customer_id,duration\n"
    export = CdrExport([header, f"c,0,1,{cell}\n".encode()], "csv")
    (message,) = export.messages()
    assert orjson.loads(message[1])["duration"] == sent


def test_csv_without_the_required_columns_is_refused() -> None:
    export = CdrExport(io.BytesIO(b"id,when\n1,2\n"), "csv")
    with pytest.raises(StreamaggError, match="callid, customer_id, dt"):
        list(export.messages())


def test_a_csv_line_that_is_not_utf8_is_sent_as_written_and_the_rest_read_on() -> None:
    """It stopped the replay there: the lines after it unsent, and sending the file again
    would count its first part twice once older than the dedup horizon."""
    lines = [b"callid,dt,customer_id\n", b"a,0,\xff\n", b"b,0,7\r\n"]
    export = CdrExport(lines, "csv")
    messages = list(export.messages())
    assert messages[0] == (None, b"a,0,\xff")
    assert [orjson.loads(v)["callid"] for _k, v in messages[1:]] == ["b"]
    assert export.unparseable_lines == [2]


@pytest.mark.parametrize(
    ("name", "first_line", "expected"),
    [
        ("export.csv", "{", "csv"),
        ("export.CSV.gz", "", "csv"),
        ("export.jsonl", "callid,dt", "jsonl"),
        ("export.json", "", "jsonl"),
        ("export.ndjson.gz", "", "jsonl"),
        ("export.txt", '  {"callid":1}', "jsonl"),
        ("export.txt", "callid,dt,customer_id", "csv"),
        ("-", '{"callid":1}', "jsonl"),
    ],
)
def test_format_by_extension_then_content(name: str, first_line: str, expected: str) -> None:
    assert detect_format(name, first_line) == expected


def test_a_line_larger_than_a_cdr_is_sent_cut_and_listed_not_the_end_of_the_export() -> None:
    """A 2 MB line did not fit a Kafka batch: the export stopped there, naming no line."""
    big = b'{"callid":"big","dt":0,"customer_id":"1","x":"' + b"y" * 2_000_000 + b'"}'
    lines = [b'{"callid":"a","dt":0,"customer_id":"1"}\n', big + b"\n", b'{"callid":"b","dt":0}\n']
    export = CdrExport(lines, "jsonl")
    messages = list(export.messages())
    assert [len(value) for _key, value in messages] == [
        len(lines[0]) - 1,
        65_537,
        len(lines[2]) - 1,
    ]
    assert messages[1][1] == big[:65_537]
    assert export.oversized_lines == [(2, len(big))]


def test_replay_sends_numbers_where_the_contract_allows_no_text() -> None:
    """The contract's fields as the decoder types them (SPEC §1): a field that takes no text
    must leave a CSV as a JSON number, or every call carrying it is dead-lettered (found by an
    audit: a pdd_ms column sent as text)."""
    contract = {f.name: f.type for f in msgspec.structs.fields(_Typical)}
    assert set(CDR_FIELDS) == set(contract)
    for name, annotation in contract.items():
        types = get_args(annotation) if get_origin(annotation) is not Annotated else ()
        allowed = {_plain(t) for t in types} - {type(None)} or {_plain(annotation)}
        if str not in allowed:
            assert name in (NUMBER_COLUMNS if float in allowed else INTEGER_COLUMNS), name


def _plain(annotation: object) -> object:
    """The type of a field's annotation without its bounds (Annotated[int, Meta(...)])."""
    return get_args(annotation)[0] if get_origin(annotation) is Annotated else annotation


def test_a_pdd_column_is_sent_as_milliseconds() -> None:
    export = CdrExport([b"callid,dt,customer_id,sip_code,pdd_ms\n", b"c,0,1,200,800\n"], "csv")
    assert [orjson.loads(value) for _key, value in export.messages()] == [
        {"callid": "c", "dt": 0, "customer_id": "1", "sip_code": 200, "pdd_ms": 800}
    ]
