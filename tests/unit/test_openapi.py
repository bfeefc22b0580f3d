"""The OpenAPI document is valid, generated from the reports, and names every report and column."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import pytest
import yaml
from openapi_spec_validator import validate

from streamagg.reports import REPORTS
from streamagg.reports.view import Kind, column_keys
from streamagg.web.openapi import build, render
from streamagg.web.params import QUERY_PARAMETERS
from streamagg.web.routes import OPENAPI_FILE
from tests.support.toy_report import ToyReport

REPORT_PATH = "/api/v1/customers/{customer_id}/reports/{report}"
ROW_SCHEMAS = {
    "dtmf": "DtmfRow",
    "rate-center": "RateCenterRow",
    "did-cli": "DidCliRow",
    "tech-prefix": "TechPrefixRow",
    "routes": "RoutesRow",
}  # (written out: the names are part of the published document)
ERROR_STATUSES = ("400", "401", "403", "404", "503")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded = yaml.safe_load(Path(OPENAPI_FILE).read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        target: Any = document
        for part in ref[2:].split("/"):
            target = target[part]
        node = target
    return node


def test_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)


def test_the_committed_document_is_the_generated_one() -> None:
    """`make openapi` after changing a report or openapi_base.yaml."""
    assert Path(OPENAPI_FILE).read_text(encoding="utf-8") == render(build(REPORTS.values()))


def test_the_catalogue_schema_knows_every_column_kind(document: dict[str, Any]) -> None:
    catalogue = document["components"]["schemas"]["ReportCatalogue"]
    column = catalogue["properties"]["reports"]["items"]["properties"]["columns"]["items"]
    assert column["properties"]["type"]["enum"] == list(get_args(Kind))


def test_a_new_report_needs_nothing_but_its_class_to_be_documented() -> None:
    document = yaml.safe_load(render(build([*REPORTS.values(), ToyReport()])))
    validate(document)
    schemas = document["components"]["schemas"]
    assert "toy-minutes" in schemas["ReportId"]["enum"]
    assert schemas["ReportResponse"]["discriminator"]["mapping"]["toy-minutes"] == (
        "#/components/schemas/ToyMinutesReport"
    )
    row = schemas["ToyMinutesRow"]
    assert list(row["properties"]) == ["provider_id", "minutes", "share"]
    assert row["properties"]["minutes"] == {"$ref": "#/components/schemas/Count"}
    assert row["properties"]["share"]["type"] == "number"


def test_every_report_id_is_in_the_path_enum(document: dict[str, Any]) -> None:
    operation = document["paths"][REPORT_PATH]["get"]
    parameters = [resolve(document, p) for p in operation["parameters"]]
    report = next(p for p in parameters if p["name"] == "report")
    assert set(resolve(document, report["schema"])["enum"]) == set(REPORTS)


def test_every_report_has_a_response_schema_naming_its_rows(document: dict[str, Any]) -> None:
    assert set(ROW_SCHEMAS) == set(REPORTS), "a new report needs its row schema here and there"
    envelope = document["components"]["schemas"]["ReportResponse"]
    assert set(envelope["discriminator"]["mapping"]) == set(REPORTS)
    for report_id, ref in envelope["discriminator"]["mapping"].items():
        parts = resolve(document, {"$ref": ref})["allOf"]
        own = next(p for p in parts if "$ref" not in p)
        assert own["properties"]["report"]["enum"] == [report_id]
        rows = own["properties"]["rows"]["items"]
        assert rows == {"$ref": f"#/components/schemas/{ROW_SCHEMAS[report_id]}"}


@pytest.mark.parametrize("report_id", sorted(REPORTS))
def test_row_schema_has_exactly_the_report_columns(
    document: dict[str, Any], report_id: str
) -> None:
    schema = document["components"]["schemas"][ROW_SCHEMAS[report_id]]
    columns = column_keys(REPORTS[report_id])
    assert list(schema["properties"]) == list(columns)
    assert schema["required"] == list(columns)
    assert schema["additionalProperties"] is False


def test_report_operation_documents_json_csv_errors_and_bearer_auth(
    document: dict[str, Any],
) -> None:
    operation = document["paths"][REPORT_PATH]["get"]
    assert set(operation["responses"]["200"]["content"]) == {"application/json", "text/csv"}
    for status in ERROR_STATUSES:
        response = resolve(document, operation["responses"][status])
        assert response["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/Error"
        }
    assert operation["security"] == [{"bearerAuth": []}]
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer"}
    names = {resolve(document, p)["name"] for p in operation["parameters"]}
    assert names == {
        "customer_id",
        "report",
        "from",
        "to",
        "month",
        "granularity",
        "tz",
        "format",
        "limit",
        "offset",
        "If-None-Match",
    }
    assert names - {"customer_id", "report", "If-None-Match"} == QUERY_PARAMETERS


def test_operational_endpoints_are_documented(document: dict[str, Any]) -> None:
    paths = document["paths"]
    for path in ("/healthz", "/readyz", "/metrics", "/api/v1/openapi.yaml", "/api/v1/reports"):
        assert "get" in paths[path], path
    assert "text/plain" in paths["/metrics"]["get"]["responses"]["200"]["content"]
