"""Schemathesis against a running worker: the API behaves as its OpenAPI document says.

Every operation is fuzzed from the document the worker itself serves, with a valid token:
no 5xx, documented status codes and content types, bodies matching their schemas, and every
4xx body an Error object.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.e2e.conftest import ADMIN_TOKEN

schemathesis = pytest.importorskip("schemathesis")
jsonschema = pytest.importorskip("jsonschema")
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import (  # noqa: E402
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

MAX_EXAMPLES = 50
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
REPORT_OPERATION = "GET /api/v1/customers/{customer_id}/reports/{report}"
SELF = "/api/v1/openapi.yaml"


def error_schema(document: dict[str, Any]) -> dict[str, Any]:
    return {
        **document["components"]["schemas"]["Error"],
        "components": document["components"],
    }


def with_valid_range(case: Any, days_back: int, hours: int, fmt: str | None) -> Any:
    """The generated case with a range the API accepts: whole days, within retention."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=days_back)
    end = start + timedelta(days=max(1, hours // 24))
    case.query = {"from": start.isoformat(), "to": end.isoformat()}
    if fmt is not None:
        case.query["format"] = fmt
    return case


def cases(operation: Any, mode: Any) -> Any:
    """Generated cases; positive report cases also half the time with a range that is accepted,
    since random date-times almost never fall on whole hours."""
    generated = operation.as_strategy(generation_mode=mode)
    if operation.label != REPORT_OPERATION or mode != GenerationMode.POSITIVE:
        return generated
    accepted = st.builds(
        with_valid_range,
        generated,
        st.integers(0, 390),
        st.integers(1, 24 * 40),
        st.sampled_from([None, "json", "csv"]),
    )
    return st.one_of(generated, accepted)


def fuzz(operation: Any, mode: Any, base_url: str, error: dict[str, Any]) -> Counter[int]:
    """Run MAX_EXAMPLES generated requests of one operation; return the statuses seen."""
    statuses: Counter[int] = Counter()

    @given(case=cases(operation, mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,  # the same examples on every run: a failure is reproducible
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        response = case.call(
            base_url=base_url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30
        )
        statuses[response.status_code] += 1
        case.validate_response(response, checks=CHECKS)
        if 400 <= response.status_code < 500:
            jsonschema.validate(response.json(), error)

    run()
    return statuses


def test_api_conforms_to_its_openapi_document(worker_factory: Any) -> None:
    worker = worker_factory()
    worker.wait_ready()
    schema = schemathesis.openapi.from_url(worker.base_url + SELF)
    document = yaml.safe_load(worker.get(SELF).text)
    error = error_schema(document)

    seen: dict[str, Counter[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        modes = [GenerationMode.POSITIVE]
        if operation.label == REPORT_OPERATION:
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:
            seen[f"{operation.label} {mode.value}"] = fuzz(operation, mode, worker.base_url, error)

    shown = "\n".join(f"{key}: {dict(value)}" for key, value in seen.items())
    # Every operation but the document itself (schemathesis leaves out the URL it loaded).
    fuzzed = {key.rsplit(" ", 1)[0] for key in seen}
    assert fuzzed == {f"GET {path}" for path in document["paths"]} - {f"GET {SELF}"}, shown
    served = worker.get(SELF)
    assert served.status_code == 200
    assert served.headers["Content-Type"].startswith("application/yaml")
    assert yaml.safe_load(served.text) == document
    report = seen[f"{REPORT_OPERATION} positive"]
    # The fuzzing reached the report code, not only the parameter checks.
    assert report[200] > 0, shown
    assert seen[f"{REPORT_OPERATION} negative"][400] > 0, shown


# Found by probing the ranges' edges by hand (schemathesis' 50 examples did not reach them):
# each answers 500 instead of a 400 naming the parameter.
EXTREME_RANGES = [
    {"month": "9999-12"},  # params._month: datetime(10000, 1, 1) → ValueError
    {"from": "0001-01-01T00:00:00+01:00", "to": "2026-11-01T00:00:00Z"},  # astimezone overflow
    {"from": "2026-11-01T00:00:00Z", "to": "9999-12-31T23:00:00-01:00"},  # astimezone overflow
    # Accepted by the parser, then buckets.cover → _month_start_hour(10000-01) → ValueError.
    {"from": "9999-12-31T00:00:00Z", "to": "9999-12-31T23:00:00Z"},
]


def test_extreme_dates_are_bad_parameters_not_server_errors(worker_factory: Any) -> None:
    worker = worker_factory()
    worker.wait_ready()
    document = yaml.safe_load(worker.get(SELF).text)
    answers = {}
    for params in EXTREME_RANGES:
        response = worker.get("/api/v1/customers/42/reports/tech-prefix", ADMIN_TOKEN, **params)
        jsonschema.validate(response.json(), error_schema(document))
        answers[str(params)] = (response.status_code, response.json()["error"]["code"])
    assert answers == {key: (400, "bad_parameter") for key in answers}
