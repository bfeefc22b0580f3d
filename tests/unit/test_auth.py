"""API access (web/auth.py, SPEC §3): SHA-256 token hashes, 401 versus 403, "*"."""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path

import orjson
import pytest

from streamagg.web.auth import AccessDenied, Grant, TokenStore, parse_tokens
from streamagg.web.server import token_hash_prefix

OPS_TOKEN = "ops-Zq8-secret"
CUSTOMER_TOKEN = "cust-42-secret"
ADMIN_TOKEN = "admin-secret"


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def tokens_file(path: Path, entries: list[dict[str, object]]) -> Path:
    path.write_bytes(orjson.dumps({"tokens": entries}))
    return path


@pytest.fixture
def store(tmp_path: Path) -> TokenStore:
    """A TokenStore over a file granting customers 42 and 43, 42 alone, and every customer."""
    path = tokens_file(
        tmp_path / "tokens.json",
        [
            {"sha256": sha(OPS_TOKEN), "customers": ["42", 43]},
            {"sha256": sha(CUSTOMER_TOKEN).upper(), "customers": ["42"]},
            {"sha256": sha(ADMIN_TOKEN), "customers": ["*"]},
        ],
    )
    return TokenStore(path)


def denied(store: TokenStore, header: str | None, customer: str = "42") -> int:
    with pytest.raises(AccessDenied) as caught:
        store.authorize(header, customer)
    assert isinstance(caught.value, PermissionError)
    return caught.value.status


def test_parse_tokens() -> None:
    raw = orjson.dumps({"tokens": [{"sha256": sha("t"), "customers": ["42", 43]}]})
    assert parse_tokens(raw) == {sha("t"): Grant(frozenset({"42", "43"}))}
    assert parse_tokens(b'{"tokens": []}') == {}


def test_star_grants_every_customer() -> None:
    assert Grant(frozenset({"*"})).allows("anything")
    assert not Grant(frozenset({"42"})).allows("43")
    assert not Grant(frozenset()).allows("42")


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        (b"not json", "JSON"),
        (b"[]", "tokens"),
        (b'{"tokens": {}}', "tokens"),
        (b'{"tokens": ["abc"]}', "tokens[0].sha256"),
        (b'{"tokens": [{"customers": ["1"]}]}', "tokens[0].sha256"),
        (b'{"tokens": [{"sha256": "abc", "customers": ["1"]}]}', "tokens[0].sha256"),
        (b'{"tokens": [{"sha256": 5, "customers": ["1"]}]}', "tokens[0].sha256"),
        (  # the same token twice (say, with two customer lists): which one was meant?
            b'{"tokens": [{"sha256": "%s", "customers": ["1"]}, {"sha256": "%s", "customers": '
            b'["*"]}]}' % (b"a" * 64, b"A" * 64),
            "tokens[1] is the token of tokens[0] again",
        ),
    ],
)
def test_bad_tokens_files(raw: bytes, names: str) -> None:
    with pytest.raises(ValueError, match=names.replace("[", r"\[").replace("]", r"\]")):
        parse_tokens(raw)


@pytest.mark.parametrize("customers", ['"42"', "[true]", '[{"id": 1}]', "[null]", "null"])
def test_bad_customer_lists(customers: str) -> None:
    good = f'{{"sha256": "{sha("a")}", "customers": ["1"]}}'
    raw = f'{{"tokens": [{good}, {{"sha256": "{sha("b")}", "customers": {customers}}}]}}'
    with pytest.raises(ValueError, match=r"tokens\[1\]\.customers"):
        parse_tokens(raw.encode())


def test_a_hash_that_is_not_hex_is_refused() -> None:
    raw = orjson.dumps({"tokens": [{"sha256": "z" * 64, "customers": ["42"]}]})
    with pytest.raises(ValueError, match="sha256"):
        parse_tokens(raw)


def test_granted_token_passes(store: TokenStore) -> None:
    store.authorize(f"Bearer {OPS_TOKEN}", "42")
    store.authorize(f"Bearer {OPS_TOKEN}", "43")  # an integer in the file matches its string
    store.authorize(f"Bearer {CUSTOMER_TOKEN}", "42")  # upper-case hex in the file
    store.authorize(f"Bearer {ADMIN_TOKEN}", "any customer at all")
    store.authorize(f"Bearer  {OPS_TOKEN} ", "42")


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        OPS_TOKEN,
        f"Basic {OPS_TOKEN}",
        "Bearer ",
        "Bearer wrong-token",
        f"Bearer {sha(OPS_TOKEN)}",  # the hash itself is not a token
        f"Bearer {OPS_TOKEN}x",
    ],
)
def test_no_or_unknown_token_is_401(store: TokenStore, header: str | None) -> None:
    assert denied(store, header) == 401


def test_known_token_for_another_customer_is_403(store: TokenStore) -> None:
    assert denied(store, f"Bearer {CUSTOMER_TOKEN}", "43") == 403
    assert denied(store, f"Bearer {OPS_TOKEN}", "44") == 403
    assert denied(store, f"Bearer {OPS_TOKEN}", "*") == 403
    assert denied(store, f"Bearer {OPS_TOKEN}", "4") == 403


def test_the_bearer_scheme_is_case_insensitive(store: TokenStore) -> None:
    store.authorize(f"bearer {OPS_TOKEN}", "42")


def test_without_a_tokens_file_every_call_is_401() -> None:
    assert denied(TokenStore(None), f"Bearer {OPS_TOKEN}") == 401


def test_a_missing_tokens_file_refuses_everyone_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """(A worker started with a mistyped STREAMAGG_TOKENS_FILE answered 401 to everyone
    without a word in its log.)"""
    path = tmp_path / "absent.json"
    with caplog.at_level(logging.ERROR):
        store = TokenStore(path)
        store.maybe_reload()
        store.maybe_reload()
    assert denied(store, f"Bearer {OPS_TOKEN}") == 401
    assert not store.valid
    said = [r.getMessage() for r in caplog.records]
    assert said == [
        f"tokens file {path} does not exist: every API call is refused (401) until it does "
        "(STREAMAGG_TOKENS_FILE)"
    ]


def test_tokens_are_never_kept_or_logged_in_clear(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    path = tokens_file(tmp_path / "t.json", [{"sha256": sha(OPS_TOKEN), "customers": ["42"]}])
    store = TokenStore(path)
    store.authorize(f"Bearer {OPS_TOKEN}", "42")
    with pytest.raises(AccessDenied) as caught:
        store.authorize(f"Bearer {OPS_TOKEN}", "43")
    with pytest.raises(AccessDenied) as unknown:
        store.authorize("Bearer some-other-secret", "42")
    assert OPS_TOKEN not in repr(vars(store))
    assert OPS_TOKEN not in caught.value.message and OPS_TOKEN not in str(caught.value)
    assert "some-other-secret" not in unknown.value.message
    assert OPS_TOKEN not in caplog.text and "some-other-secret" not in caplog.text


def test_the_file_is_reloaded_when_it_changes(tmp_path: Path) -> None:
    path = tokens_file(tmp_path / "t.json", [{"sha256": sha(OPS_TOKEN), "customers": ["42"]}])
    store = TokenStore(path)
    assert denied(store, f"Bearer {OPS_TOKEN}", "43") == 403
    tokens_file(path, [{"sha256": sha(OPS_TOKEN), "customers": ["42", "43"]}])
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    store.maybe_reload()
    store.authorize(f"Bearer {OPS_TOKEN}", "43")


def test_a_broken_file_keeps_the_tokens_loaded_before_and_says_so_until_fixed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[bool] = []
    path = tokens_file(tmp_path / "t.json", [{"sha256": sha(OPS_TOKEN), "customers": ["42"]}])
    store = TokenStore(path, on_validity=seen.append)
    assert seen == [True]
    path.write_bytes(b'{"tokens": [{"sha256": "short"')
    store.maybe_reload()
    store.authorize(f"Bearer {OPS_TOKEN}", "42")  # the last good set, loudly:
    assert not store.valid and seen[-1] is False
    assert "not used" in caplog.text and "ERROR" in caplog.records[-1].levelname
    caplog.clear()
    store.maybe_reload()
    assert "still using the 1 tokens" in caplog.text, "said at every check, not once"
    tokens_file(path, [{"sha256": sha(OPS_TOKEN), "customers": ["43"]}])
    store.maybe_reload()
    assert store.valid and seen[-1] is True
    assert denied(store, f"Bearer {OPS_TOKEN}", "42") == 403


def test_deleting_the_file_revokes_every_token(tmp_path: Path) -> None:
    path = tokens_file(tmp_path / "t.json", [{"sha256": sha(OPS_TOKEN), "customers": ["*"]}])
    store = TokenStore(path)
    store.authorize(f"Bearer {OPS_TOKEN}", "42")
    path.unlink()
    store.maybe_reload()
    assert denied(store, f"Bearer {OPS_TOKEN}") == 401
    assert not store.valid


def test_a_change_of_content_is_seen_even_with_the_same_size_and_time(tmp_path: Path) -> None:
    """Changes are detected by content: an edit that keeps the size and the modification
    time (a copy with preserved times, a coarse clock) still takes effect."""
    path = tokens_file(tmp_path / "t.json", [{"sha256": sha(OPS_TOKEN), "customers": ["42"]}])
    store = TokenStore(path)
    before = path.stat()
    tokens_file(path, [{"sha256": sha(OPS_TOKEN), "customers": ["43"]}])
    assert path.stat().st_size == before.st_size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    store.maybe_reload()
    store.authorize(f"Bearer {OPS_TOKEN}", "43")
    assert denied(store, f"Bearer {OPS_TOKEN}", "42") == 403


def test_a_token_that_is_not_utf8_is_unknown_not_a_server_error(store: TokenStore) -> None:
    """aiohttp hands a header's bytes that are not UTF-8 over as surrogates
    (`Bearer \\xff\\xfe` on the wire): encoding them strictly raised, a 500 and a traceback."""
    header = b"Bearer \xff\xfe".decode("utf-8", "surrogateescape")
    assert denied(store, header) == 401
    assert re.fullmatch("[0-9a-f]{8}", token_hash_prefix(header))
