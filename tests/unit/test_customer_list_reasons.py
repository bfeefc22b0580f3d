"""Why a partition is missing from the customer list, in words an operator can act on."""

from __future__ import annotations

import aiohttp
import orjson
import pytest
from yarl import URL

from streamagg.errors import Unavailable
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
