"""Why a partition is missing from the customer list, in words an operator can act on."""

from __future__ import annotations

import aiohttp
import orjson
import pytest
from yarl import URL

from streamagg.errors import Unavailable
from streamagg.web import query_service
from streamagg.web.query_service import CustomerLatest, _missing, _peer_failure, _without_subject

OWNER = "http://10.0.0.7:6066"


def refused(status: int, body: bytes) -> aiohttp.ClientResponseError:
    info = aiohttp.RequestInfo(URL(OWNER), "GET", {}, URL(OWNER))  # type: ignore[arg-type]
    return aiohttp.ClientResponseError(info, (), status=status, message=body.decode())


def test_the_owners_own_refusal_is_passed_on_not_called_silence() -> None:
    body = orjson.dumps({"error": {"code": "unavailable", "message": "partition 3 is stopped"}})
    why = _peer_failure(OWNER, refused(503, body))
    assert why == f"is held by {OWNER}, which answered 503: partition 3 is stopped"
    assert "does not answer" in _peer_failure(OWNER, aiohttp.ClientConnectionError())
    assert "answered 502: <html>" in _peer_failure(OWNER, refused(502, b"<html>bad gateway"))


def test_a_state_refusal_reads_as_said_of_the_partition() -> None:
    said = "this customer's partition is stopped (batch b/0/7: FormatError(...)); retry shortly"
    assert _without_subject(said) == "is stopped (batch b/0/7: FormatError(...))"
    rebalancing = "partitions are being rebalanced; retry shortly"
    assert _without_subject(rebalancing) == "is being rebalanced"


def test_missing_partitions_refuse_the_whole_list_unless_partial() -> None:
    found = CustomerLatest()
    with pytest.raises(Unavailable, match="the customer list lacks partition 3: it is moving"):
        _missing(found, [3], "is moving between workers", partial=False)
    held = f"is held by {OWNER}, which answered 503: partition 5 is stopped"
    with pytest.raises(Unavailable, match=r"lacks partitions 1, 5: they are held by http"):
        _missing(found, [1, 5], held, partial=False)
    _missing(found, [3], "is moving between workers", partial=True)
    assert found.unavailable == {3: "it is moving between workers"}


async def test_a_peer_of_the_version_before_is_asked_without_partial(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """During a rolling upgrade the older workers refuse partial=true (400, unknown
    parameter): the page must not lose their partitions' customers for it."""
    asked: list[str] = []

    async def fetch_json(app: object, url: str, path: str, authorization: str) -> object:
        asked.append(path)
        if "partial" in path:
            body = orjson.dumps({"error": {"code": "bad_parameter", "message": "partial: ..."}})
            raise refused(400, body)
        return {"customers": [{"customer_id": "42", "latest_call": "2026-12-01T10:00:00+00:00"}]}

    monkeypatch.setattr(query_service, "fetch_json", fetch_json)
    found = CustomerLatest()
    await query_service._ask_owner(None, OWNER, [1, 5], "Bearer t", True, found)  # type: ignore[arg-type]
    assert asked == [
        "/api/v1/customers?partitions=1,5&partial=true",
        "/api/v1/customers?partitions=1,5",
    ]
    assert list(found.latest) == ["42"] and found.unavailable == {}
