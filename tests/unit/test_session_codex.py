"""chatmock.state.prompt_cache (session ids) and the pure functions of chatmock.upstream.codex."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatmock.errors import UpstreamError, extract_message
from chatmock.state.prompt_cache import SessionIds, fingerprint
from chatmock.upstream.codex import (
    ClientIdentity,
    codex_client_headers,
    installation_id,
    retry_after,
    upstream_error,
    user_agent,
)


def user_item(*texts: str, image: str = "") -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "input_text", "text": t} for t in texts]
    if image:
        content.append({"type": "input_image", "image_url": image})
    return {"type": "message", "role": "user", "content": content}


# -- session ids -----------------------------------------------------------------------------


def test_same_conversation_same_id() -> None:
    sessions = SessionIds()
    first_turn = [user_item("Hello")]
    later_turn = [user_item("Hello"), {"type": "message", "role": "assistant", "content": []},
                  user_item("And then?")]
    sid = sessions.for_request({}, "Be terse.", first_turn)
    assert str(uuid.UUID(sid)) == sid
    assert sessions.for_request({}, "Be terse.", later_turn) == sid
    assert sessions.for_request({}, "  Be terse.\n", first_turn) == sid


def test_different_conversations_differ() -> None:
    sessions = SessionIds()
    ids = {sessions.for_request({}, "A", [user_item("x")]),
           sessions.for_request({}, "B", [user_item("x")]),
           sessions.for_request({}, "A", [user_item("y")]),
           sessions.for_request({}, None, [user_item("x")]),
           sessions.for_request({}, "A", [user_item("x", image="https://i/1.png")])}
    assert len(ids) == 5


def test_fingerprint_ignores_what_does_not_identify_the_conversation() -> None:
    base = fingerprint("I", [user_item("x")])
    assert fingerprint("I", [{"type": "message", "role": "developer",
                              "content": [{"type": "input_text", "text": "d"}]},
                             user_item("", "x"), user_item("z")]) == base
    assert fingerprint("I", ["junk", {"role": "user", "content": None}, user_item("x")]) == base
    assert fingerprint("", []) == fingerprint(None, []) == fingerprint("  ", [])


@pytest.mark.parametrize("name", [b"x-session-id", b"session_id", b"session-id"])
def test_header_wins(name: bytes) -> None:
    sessions = SessionIds()
    assert sessions.for_request({name: b" my-session "}, "I", [user_item("x")]) == "my-session"
    assert sessions.for_request({name: b"   "}, "I", [user_item("x")]) != "my-session"


def test_processes_sharing_a_key_agree_and_others_do_not() -> None:
    """Workers forked from one supervisor share the key: a conversation keeps its id
    (and its backend prompt cache) whichever worker serves a turn."""
    key = bytes(32)
    turn = [user_item("Hello")]
    first, second = SessionIds(key), SessionIds(key)
    assert first.for_request({}, "I", turn) == second.for_request({}, "I", turn)
    assert SessionIds(bytes([1]) * 32).for_request({}, "I", turn) != \
        first.for_request({}, "I", turn)
    assert SessionIds().for_request({}, "I", turn) == SessionIds().for_request({}, "I", turn)


# -- error bodies ----------------------------------------------------------------------------


@pytest.mark.parametrize(("document", "message"), [
    ({"detail": "Unsupported parameter: temperature"}, "Unsupported parameter: temperature"),
    ({"error": {"message": "Bad model", "type": "invalid_request_error"}}, "Bad model"),
    ({"error": "plain string error"}, "plain string error"),
    ({"errors": [{"message": "first"}, {"message": "second"}]}, "first"),
    ({"errors": ["as text"]}, "as text"),
    ({"errors": [{"code": 1}, {"message": "usable"}]}, "usable"),
    ({"detail": [{"loc": ["body", "model"], "msg": "field required", "type": "missing"}]},
     "field required"),
    ({"message": "top level"}, "top level"),
    ({"error_description": "oauth says no"}, "oauth says no"),
    ({"error": {"detail": "nested detail"}}, "nested detail"),
    ({"error": {"message": "  "}, "detail": "fallback"}, "fallback"),
    ({"error": {"message": "wins"}, "detail": "loses"}, "wins"),
    ({"title": "Forbidden", "reason": "r"}, "Forbidden"),
])
def test_extract_message(document: Any, message: str) -> None:
    assert extract_message(document) == message


@pytest.mark.parametrize("document", [None, "text", [], {}, {"error": None},
                                      {"detail": 5}, {"errors": "x"}, {"detail": []}])
def test_extract_message_finds_nothing(document: Any) -> None:
    assert extract_message(document) == ""


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(
        st.sampled_from(["error", "errors", "detail", "message", "msg", "code", "type",
                         "resets_in_seconds", "resets_at"]), c, max_size=3), max_leaves=10)


@given(document=JSON_VALUES, status=st.integers(min_value=400, max_value=700))
def test_any_error_body_gives_an_upstream_error(document: Any, status: int) -> None:
    error = upstream_error(status, [], json.dumps(document).encode())
    assert isinstance(error, UpstreamError)
    assert error.message and 400 <= error.status < 600
    assert isinstance(extract_message(document), str)


def header(error: UpstreamError, name: bytes) -> bytes | None:
    return dict(error.headers).get(name)


def test_401_says_how_to_sign_in() -> None:
    error = upstream_error(401, [], b'{"detail":"Could not validate credentials"}')
    assert error.status == 401 and error.error_type == "authentication_error"
    assert "Could not validate credentials" in error.message
    assert "chatmock login" in error.message


def test_429_with_resets_in_seconds() -> None:
    body = json.dumps({"error": {"type": "usage_limit_reached", "message": "The usage limit "
                                 "has been reached", "plan_type": "plus",
                                 "resets_in_seconds": 3600}}).encode()
    error = upstream_error(429, [], body)
    assert error.status == 429 and error.error_type == "rate_limit_error"
    assert error.message == "The usage limit has been reached; it resets in 60 min"
    assert error.code == "usage_limit_reached"
    assert header(error, b"retry-after") == b"3600"


def test_429_with_resets_at() -> None:
    body = json.dumps({"error": {"type": "usage_limit_reached", "message": "limit",
                                 "resets_at": int(time.time()) + 4 * 86400}}).encode()
    error = upstream_error(429, [], body)
    assert 4 * 86400 - 2 <= int(header(error, b"retry-after") or 0) <= 4 * 86400
    assert error.message.startswith("limit; it resets in 4 days")


def test_429_usage_not_included_says_what_to_do() -> None:
    body = b'{"error":{"type":"usage_not_included","plan_type":"free"}}'
    error = upstream_error(429, [(b"x-codex-primary-used-percent", b"100"),
                                 (b"x-codex-primary-reset-after-seconds", b"60"),
                                 (b"x-request-id", b"r-9")], body)
    assert error.status == 429 and error.code == "usage_not_included"
    assert "plan does not include Codex" in error.message and "chatmock login" in error.message
    assert error.message.endswith("(request id r-9)")
    assert error.headers == ()  # waiting does not help


SPENT_WEEK = [(b"x-codex-primary-used-percent", b"35.0"),
              (b"x-codex-primary-reset-after-seconds", b"7200"),
              (b"x-codex-secondary-used-percent", b"100.0"),
              (b"x-codex-secondary-reset-after-seconds", b"345600")]


@pytest.mark.parametrize(("body", "said"), [(b"", ""), (b"Too Many Requests\n",
                                                       " (the backend said: Too Many Requests)")])
def test_429_told_by_headers_only(body: bytes, said: str) -> None:
    error = upstream_error(429, SPENT_WEEK, body)
    assert header(error, b"retry-after") == b"345600"
    assert error.message == f"The ChatGPT usage limit has been reached{said}; it resets in 4 days"
    assert error.code == "rate_limit_exceeded"


def test_the_spent_window_that_resets_last_decides() -> None:
    both = [(b"x-codex-primary-used-percent", b"100"),
            (b"x-codex-primary-reset-after-seconds", b"50"), *SPENT_WEEK[2:]]
    assert retry_after(None, both) == 345600
    assert retry_after(None, SPENT_WEEK[:2]) == 7200  # none spent: the primary window
    assert retry_after(None, [(b"x-codex-secondary-used-percent", b"nan"),
                              *SPENT_WEEK[3:]]) is None


def test_429_without_any_hint() -> None:
    error = upstream_error(429, [], b'{"detail":"slow down"}')
    assert error.code == "rate_limit_exceeded" and error.headers == ()


def test_429_from_headers() -> None:
    error = upstream_error(429, [(b"x-codex-primary-reset-after-seconds", b"12.7")], b"")
    assert header(error, b"retry-after") == b"12"


def test_403_html_page() -> None:
    body = b"<!DOCTYPE html><html><head><title>Just a moment...</title></head></html>"
    error = upstream_error(403, [(b"cf-ray", b"8a1b2c3d")], body)
    assert error.status == 403 and error.error_type == "permission_error"
    assert "HTML page" in error.message and "<html" not in error.message
    assert "8a1b2c3d" in error.message


def test_4xx_keeps_status_and_message() -> None:
    error = upstream_error(400, [(b"x-request-id", b"req-1")],
                           b'{"detail":"Unsupported parameter: temperature"}')
    assert error.status == 400 and error.error_type == "invalid_request_error"
    assert error.message == "Unsupported parameter: temperature (request id req-1)"


@pytest.mark.parametrize("status", [500, 502, 503, 504, 599])
def test_5xx_kept(status: int) -> None:
    error = upstream_error(status, [], b'{"error":{"message":"boom","code":"server_error"}}')
    assert error.status == status and error.error_type == "api_error"
    assert error.message == "boom" and error.code == "server_error"


def test_odd_statuses_and_bodies() -> None:
    assert upstream_error(600, [], b"").status == 502
    assert upstream_error(500, [], b"").message == "no error details given"
    assert upstream_error(502, [], b"  Bad gateway  ").message == "Bad gateway"
    assert len(upstream_error(500, [], b"x" * 5000).message) == 280
    assert upstream_error(500, [], b"\xff\xfe oops").message.endswith("oops")


def test_retry_after() -> None:
    assert retry_after({"error": {"resets_in_seconds": 10}}, []) == 10
    assert retry_after({"error": {"resets_in_seconds": 2.9}}, []) == 2
    assert retry_after({"error": {"resets_in_seconds": -5}}, []) == 0
    soon = retry_after({"error": {"resets_at": time.time() + 100}}, [])
    assert soon is not None and 98 <= soon <= 100
    assert retry_after({"error": {"resets_at": time.time() - 100}}, []) == 0
    assert retry_after(None, [(b"retry-after", b"30")]) == 30
    assert retry_after({"error": {"resets_in_seconds": "soon"}}, [(b"retry-after", b"7")]) == 7
    assert retry_after(None, [(b"retry-after", b"Wed, 21 Oct 2026 07:28:00 GMT")]) is None
    assert retry_after({"error": "x"}, []) is None
    assert retry_after(None, [(b"x-codex-primary-reset-after-seconds", b"5"),
                              (b"retry-after", b"9")]) == 9


@pytest.mark.parametrize("value", [b"inf", b"-inf", b"nan", b"1e999"])
def test_retry_after_with_non_finite_headers(value: bytes) -> None:
    assert retry_after(None, [(b"retry-after", value)]) in (None, 0)
    upstream_error(429, [(b"retry-after", value)], b"")


@pytest.mark.parametrize("body", [b'{"error":{"resets_in_seconds":Infinity}}',
                                  b'{"error":{"resets_at":NaN}}',
                                  b'{"error":{"resets_in_seconds":1e999}}'])
def test_retry_after_with_non_finite_body_values(body: bytes) -> None:
    error = upstream_error(429, [], body)
    assert error.status == 429


# -- small helpers ----------------------------------------------------------------------------


def test_installation_id_is_stable(tmp_path: Path) -> None:
    home = tmp_path / "h"
    first = installation_id(home)
    assert str(uuid.UUID(first)) == first
    assert installation_id(home) == first
    (home / "installation_id").write_text("not a uuid")
    assert installation_id(home) != first


def test_user_agent() -> None:
    agent = user_agent()
    assert agent.startswith("codex_cli_rs/") and "chatmock/" in agent


def test_client_identity_headers() -> None:
    headers = dict(ClientIdentity("0.170.1", "codex_exec").headers())
    assert headers[b"originator"] == b"codex_exec" and headers[b"version"] == b"0.170.1"
    assert headers[b"user-agent"].startswith(b"codex_exec/0.170.1 (")
    assert dict(ClientIdentity().headers())[b"version"] == b"0.169.0"


CODEX_REQUEST = {b"originator": b"codex_exec", b"session-id": b"s", b"thread-id": b"t",
                 b"x-client-request-id": b"r", b"x-codex-window-id": b"w",
                 b"x-codex-turn-metadata": b"{}", b"authorization": b"Bearer k",
                 b"user-agent": b"codex_exec/0.169.0", b"openai-beta": b"x"}


@pytest.mark.parametrize("marker", [{b"originator": b"codex_exec"},
                                    {b"originator": b"codex_vscode"},
                                    {b"user-agent": b"codex_cli_rs/0.169.0 (Linux)"}])
def test_codex_clients_are_recognised_by_originator_or_user_agent(
        marker: dict[bytes, bytes]) -> None:
    given = {**marker, b"session-id": b"s", b"x-codex-window-id": b"w"}
    assert dict(codex_client_headers(given)) == {b"session-id": b"s", b"x-codex-window-id": b"w"}


def test_only_ids_and_x_codex_headers_of_a_codex_client_are_forwarded() -> None:
    assert dict(codex_client_headers(CODEX_REQUEST)) == {
        b"session-id": b"s", b"thread-id": b"t", b"x-client-request-id": b"r",
        b"x-codex-window-id": b"w", b"x-codex-turn-metadata": b"{}"}
    others = {**CODEX_REQUEST, b"originator": b"opencode", b"user-agent": b"OpenAI/Python"}
    assert codex_client_headers(others) == ()
