"""DID inventory without Kafka: the CSV the loader reads and the records every worker applies."""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson
import pytest

from streamagg.cli import build_parser, did_loader
from streamagg.cli.did_loader import parse_did_csv, parse_did_lines
from streamagg.errors import ReferenceDataError
from streamagg.reference.dids import DidInventory, apply_record
from streamagg.settings import Settings

# A broker nobody listens on: the tests below must fail before any connection is tried.
NO_BROKER = Settings(broker="kafka://127.0.0.1:1")


def write(tmp_path: Path, text: str, name: str = "dids.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load(path: Path, settings: Settings = NO_BROKER, replace: bool = False) -> int:
    args = argparse.Namespace(file=str(path), replace=replace, max_removals=10.0)
    return did_loader.run(args, settings)


# --- the CSV ---------------------------------------------------------------------------------


def test_dids_are_normalised_like_the_cdr_side() -> None:
    parsed = parse_did_lines(
        "f.csv",
        [
            "did,account",
            "+1 (212) 555-0100,42",
            "12125550101,43",
            "212.555.0102, 44 ",
            "+44 20 7946 0958,45",
        ],
    )
    assert parsed.owners == {
        "2125550100": "42",
        "2125550101": "43",
        "2125550102": "44",
        "442079460958": "45",
    }
    assert parsed.problems == []


def test_header_columns_are_found_by_name_and_extra_columns_ignored() -> None:
    parsed = parse_did_lines("f.csv", ["Account,Note,DID", "42,main line,2125550100"])
    assert parsed.owners == {"2125550100": "42"}


def test_bad_rows_are_named_by_line_and_the_rest_loads() -> None:
    parsed = parse_did_lines(
        "f.csv",
        [
            "did,account",  # line 1
            "2125550100,42",
            "",  # blank lines are no rows
            "555-CALL-NOW,42",
            "2125550101,",
            ",42",
            "5550100,42",
            "2125550102",
            "2125550103,43",  # line 9
        ],
    )
    assert parsed.owners == {"2125550100": "42", "2125550103": "43"}
    assert [p.split(":")[:2] for p in parsed.problems] == [
        ["f.csv", "4"],
        ["f.csv", "5"],
        ["f.csv", "6"],
        ["f.csv", "7"],
        ["f.csv", "8"],
    ]
    assert "not a phone number" in parsed.problems[0]
    assert "2125550101 has no account" in parsed.problems[1]
    assert "no DID" in parsed.problems[2]
    assert "has 7 digits" in parsed.problems[3]
    # DIDs named on bad lines are remembered so that --replace does not remove them.
    assert parsed.unsure == {"2125550101", "2125550102"}


def test_a_duplicate_with_another_account_keeps_the_first() -> None:
    parsed = parse_did_lines(
        "f.csv",
        ["did,account", "2125550100,42", "1-212-555-0100,42", "+12125550100,99"],
    )
    assert parsed.owners == {"2125550100": "42"}
    assert len(parsed.problems) == 1
    problem = parsed.problems[0]
    assert problem.startswith("f.csv:4: DID 2125550100")
    assert "'99'" in problem and "'42' on line 2" in problem
    assert parsed.unsure == set()


def test_a_byte_order_mark_is_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes("did,account\r\n2125550100,42\r\n".encode("utf-8-sig"))
    assert parse_did_csv(path).owners == {"2125550100": "42"}


def test_quoted_fields_are_read_as_csv(tmp_path: Path) -> None:
    path = write(tmp_path, 'did,account\n"+1 212 555 0100","Acme, Inc."\n')
    assert parse_did_csv(path).owners == {"2125550100": "Acme, Inc."}


@pytest.mark.parametrize(
    "text",
    ["number,owner\n2125550100,42\n", "2125550100,42\n", "did\n2125550100\n", ""],
)
def test_a_wrong_header_is_one_clear_error(tmp_path: Path, text: str) -> None:
    with pytest.raises(ReferenceDataError, match="expected a header line did,account"):
        parse_did_csv(write(tmp_path, text))


def test_a_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ReferenceDataError, match="no such file"):
        parse_did_csv(tmp_path / "absent.csv")


def test_a_file_that_is_not_utf8_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("did,account\n2125550100,Société\n".encode("latin-1"))
    with pytest.raises(ReferenceDataError, match="not UTF-8"):
        parse_did_csv(path)


# --- the command, where it stops before Kafka ---------------------------------------------------


def test_command_with_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert load(tmp_path / "absent.csv") == did_loader.EXIT_FAILED
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [f"streamagg: {tmp_path / 'absent.csv'}: no such file"]


def test_command_with_a_wrong_header(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "phone;customer\n2125550100;42\n")
    assert load(path) == did_loader.EXIT_FAILED
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert "expected a header line did,account" in err and "phone;customer" in err


def test_command_with_no_usable_row_publishes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "did,account\n123,42\n2125550100,\n")
    # The broker address is unreachable: getting past the check would fail differently.
    assert load(path, replace=True) == did_loader.EXIT_FAILED
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"{path}:2: DID '123' has 3 digits; a DID has 10 to 15",
        f"{path}:3: DID 2125550100 has no account",
        f"streamagg: {path}: no usable DID row (2 bad rows); nothing was published",
    ]


# --- the records every worker applies -----------------------------------------------------------


def account(owner: str) -> bytes:
    return orjson.dumps({"account": owner})


def test_apply_adds_changes_and_removes_owners() -> None:
    owners: dict[str, str] = {}
    assert apply_record(owners, b"2125550100", account("42")) is None
    assert apply_record(owners, b"2125550101", account("43")) is None
    assert owners == {"2125550100": "42", "2125550101": "43"}
    assert apply_record(owners, b"2125550100", account("99")) is None
    assert owners == {"2125550100": "99", "2125550101": "43"}
    assert apply_record(owners, b"2125550100", None) is None
    assert owners == {"2125550101": "43"}
    # A tombstone for a DID never seen (already compacted away) is no problem.
    assert apply_record(owners, b"2125550199", None) is None
    assert owners == {"2125550101": "43"}


def test_apply_accepts_extra_fields_numeric_accounts_and_unnormalised_keys() -> None:
    owners: dict[str, str] = {}
    assert apply_record(owners, b"2125550100", b'{"account": "42", "since": "2026"}') is None
    assert apply_record(owners, b"+1 212 555 0101", b'{"account": 43}') is None
    assert owners == {"2125550100": "42", "2125550101": "43"}


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        (b"2125550100", b"not json", "DID 2125550100: value is not JSON"),
        (b"2125550100", b'["42"]', 'DID 2125550100: value has no "account" string'),
        (b"2125550100", b"{}", 'DID 2125550100: value has no "account" string'),
        (b"2125550100", b'{"account": ""}', 'DID 2125550100: value has no "account" string'),
        (b"2125550100", b'{"account": true}', 'DID 2125550100: value has no "account" string'),
        (None, account("42"), "record without a key (the key must be the DID)"),
        (b"abc", account("42"), "key 'abc' is not a DID (no digits)"),
        (b"\xff\xfe", account("42"), "key b'\\xff\\xfe' is not UTF-8"),
    ],
)
def test_a_bad_record_is_reported_and_changes_nothing(
    key: bytes | None, value: bytes, problem: str
) -> None:
    owners = {"2125550100": "42"}
    assert apply_record(owners, key, value) == problem
    assert owners == {"2125550100": "42"}


def test_a_new_inventory_knows_no_did_and_is_not_loaded() -> None:
    inventory = DidInventory(NO_BROKER)
    assert inventory.owner("2125550100") == ""
    assert len(inventory) == 0
    assert not inventory.loaded


@pytest.mark.parametrize("value", ["150", "-1", "ten", "nan"])
def test_max_removals_takes_a_percentage_and_names_a_bad_one(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["dids", "load", "x.csv", "--replace", "--max-removals", value])
    assert exited.value.code == 2
    message = f"argument --max-removals: {value!r} is not a percentage from 0 to 100"
    assert message in capsys.readouterr().err
    assert build_parser().parse_args(["dids", "load", "x.csv"]).max_removals == 10.0


def test_a_stray_quote_costs_its_own_line_and_replace_keeps_the_did_it_names() -> None:
    """Read as one CSV record, the quote would take the 1,498 lines after it into one cell:
    1,500 DIDs missing, so removed by --replace, with one problem reported at the last line."""
    lines = ["did,account"] + [f"{2125510000 + i},acct{i % 7}" for i in range(2_000)]
    lines[501] = f'"{2125510500},acct3'
    parsed = parse_did_lines("f.csv", lines)
    assert len(parsed.owners) == 1_999
    assert "2125510500" not in parsed.owners
    assert parsed.problems == ["f.csv:502: a quote opens a cell that does not close on its line"]
    assert parsed.unsure == {"2125510500"}


@pytest.mark.parametrize("account", ["42\x1fX", "42\x00", "a" * 129, "x\x85y"])
def test_an_account_that_is_no_customer_id_is_a_bad_row(account: str) -> None:
    """The account is the customer id the did-cli report files calls under: a control
    character or one past 128 characters could never match a CDR's customer_id, and the
    report's group key separates fields with \\x1f."""
    parsed = parse_did_lines("f.csv", ["did,account", f"2125550100,{account}", "2125550101,42"])
    assert parsed.owners == {"2125550101": "42"}
    assert parsed.problems[0].startswith("f.csv:2: DID 2125550100: account ")
    assert parsed.unsure == {"2125550100"}


def test_an_account_with_a_control_character_on_the_topic_changes_nothing() -> None:
    mapping = {"2125550100": "42"}
    problem = apply_record(mapping, b"2125550100", orjson.dumps({"account": "7\u001fX"}))
    assert problem is not None and "not a customer id" in problem
    assert mapping == {"2125550100": "42"}
