"""chatmock.auth.tokens: where auth.json is found, and what its tokens say."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatmock.auth.store import CredentialStore
from chatmock.auth.tokens import (
    AUTH_CLAIM,
    account_id_from,
    auth_search_paths,
    decode_claims,
    parse_auth,
    read_auth_file,
)
from chatmock.config import home_dir
from chatmock.testing.credentials import TEST_ACCOUNT_ID, make_jwt, write_auth_file


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh $HOME, so that ~/.chatgpt-local and ~/.codex are under our control."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("HOME", str(path))
    assert Path.home() == path
    return path


def write_json(path: Path, document: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


def test_search_order(home: Path, tmp_path: Path) -> None:
    env = {"CHATGPT_LOCAL_HOME": str(tmp_path / "local"), "CODEX_HOME": str(tmp_path / "codex")}
    assert auth_search_paths(env) == [tmp_path / "local" / "auth.json",
                                      tmp_path / "codex" / "auth.json",
                                      home / ".chatgpt-local" / "auth.json",
                                      home / ".codex" / "auth.json"]
    assert auth_search_paths({"CODEX_HOME": ""}) == [home / ".chatgpt-local" / "auth.json",
                                                     home / ".codex" / "auth.json"]
    assert auth_search_paths({"CODEX_HOME": "~/elsewhere"})[0] == home / "elsewhere" / "auth.json"


def test_home_dir(home: Path, tmp_path: Path) -> None:
    assert home_dir({}) == home / ".chatgpt-local"
    assert home_dir({"CODEX_HOME": str(tmp_path / "c")}) == tmp_path / "c"
    assert home_dir({"CHATGPT_LOCAL_HOME": str(tmp_path / "l"),
                     "CODEX_HOME": str(tmp_path / "c")}) == tmp_path / "l"


@pytest.mark.parametrize("winner", ["CHATGPT_LOCAL_HOME", "CODEX_HOME", ".chatgpt-local",
                                    ".codex"])
def test_first_existing_file_wins(home: Path, tmp_path: Path, winner: str) -> None:
    places = {"CHATGPT_LOCAL_HOME": tmp_path / "local", "CODEX_HOME": tmp_path / "codex",
              ".chatgpt-local": home / ".chatgpt-local", ".codex": home / ".codex"}
    env = {"CHATGPT_LOCAL_HOME": str(places["CHATGPT_LOCAL_HOME"]),
           "CODEX_HOME": str(places["CODEX_HOME"])}
    names = list(places)
    for name in names[names.index(winner):]:
        write_auth_file(places[name], account_id=f"acct-{name}")
    found = read_auth_file(env)
    assert found is not None
    assert found.path == places[winner] / "auth.json"
    assert found.account_id == f"acct-{winner}"


def test_nothing_found(home: Path) -> None:
    assert read_auth_file({}) is None
    assert CredentialStore({}).current() is None


@pytest.mark.parametrize("content", ["{not json", "", "[]", '"tokens"', '{"tokens": null}',
                                     '{"OPENAI_API_KEY": "sk-x"}', '{"tokens": "abc"}'])
def test_a_first_file_without_tokens_is_skipped(home: Path, tmp_path: Path, content: str) -> None:
    first = tmp_path / "local" / "auth.json"
    first.parent.mkdir()
    first.write_text(content)
    write_auth_file(home / ".codex", account_id="acct-codex")
    found = read_auth_file({"CHATGPT_LOCAL_HOME": str(first.parent)})
    assert found is not None and found.account_id == "acct-codex"


def test_unreadable_path_is_skipped(home: Path, tmp_path: Path) -> None:
    (tmp_path / "local" / "auth.json").mkdir(parents=True)  # a directory, not a file
    write_auth_file(home / ".chatgpt-local")
    found = read_auth_file({"CHATGPT_LOCAL_HOME": str(tmp_path / "local")})
    assert found is not None and found.path == home / ".chatgpt-local" / "auth.json"


def test_written_file_parses(home: Path) -> None:
    path = write_auth_file(home / ".chatgpt-local")
    found = read_auth_file({})
    assert found is not None and found.usable
    assert found.path == path
    assert found.account_id == TEST_ACCOUNT_ID
    assert found.refresh_token == "rt_fake_refresh_token"
    assert decode_claims(found.access_token)[AUTH_CLAIM]["chatgpt_account_id"] == TEST_ACCOUNT_ID
    assert found.raw["last_refresh"].startswith("2026")
    assert "raw=" not in repr(found)


def test_account_id_from_the_tokens_field_wins() -> None:
    id_token = make_jwt({AUTH_CLAIM: {"chatgpt_account_id": "from-claim"}})
    credentials = parse_auth(Path("a"), {"tokens": {"access_token": "at", "id_token": id_token,
                                                    "account_id": "from-field"}})
    assert credentials is not None and credentials.account_id == "from-field"


@pytest.mark.parametrize("account_id", [None, "", 5])
def test_account_id_falls_back_to_the_id_token_claim(account_id: object) -> None:
    id_token = make_jwt({"email": "a@b.c", AUTH_CLAIM: {"chatgpt_account_id": "from-claim"}})
    tokens = {"access_token": "at", "id_token": id_token, "account_id": account_id}
    credentials = parse_auth(Path("a"), {"tokens": tokens})
    assert credentials is not None
    assert credentials.account_id == "from-claim" and credentials.usable


def test_missing_account_id_makes_credentials_unusable() -> None:
    credentials = parse_auth(Path("a"), {"tokens": {"access_token": "at", "id_token": "junk"}})
    assert credentials is not None
    assert credentials.account_id == "" and not credentials.usable
    no_access = parse_auth(Path("a"), {"tokens": {"account_id": "x", "access_token": 5}})
    assert no_access is not None and no_access.access_token == "" and not no_access.usable


@pytest.mark.parametrize("token", ["", "opaque-token", "a.b", "a.b.c", "x.y.z.w", "....",
                                   "é.é.é", "eyJhbGciOiJub25lIn0.e30.", "eyJ9.eyJ9.sig"])
def test_non_jwt_tokens_have_no_claims(token: str) -> None:
    assert decode_claims(token) == {}
    assert account_id_from(token) == ""


def test_claims_are_read_without_checking_signature_or_expiry() -> None:
    token = make_jwt({"exp": 1, "sub": "s", AUTH_CLAIM: {"chatgpt_account_id": "acc"}})
    assert decode_claims(token)["sub"] == "s"
    assert account_id_from(token) == "acc"
    assert account_id_from(make_jwt({AUTH_CLAIM: "not an object"})) == ""
    assert account_id_from(make_jwt({AUTH_CLAIM: {"chatgpt_account_id": 7}})) == ""


def _pyjwt_claims(token: str) -> dict[str, Any]:
    """What chatmock read with pyjwt before decoding claims itself."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return claims if isinstance(claims, dict) else {}


def _segment(value: Any) -> str:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=6)
_HEADERS = st.fixed_dictionaries({"alg": st.sampled_from(["HS256", "none", ""])}, optional={
    "kid": st.text(max_size=3) | st.integers(), "b64": st.booleans() | st.none(),
    "crit": st.lists(st.sampled_from(["b64", "exp", 7]), max_size=2) | st.just("b64")})
_SEGMENTS = st.one_of(_HEADERS.map(_segment), _JSON.map(_segment),
                      st.binary(max_size=12).map(_segment),
                      st.text(alphabet="AZaz09-_=+/.é ", max_size=12))


@given(header=_SEGMENTS, payload=st.one_of(_JSON.map(_segment), _SEGMENTS),
       signature=st.one_of(st.binary(max_size=8).map(_segment), _SEGMENTS,
                           st.text(alphabet="AZaz09-_=", max_size=9)))
def test_claims_are_read_as_pyjwt_reads_them(header: str, payload: str, signature: str) -> None:
    token = f"{header}.{payload}.{signature}"
    assert decode_claims(token) == (_pyjwt_claims(token) if token.count(".") == 2 else {})


def test_claims_of_signed_tokens_match_pyjwt() -> None:
    for claims in ({"sub": "s", "exp": 1}, {AUTH_CLAIM: {"chatgpt_account_id": "a"}}, {}):
        token = make_jwt(claims)
        assert decode_claims(token) == _pyjwt_claims(token) == claims
    headers: list[dict[str, Any]] = [{"kid": 1}, {"crit": ["b64"], "b64": True}, {"crit": []},
                                     {"crit": ["exp"], "exp": 1}, {"b64": False}]
    for header in headers:
        token = f"{_segment({'alg': 'HS256', **header})}.{_segment({'sub': 's'})}.c2ln"
        assert decode_claims(token) == _pyjwt_claims(token)
    signed = make_jwt({"sub": "s"})
    for signature in ("00", "c2ln=", "c2ln==", "c2lu", "c2k=", "c2k", "c2!n"):  # padding, junk
        token = signed.rsplit(".", 1)[0] + "." + signature
        assert decode_claims(token) == _pyjwt_claims(token)


def test_store_rereads_after_the_file_changes(home: Path) -> None:
    path = write_auth_file(home / ".codex", account_id="first")
    store = CredentialStore({}, recheck_seconds=0)
    first = store.current()
    assert first is not None and first.account_id == "first"
    assert store.current() is first  # unchanged file: cached
    write_auth_file(home / ".codex", account_id="second-and-longer")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    second = store.current()
    assert second is not None and second.account_id == "second-and-longer"
    path.unlink()
    assert store.current() is None
    write_auth_file(home / ".codex", account_id="third")
    third = store.current()
    assert third is not None and third.account_id == "third"


def test_store_copies_its_environment(home: Path, tmp_path: Path) -> None:
    env = {"CHATGPT_LOCAL_HOME": str(tmp_path / "local")}
    write_auth_file(tmp_path / "local", account_id="local")
    store = CredentialStore(env)
    env["CHATGPT_LOCAL_HOME"] = str(tmp_path / "nowhere")
    found = store.current()
    assert found is not None and found.account_id == "local"


def test_store_notices_a_new_login_earlier_in_the_search_order(home: Path) -> None:
    write_auth_file(home / ".codex", account_id="codex-cli")
    store = CredentialStore({}, recheck_seconds=0)
    first = store.current()
    assert first is not None and first.account_id == "codex-cli"
    write_auth_file(home / ".chatgpt-local", account_id="chatmock-login")
    second = store.current()
    assert second is not None and second.account_id == "chatmock-login"
    (home / ".chatgpt-local" / "auth.json").unlink()
    third = store.current()
    assert third is not None and third.account_id == "codex-cli"


def test_store_looks_at_the_files_at_most_once_per_recheck_interval(home: Path) -> None:
    write_auth_file(home / ".codex", account_id="first")
    store = CredentialStore({}, recheck_seconds=3600)
    first = store.current()
    write_auth_file(home / ".chatgpt-local", account_id="later")
    assert store.current() is first


def test_credentials_repr_hides_the_tokens(home: Path) -> None:
    write_auth_file(home / ".codex")
    found = CredentialStore({}).current()
    assert found is not None
    assert found.access_token not in repr(found)
    assert found.refresh_token not in repr(found)


def test_a_signed_out_store_does_not_read_files_on_every_call(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = CredentialStore({}, recheck_seconds=3600)
    assert store.current() is None
    reads: list[Path] = []
    def read_bytes(self: Path) -> bytes:
        reads.append(self)
        return b"{}"

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    for _ in range(10):
        assert store.current() is None
    assert reads == []
