"""Rate-center reference data: NANPA's formats, prefix resolution, bad rows and live reloads."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

from streamagg.errors import ReferenceDataError
from streamagg.reference.ratecenters import (
    UNKNOWN,
    RateCenterDirectory,
    RateCenterLoadError,
    RateCenterRow,
    RateCenterSource,
    load_rate_centers,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "ratecenters"
CENTRAL_OFFICE_CODES = DATA / "allutlzd.txt"
THOUSANDS_BLOCKS = DATA / "thousands_blocks.csv"
NPA_DATABASE = DATA / "npa_report.csv"
PREFIX_CSV = DATA / "prefixes.csv"
CO_HEADER = (
    "State\tNPA-NXX\tOCN\tCompany\tRateCenter\tEffectiveDate\tUse\tAssignDate\tInitial/Growth"
)


def co_line(state: str, npa_nxx: str, rate_center: str, use: str = "AS") -> str:
    return "\t".join([state, npa_nxx, "9102", "SOME TELCO", rate_center, "", use, "", "I"])


def write(path: Path, lines: list[str], mtime: int | None = None) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


@pytest.fixture
def nanpa_directory() -> RateCenterDirectory:
    """The three NANPA sample files together, as an operator would point at them."""
    return load_rate_centers([CENTRAL_OFFICE_CODES, THOUSANDS_BLOCKS, NPA_DATABASE]).directory


# --- each published format, from files in its exact layout -------------------------------------


def test_central_office_code_file_tab_separated_with_padding_and_crlf() -> None:
    result = load_rate_centers([CENTRAL_OFFICE_CODES])
    directory = result.directory
    assert result.problems == []
    assert result.rows_loaded == 6
    assert directory.resolve("2012001") == RateCenterRow("201200", "JERSEY CITY", "NJ")
    assert directory.resolve("2012029") == RateCenterRow("201202", "HACKENSACK", "NJ")
    # 'ST.  LOUIS  ' in the file: whitespace runs collapse, spelling stays NANPA's.
    assert directory.resolve("3142005") == RateCenterRow("314200", "ST. LOUIS", "MO")


def test_unassigned_code_is_unknown_not_outside_the_us() -> None:
    directory = load_rate_centers([CENTRAL_OFFICE_CODES]).directory
    assert directory.resolve("2012030") == RateCenterRow("201203", UNKNOWN, UNKNOWN)


def test_thousands_block_file_quoted_fields_with_commas() -> None:
    result = load_rate_centers([THOUSANDS_BLOCKS])
    assert result.problems == []
    assert result.rows_loaded == 5  # six data rows, one of them an unassigned (UA) block
    # The company "PALISADES CLEC, LLC - NJ" holds a comma; the rate center is still found.
    assert result.directory.resolve("2012024") == RateCenterRow("2012024", "ENGLEWOOD", "NJ")


def test_npa_database_with_file_date_line() -> None:
    result = load_rate_centers([NPA_DATABASE])
    assert result.problems == []
    assert result.rows_loaded == 7
    assert result.directory.outside_npas == frozenset({"416", "876", "242"})


def test_plain_csv_six_and_seven_digit_prefixes() -> None:
    directory = load_rate_centers([PREFIX_CSV]).directory
    assert directory.resolve("2122261") == RateCenterRow("212226", "NWYRCYZN01", "NY")
    assert directory.resolve("2122265") == RateCenterRow("2122265", "NWYRCYZN 03", "NY")
    assert directory.resolve("6465551") == RateCenterRow("646555", UNKNOWN, UNKNOWN)


def test_format_comes_from_the_header_not_the_file_name(tmp_path: Path) -> None:
    misleading = tmp_path / "thousands_blocks.csv"
    shutil.copy(CENTRAL_OFFICE_CODES, misleading)
    directory = load_rate_centers([misleading]).directory
    assert directory.resolve("2012001") == RateCenterRow("201200", "JERSEY CITY", "NJ")


def test_latin1_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "codes.txt"
    path.write_bytes(
        (CO_HEADER + "\n" + co_line("PR", "787-201", "MAYAGÜEZ") + "\n").encode("latin-1")
    )
    directory = load_rate_centers([path]).directory
    assert directory.resolve("7872010") == RateCenterRow("787201", "MAYAGÜEZ", "PR")


# --- pooled blocks and the longest prefix ----------------------------------------------------


def test_block_with_same_rate_center_reports_under_its_npa_nxx(
    nanpa_directory: RateCenterDirectory,
) -> None:
    assert nanpa_directory.resolve("2012023") == RateCenterRow("201202", "HACKENSACK", "NJ")
    # 'ST. LOUIS' in the block file, 'ST.  LOUIS  ' in the code file: the same rate center.
    assert nanpa_directory.resolve("3142001") == RateCenterRow("314200", "ST. LOUIS", "MO")


def test_block_with_other_rate_center_reports_under_seven_digits(
    nanpa_directory: RateCenterDirectory,
) -> None:
    assert nanpa_directory.resolve("2012024") == RateCenterRow("2012024", "ENGLEWOOD", "NJ")
    # Other blocks of the same pooled code keep the code's rate center.
    assert nanpa_directory.resolve("2012025") == RateCenterRow("201202", "HACKENSACK", "NJ")


def test_unassigned_block_keeps_its_codes_rate_center(
    nanpa_directory: RateCenterDirectory,
) -> None:
    assert nanpa_directory.resolve("2012029") == RateCenterRow("201202", "HACKENSACK", "NJ")


def test_block_of_an_unknown_or_unassigned_code_reports_under_seven_digits(
    nanpa_directory: RateCenterDirectory,
) -> None:
    assert nanpa_directory.resolve("2012095") == RateCenterRow("2012095", "TEANECK", "NJ")
    assert nanpa_directory.resolve("2012091") == RateCenterRow("201209", UNKNOWN, UNKNOWN)
    assert nanpa_directory.resolve("2012037") == RateCenterRow("2012037", "FORT LEE", "NJ")
    assert nanpa_directory.resolve("2012031") == RateCenterRow("201203", UNKNOWN, UNKNOWN)


def test_rate_center_case_difference_between_files_is_the_same_place(tmp_path: Path) -> None:
    codes = write(tmp_path / "codes.txt", [CO_HEADER, co_line("NJ", "201-210", "HACKENSACK")])
    blocks = write(tmp_path / "blocks.csv", ["prefix,rc,state", "2012104,Hackensack,NJ"])
    directory = load_rate_centers([codes, blocks]).directory
    assert directory.resolve("2012104") == RateCenterRow("201210", "HACKENSACK", "NJ")


def test_later_file_replaces_a_prefix_of_an_earlier_one() -> None:
    directory = load_rate_centers([CENTRAL_OFFICE_CODES, PREFIX_CSV]).directory
    # Both files list 201-200 as JERSEY CITY; the CSV adds 212-226 the code file lacks.
    assert directory.resolve("2012001") == RateCenterRow("201200", "JERSEY CITY", "NJ")
    assert directory.resolve("2122260") == RateCenterRow("212226", "NWYRCYZN01", "NY")


# --- outside the US and unknown prefixes -----------------------------------------------------


def test_canadian_and_caribbean_npas_are_outside_the_us(
    nanpa_directory: RateCenterDirectory,
) -> None:
    assert nanpa_directory.resolve("4165551") is None  # CANADA
    assert nanpa_directory.resolve("8765551") is None  # JAMAICA
    assert nanpa_directory.resolve("2425551") is None  # BAHAMAS


def test_us_territory_and_non_geographic_npas_stay_in_the_report(
    nanpa_directory: RateCenterDirectory,
) -> None:
    assert nanpa_directory.resolve("7872001") == RateCenterRow("787200", "SAN JUAN", "PR")
    # 800 has no COUNTRY in the NPA database: placed nowhere, so UNKNOWN rather than left out.
    assert nanpa_directory.resolve("8005551") == RateCenterRow("800555", UNKNOWN, UNKNOWN)


def test_unknown_nanp_prefix_is_unknown_with_six_digits(
    nanpa_directory: RateCenterDirectory,
) -> None:
    assert nanpa_directory.resolve("2019995") == RateCenterRow("201999", UNKNOWN, UNKNOWN)
    assert nanpa_directory.resolve("5055551") == RateCenterRow("505555", UNKNOWN, UNKNOWN)


def test_without_npa_database_canadian_provinces_in_state_column_are_outside(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path / "prefixes.csv",
        ["prefix,rc,state", "416200,TORONTO,ON", "613200,OTTAWA HULL,ON", "212226,NWYRCYZN01,NY"],
    )
    directory = load_rate_centers([path]).directory
    assert directory.resolve("4162001") is None
    assert directory.resolve("4169991") is None  # an NXX no file lists, in a Canadian NPA
    assert directory.resolve("6132001") is None
    assert directory.resolve("2122261") == RateCenterRow("212226", "NWYRCYZN01", "NY")


def test_npa_database_country_overrides_the_state_column(tmp_path: Path) -> None:
    codes = write(tmp_path / "codes.csv", ["prefix,rc,state", "201200,JERSEY CITY,ON"])
    directory = load_rate_centers([codes, NPA_DATABASE]).directory
    assert directory.resolve("2012001") == RateCenterRow("201200", "JERSEY CITY", "ON")


def test_empty_directory_and_non_nanp_input() -> None:
    directory = RateCenterDirectory.empty()
    assert directory.resolve("2015551") == RateCenterRow("201555", UNKNOWN, UNKNOWN)
    for not_a_prefix in ("201555", "20155512", "1015551", "2011551", "20155a1", ""):
        assert directory.resolve(not_a_prefix) is None


# --- bad rows, wrong formats and failed loads ------------------------------------------------


def test_bad_rows_are_reported_by_line_and_the_rest_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path / "codes.txt",
        [
            CO_HEADER,
            co_line("NJ", "201-200", "JERSEY CITY"),
            co_line("NJ", "20-1200", "JERSEY CITY"),
            co_line("NJ", "201-201", "   "),
            "",
            co_line("N1", "201-205", "BAYONNE"),
            co_line("NJ", "201-206", "BAYONNE"),
        ],
    )
    result = load_rate_centers([path])
    assert result.problems == [
        f"{path}:3: NPA-NXX '20-1200' is not an NPA-NXX like 201-200",
        f"{path}:4: RateCenter is empty",
        f"{path}:6: State 'N1' is not a 2-letter state or province code",
    ]
    assert result.rows_loaded == 2
    assert result.directory.resolve("2012061") == RateCenterRow("201206", "BAYONNE", "NJ")
    assert result.directory.resolve("2012051") == RateCenterRow("201205", UNKNOWN, UNKNOWN)


def test_bad_rows_in_block_csv_and_npa_database(tmp_path: Path) -> None:
    blocks = write(
        tmp_path / "blocks.csv",
        [
            "State,NPA,NXX,X,Rate Center",
            "NJ,201,202,4,ENGLEWOOD",
            "NJ,201,202,45,ENGLEWOOD",
            'NJ,201,202,6,""',
        ],
    )
    npas = write(
        tmp_path / "npa.csv",
        ["File Date,11/02/2026", "NPA_ID,LOCATION,COUNTRY", "416,ON,CANADA", "41,ON,CANADA"],
    )
    result = load_rate_centers([blocks, npas])
    assert result.problems == [
        f"{blocks}:3: NPA '201', NXX '202', X '45' is not a thousands block",
        f"{blocks}:4: Rate Center is empty",
        f"{npas}:4: NPA_ID '41' is not an area code",
    ]
    assert result.rows_loaded == 2


def test_wrong_format_names_the_file_and_what_was_expected(tmp_path: Path) -> None:
    path = write(tmp_path / "numbers.csv", ["number,owner", "2015551234,42"])
    with pytest.raises(RateCenterLoadError) as raised:
        load_rate_centers([CENTRAL_OFFICE_CODES, path])
    message = str(raised.value)
    assert f"{path}:1: wrong format: header 'number,owner'" in message
    assert "central office code file" in message and "prefix,rc,state" in message
    assert isinstance(raised.value, ReferenceDataError)


def test_zip_archive_and_empty_file_are_wrong_formats(tmp_path: Path) -> None:
    archive = tmp_path / "allutlzd.zip"
    archive.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(RateCenterLoadError) as raised:
        load_rate_centers([archive, empty])
    assert raised.value.failures[0].startswith(f"{archive}: wrong format: a zip archive; unzip")
    assert raised.value.failures[1].startswith(f"{empty}: wrong format: the file is empty")


def test_file_with_no_usable_row_fails_the_whole_load(tmp_path: Path) -> None:
    broken = write(tmp_path / "codes.txt", [CO_HEADER, co_line("NJ", "2O1-200", "JERSEY CITY")])
    with pytest.raises(RateCenterLoadError) as raised:
        load_rate_centers([PREFIX_CSV, broken])
    assert raised.value.failures == [
        f"{broken}: no usable row in this central office code file (all 1 data rows rejected)"
    ]
    assert raised.value.problems == [
        f"{broken}:2: NPA-NXX '2O1-200' is not an NPA-NXX like 201-200"
    ]


def test_missing_path_and_empty_folder_fail_the_load(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.txt"
    folder = tmp_path / "empty"
    folder.mkdir()
    with pytest.raises(RateCenterLoadError) as raised:
        load_rate_centers([missing, folder])
    assert raised.value.failures == [
        f"{missing}: no such file or folder",
        f"{folder}: the folder holds no rate-center file",
    ]


def test_folder_loads_its_files_sorted_and_skips_hidden_ones(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", ["prefix,rc,state", "201200,JERSEY CITY,NJ", "201201,BAYONNE,NJ"])
    write(tmp_path / "b.csv", ["prefix,rc,state", "201201,HOBOKEN,NJ"])
    write(tmp_path / ".c.csv.tmp", ["half written"])
    (tmp_path / "sub").mkdir()
    result = load_rate_centers([tmp_path])
    assert result.rows_loaded == 3
    assert result.directory.resolve("2012001") == RateCenterRow("201200", "JERSEY CITY", "NJ")
    assert result.directory.resolve("2012011") == RateCenterRow("201201", "HOBOKEN", "NJ")


# --- RateCenterSource: the live, reloading holder --------------------------------------------


def test_source_with_empty_spec_has_no_data() -> None:
    source = RateCenterSource("")
    assert source.current.resolve("2012001") == RateCenterRow("201200", UNKNOWN, UNKNOWN)
    assert source.maybe_reload() is False
    assert source.loaded_at is None


def test_source_splits_spec_on_colons(tmp_path: Path) -> None:
    folder = tmp_path / "more"
    folder.mkdir()
    write(folder / "x.csv", ["prefix,rc,state", "212226,NWYRCYZN01,NY"])
    source = RateCenterSource(f"{CENTRAL_OFFICE_CODES}:{NPA_DATABASE}:{folder}")
    assert source.current.resolve("2012001") == RateCenterRow("201200", "JERSEY CITY", "NJ")
    assert source.current.resolve("2122261") == RateCenterRow("212226", "NWYRCYZN01", "NY")
    assert source.current.resolve("4165551") is None
    assert source.rows_loaded == 6 + 7 + 1


def test_source_reloads_changed_file_and_keeps_old_data_when_broken(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path / "prefixes.csv", ["prefix,rc,state", "201200,JERSEY CITY,NJ"], 1_000)
    source = RateCenterSource(str(path), logging.getLogger("test.ratecenters"))
    assert source.current.resolve("2012001") == RateCenterRow("201200", "JERSEY CITY", "NJ")
    first_load = source.loaded_at
    assert first_load is not None
    assert source.maybe_reload() is False  # nothing changed

    write(path, ["prefix,rc,state", "201200,BAYONNE,NJ"], 2_000)
    assert source.maybe_reload() is True
    assert source.current.resolve("2012001") == RateCenterRow("201200", "BAYONNE", "NJ")

    write(path, ["prefix,rc,state", "201200,,NJ"], 3_000)
    with caplog.at_level(logging.WARNING, logger="test.ratecenters"):
        assert source.maybe_reload() is False
    assert source.current.resolve("2012001") == RateCenterRow("201200", "BAYONNE", "NJ")
    assert source.last_error == (
        f"rate centers not loaded: {path}: no usable row in this prefix CSV "
        "(all 1 data rows rejected)"
    )
    logged = [record.getMessage() for record in caplog.records]
    assert logged[0].startswith(f"rate centers not loaded: {path}: no usable row")
    assert "keeping the data loaded at" in logged[0]
    assert logged[1] == f"rate-center row rejected: {path}:2: rc is empty"
    assert source.maybe_reload() is False  # the same broken file is not retried or re-logged

    write(path, ["prefix,rc,state", "201200,HOBOKEN,NJ", "201201,nope,NJ,"], 4_000)
    assert source.maybe_reload() is True
    assert source.current.resolve("2012001") == RateCenterRow("201200", "HOBOKEN", "NJ")
    assert source.last_error is None


def test_source_notices_a_new_file_in_its_folder(tmp_path: Path) -> None:
    write(tmp_path / "a.csv", ["prefix,rc,state", "201200,JERSEY CITY,NJ"])
    source = RateCenterSource(str(tmp_path))
    assert source.current.resolve("4162001") == RateCenterRow("416200", UNKNOWN, UNKNOWN)
    write(tmp_path / "b.csv", ["prefix,rc,state", "416200,TORONTO,ON"])
    assert source.maybe_reload() is True
    assert source.current.resolve("4162001") is None


def test_source_that_never_loaded_serves_unknown(tmp_path: Path) -> None:
    path = write(tmp_path / "numbers.csv", ["number,owner"])
    source = RateCenterSource(str(path))
    assert source.loaded_at is None
    assert source.last_error is not None and "wrong format" in source.last_error
    assert source.current.resolve("2012001") == RateCenterRow("201200", UNKNOWN, UNKNOWN)


def test_stray_quote_in_tab_file_does_not_swallow_the_next_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path / "codes.txt",
        [
            CO_HEADER,
            "\t".join(["NJ", "201-200", "1", 'ACME "EAST', "JERSEY CITY", "", "AS", "", "I"]),
            co_line("NJ", "201-201", "BAYONNE"),
        ],
    )
    result = load_rate_centers([path])
    assert result.problems == []
    assert result.directory.resolve("2012011") == RateCenterRow("201201", "BAYONNE", "NJ")


def test_file_date_line_without_npa_header_is_wrong_format(tmp_path: Path) -> None:
    path = write(tmp_path / "npa.csv", ["File Date,11/02/2026", "NPA,WHERE"])
    with pytest.raises(RateCenterLoadError) as raised:
        load_rate_centers([path])
    assert raised.value.failures[0].startswith(f"{path}:2: wrong format: header 'NPA,WHERE'")


def test_a_stray_quote_costs_its_own_line_not_the_rows_after_it(tmp_path: Path) -> None:
    """Read as one CSV record, the quote would take the 3,000 rows after it into one cell:
    their prefixes UNKNOWN, and one problem reported at the wrong line for the wrong reason."""
    rows = [f"{201 + i // 700}{200 + i % 700},CENTER {i % 50},NJ" for i in range(3_701)]
    rows[700] = "202200,\"O'Hare,IL"
    path = write(tmp_path / "prefixes.csv", ["prefix,rc,state", *rows])
    result = load_rate_centers([path])
    assert result.problems == [f"{path}:702: a quote opens a cell that does not close on its line"]
    assert result.rows_loaded == 3_700
    assert result.directory.resolve("2037001") == RateCenterRow("203700", "CENTER 0", "NJ")


def test_an_oversized_cell_is_a_problem_by_line_not_a_failed_load(tmp_path: Path) -> None:
    path = write(
        tmp_path / "prefixes.csv", ["prefix,rc,state", f"201200,{'A' * 200_000},NJ", "201201,B,NJ"]
    )
    result = load_rate_centers([path])
    assert result.problems == [f"{path}:2: a cell longer than 131,072 characters"]
    assert result.directory.resolve("2012011") == RateCenterRow("201201", "B", "NJ")


def test_a_utf8_file_with_a_stray_byte_keeps_its_names_and_rejects_that_row(tmp_path: Path) -> None:
    """Read whole as Latin-1 (the fallback for old NANPA exports), every accented name of the
    file became mojibake (Montréal as MontrÃ©al) and nothing was reported."""
    path = tmp_path / "prefixes.csv"
    path.write_bytes(
        "prefix,rc,state\n201200,Montréal,NJ\n".encode() + b"201201,Newark\xff,NJ\n201202,B,NJ\n"
    )
    result = load_rate_centers([path])
    assert result.directory.resolve("2012001") == RateCenterRow("201200", "Montréal", "NJ")
    assert result.problems == [f"{path}:3: bytes that are not UTF-8"]
    assert result.directory.resolve("2012021") == RateCenterRow("201202", "B", "NJ")
