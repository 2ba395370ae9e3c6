"""Unit tests for the sans-I/O fake OAuth server (chatmock.testing.fake_oauth) and the
backend's token checks that it drives (chatmock.testing.fake_codex)."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest

from chatmock.testing.credentials import (
    TEST_ACCOUNT_ID,
    auth_document,
    codex_headers,
    make_jwt,
)
from chatmock.testing.fake_codex import FakeCodex, FakeReply
from chatmock.testing.fake_oauth import (
    AUTH_CLAIM,
    CODEX_CLIENT_ID,
    FakeOAuth,
    is_oauth_path,
    s256,
)
from chatmock.testing.fake_upstream import FakeUpstreamApp

JSON = dict[str, Any]
ISSUER = "http://127.0.0.1:4444"
REDIRECT = "http://localhost:1455/auth/callback"
VERIFIER = hashlib.sha512(b"test verifier").hexdigest()  # 128 hex chars, like ChatMock
FORM = {b"content-type": b"application/x-www-form-urlencoded"}
JSON_HEADERS = {b"content-type": b"application/json"}
REUSED_MESSAGE = ("Your refresh token has already been used to generate a new access token. "
                  "Please try signing in again.")


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def oauth(clock: Clock) -> FakeOAuth:
    return FakeOAuth(issuer=ISSUER, clock=clock)


def authorize_params(**overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "response_type": "code", "client_id": CODEX_CLIENT_ID, "redirect_uri": REDIRECT,
        "scope": "openid profile email offline_access", "code_challenge": s256(VERIFIER),
        "code_challenge_method": "S256", "id_token_add_organizations": "true",
        "codex_cli_simplified_flow": "true", "state": "a" * 64, "originator": "chatmock",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def authorize(oauth: FakeOAuth, **overrides: str | None) -> FakeReply:
    query = urlencode(authorize_params(**overrides))
    return oauth.handle("GET", f"/oauth/authorize?{query}", {}, b"")


def header(reply: FakeReply, name: bytes) -> bytes:
    values = [v for k, v in reply.headers if k == name]
    assert len(values) == 1, (name, reply.headers)
    return values[0]


def redirect_params(reply: FakeReply, base: str = REDIRECT + "?") -> dict[str, str]:
    assert reply.status == 302, reply.body
    location = header(reply, b"location").decode()
    assert location.startswith(base)
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def body(reply: FakeReply) -> Any:
    return json.loads(reply.body)


def post(oauth: FakeOAuth, path: str, value: object = None,
         headers: dict[bytes, bytes] | None = None) -> FakeReply:
    raw = b"" if value is None else json.dumps(value).encode()
    return oauth.handle("POST", path, JSON_HEADERS if headers is None else headers, raw)


def token(oauth: FakeOAuth, **form: str) -> FakeReply:
    return oauth.handle("POST", "/oauth/token", FORM, urlencode(form).encode())


def exchange(oauth: FakeOAuth, code: str, /, **overrides: str) -> FakeReply:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "client_id": CODEX_CLIENT_ID, "code_verifier": VERIFIER}
    return token(oauth, **{**form, **overrides})


def login(oauth: FakeOAuth) -> JSON:
    reply = exchange(oauth, redirect_params(authorize(oauth))["code"])
    assert reply.status == 200, reply.body
    result: JSON = body(reply)
    return result


def refresh(oauth: FakeOAuth, refresh_token: str) -> FakeReply:
    return token(oauth, grant_type="refresh_token", refresh_token=refresh_token,
                 client_id=CODEX_CLIENT_ID)


def claims(token_value: str) -> JSON:
    result: JSON = jwt.decode(token_value, options={"verify_signature": False})
    return result


# --- authorize -------------------------------------------------------------------------


def test_authorize_redirects_at_once_with_code_and_state(oauth: FakeOAuth) -> None:
    reply = authorize(oauth)
    params = redirect_params(reply)
    assert set(params) == {"code", "state"}
    assert params["state"] == "a" * 64
    assert params["code"]
    assert header(reply, b"cache-control") == b"no-store"


def test_authorize_without_state_omits_it_and_codes_differ(oauth: FakeOAuth) -> None:
    first = redirect_params(authorize(oauth, state=None))
    second = redirect_params(authorize(oauth, state=None))
    assert set(first) == {"code"}
    assert first["code"] != second["code"]


def test_authorize_keeps_an_existing_query_on_the_redirect_uri(oauth: FakeOAuth) -> None:
    reply = authorize(oauth, redirect_uri="http://localhost:1455/cb?x=1")
    params = redirect_params(reply, "http://localhost:1455/cb?x=1&code=")
    assert params["x"] == "1"


@pytest.mark.parametrize("overrides", [
    {"client_id": "app_someone_else"}, {"client_id": None},
    {"redirect_uri": None}, {"redirect_uri": "not a url"},
])
def test_authorize_errors_before_a_redirect_uri_are_400_pages(
        oauth: FakeOAuth, overrides: dict[str, str | None]) -> None:
    reply = authorize(oauth, **overrides)
    assert reply.status == 400
    assert header(reply, b"content-type").startswith(b"text/plain")
    assert not [k for k, _ in reply.headers if k == b"location"]


def test_authorize_accepts_another_configured_client_id(clock: Clock) -> None:
    oauth = FakeOAuth(client_id="app_other", clock=clock)
    assert authorize(oauth).status == 400
    assert redirect_params(authorize(oauth, client_id="app_other"))["code"]


@pytest.mark.parametrize(("overrides", "error"), [
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"scope": "openid profile email"}, "invalid_scope"),
    ({"scope": "offline_access"}, "invalid_scope"),
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"code_challenge_method": None}, "invalid_request"),
    ({"code_challenge": None}, "invalid_request"),
    ({"code_challenge": "short"}, "invalid_request"),
])
def test_authorize_errors_after_the_redirect_uri_redirect(
        oauth: FakeOAuth, overrides: dict[str, str | None], error: str) -> None:
    params = redirect_params(authorize(oauth, **overrides))
    assert params["error"] == error
    assert params["error_description"]
    assert params["state"] == "a" * 64
    assert "code" not in params


def test_next_authorize_error_refuses_once(oauth: FakeOAuth) -> None:
    oauth.next_authorize_error = "access_denied"
    params = redirect_params(authorize(oauth))
    assert params["error"] == "access_denied"
    assert params["error_description"]
    assert params["state"] == "a" * 64
    assert "code" not in params
    assert oauth.snapshot()["next_authorize_error"] is None  # reset by the refusal
    assert "code" in redirect_params(authorize(oauth))


def test_authorize_is_get_only(oauth: FakeOAuth) -> None:
    reply = oauth.handle("POST", "/oauth/authorize", {}, b"")
    assert reply.status == 405
    assert header(reply, b"allow") == b"GET"


def test_unknown_paths_are_404(oauth: FakeOAuth) -> None:
    assert oauth.handle("GET", "/oauth/nope", {}, b"").status == 404


# --- authorization code exchange -------------------------------------------------------


def test_code_exchange_returns_tokens(oauth: FakeOAuth) -> None:
    reply = exchange(oauth, redirect_params(authorize(oauth))["code"])
    assert reply.status == 200
    result = body(reply)
    assert {"id_token", "access_token", "refresh_token", "token_type", "expires_in"} <= set(result)
    assert result["token_type"] == "Bearer"
    assert result["expires_in"] == 3600
    assert header(reply, b"cache-control") == b"no-store"
    assert header(reply, b"content-type") == b"application/json"


def test_code_exchange_accepts_a_json_body(oauth: FakeOAuth) -> None:
    code = redirect_params(authorize(oauth))["code"]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "client_id": CODEX_CLIENT_ID, "code_verifier": VERIFIER}
    assert post(oauth, "/oauth/token", form).status == 200


def test_a_43_character_verifier_works(oauth: FakeOAuth) -> None:
    verifier = "A" * 43
    code = redirect_params(authorize(oauth, code_challenge=s256(verifier)))["code"]
    assert exchange(oauth, code, code_verifier=verifier).status == 200


def invalid_grant(reply: FakeReply) -> str:
    assert reply.status == 400, reply.body
    result = body(reply)
    assert result["error"] == "invalid_grant"
    description: str = result["error_description"]
    return description


def test_wrong_verifier_is_invalid_grant_and_leaves_the_code_usable(oauth: FakeOAuth) -> None:
    code = redirect_params(authorize(oauth))["code"]
    assert "code_verifier" in invalid_grant(exchange(oauth, code, code_verifier="b" * 128))
    assert "code_verifier" in invalid_grant(exchange(oauth, code, code_verifier="bad!"))
    assert exchange(oauth, code).status == 200


def test_codes_are_single_use(oauth: FakeOAuth) -> None:
    code = redirect_params(authorize(oauth))["code"]
    assert exchange(oauth, code).status == 200
    assert "already been used" in invalid_grant(exchange(oauth, code))


def test_codes_expire_after_ten_minutes(oauth: FakeOAuth, clock: Clock) -> None:
    fresh = redirect_params(authorize(oauth))["code"]
    stale = redirect_params(authorize(oauth))["code"]
    clock.now += 599
    assert exchange(oauth, fresh).status == 200
    clock.now += 2
    assert "expired" in invalid_grant(exchange(oauth, stale))


@pytest.mark.parametrize(("field", "value", "words"), [
    ("redirect_uri", "http://localhost:1455/other", "redirect_uri"),
    ("client_id", "app_other", "client_id"),
    ("code", "ac_unknown", "Unknown"),
])
def test_code_exchange_mismatches_are_invalid_grant(
        oauth: FakeOAuth, field: str, value: str, words: str) -> None:
    code = redirect_params(authorize(oauth))["code"]
    assert words in invalid_grant(exchange(oauth, code, **{field: value}))


def test_missing_parameters_and_unknown_grants_are_400(oauth: FakeOAuth) -> None:
    reply = token(oauth, grant_type="authorization_code", code="x")
    assert reply.status == 400
    assert body(reply)["error"] == "invalid_request"
    reply = token(oauth, grant_type="password")
    assert reply.status == 400
    assert body(reply)["error"] == "unsupported_grant_type"
    reply = oauth.handle("POST", "/oauth/token", JSON_HEADERS, b"not json")
    assert reply.status == 400


# --- refresh -----------------------------------------------------------------------------


def test_refresh_rotates_the_refresh_token(oauth: FakeOAuth) -> None:
    first = login(oauth)
    reply = refresh(oauth, first["refresh_token"])
    assert reply.status == 200
    second = body(reply)
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert {"id_token", "access_token", "refresh_token", "expires_in"} <= set(second)
    third = body(refresh(oauth, second["refresh_token"]))
    assert third["refresh_token"] not in (first["refresh_token"], second["refresh_token"])
    assert (oauth.refresh_count, oauth.refresh_attempts) == (2, 2)
    for result in (first, second, third):
        assert oauth.access_token_status(result["access_token"]) is None


def test_refresh_accepts_go_chatmocks_json_body(oauth: FakeOAuth) -> None:
    first = login(oauth)
    reply = post(oauth, "/oauth/token", {
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"],
        "client_id": CODEX_CLIENT_ID, "scope": "openid profile email offline_access"})
    assert reply.status == 200
    assert oauth.refresh_count == 1


def refresh_error(reply: FakeReply, status: int = 401) -> str:
    assert reply.status == status, reply.body
    error = body(reply)["error"]
    assert set(error) == {"message", "type", "code"}
    assert error["message"]
    code: str = error["code"]
    return code


def test_reusing_a_refresh_token_revokes_the_family(oauth: FakeOAuth) -> None:
    first = login(oauth)
    other = login(oauth)
    second = body(refresh(oauth, first["refresh_token"]))
    reply = refresh(oauth, first["refresh_token"])
    assert reply.status == 401
    assert body(reply) == {"error": {"message": REUSED_MESSAGE, "type": "invalid_request_error",
                                     "code": "refresh_token_reused"}}
    assert refresh_error(refresh(oauth, second["refresh_token"])) == "refresh_token_invalidated"
    assert oauth.access_token_status(first["access_token"]) == "revoked"
    assert oauth.access_token_status(second["access_token"]) == "revoked"
    assert oauth.access_token_status(other["access_token"]) is None
    assert refresh(oauth, other["refresh_token"]).status == 200
    statuses = [f["status"] for f in oauth.snapshot()["families"]]
    assert statuses == ["revoked", "active"]
    assert (oauth.refresh_count, oauth.refresh_attempts) == (2, 4)


def test_unknown_refresh_token_is_invalidated(oauth: FakeOAuth) -> None:
    assert refresh_error(refresh(oauth, "rt_nobody")) == "refresh_token_invalidated"
    assert (oauth.refresh_count, oauth.refresh_attempts) == (0, 1)


def test_refresh_needs_the_client_id(oauth: FakeOAuth) -> None:
    first = login(oauth)
    reply = token(oauth, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert refresh_error(reply) == "invalid_client"
    reply = token(oauth, grant_type="refresh_token", client_id=CODEX_CLIENT_ID)
    assert reply.status == 400
    assert refresh(oauth, first["refresh_token"]).status == 200


@pytest.mark.parametrize(("code", "status", "error_type"), [
    ("revoked", 401, "invalid_request_error"),
    ("deactivated_workspace", 401, "invalid_request_error"),
    ("refresh_token_expired", 401, "invalid_request_error"),
    ("server_error", 500, "server_error"),
])
def test_next_refresh_error_fails_the_next_refresh_once(
        oauth: FakeOAuth, code: str, status: int, error_type: str) -> None:
    first = login(oauth)
    oauth.next_refresh_error = code
    reply = refresh(oauth, first["refresh_token"])
    assert refresh_error(reply, status) == code
    assert body(reply)["error"]["type"] == error_type
    assert oauth.snapshot()["next_refresh_error"] is None  # reset by the failure
    assert refresh(oauth, first["refresh_token"]).status == 200
    assert (oauth.refresh_count, oauth.refresh_attempts) == (1, 2)


# --- tokens ------------------------------------------------------------------------------


def test_token_claims(oauth: FakeOAuth, clock: Clock) -> None:
    result = login(oauth)
    id_claims = claims(result["id_token"])
    assert id_claims["iss"] == ISSUER
    assert CODEX_CLIENT_ID in id_claims["aud"]
    assert id_claims["sub"]
    assert id_claims["email"] == "user@example.com"
    assert id_claims["iat"] == int(clock.now)
    assert id_claims["exp"] > clock.now
    auth = id_claims[AUTH_CLAIM]
    assert auth["chatgpt_account_id"] == TEST_ACCOUNT_ID
    assert auth["chatgpt_plan_type"] == "plus"
    assert auth["chatgpt_user_id"]
    access = claims(result["access_token"])
    assert access["exp"] == int(clock.now + 3600)
    assert access["iss"] == ISSUER
    assert access[AUTH_CLAIM] == auth
    again = claims(body(refresh(oauth, result["refresh_token"]))["access_token"])
    assert again["jti"] != access["jti"]


def test_identity_and_ttl_are_configurable(clock: Clock) -> None:
    oauth = FakeOAuth(clock=clock, access_ttl=60, account_id="acct-9", email="p@example.org",
                      plan="pro")
    result = login(oauth)
    id_claims = claims(result["id_token"])
    assert id_claims["email"] == "p@example.org"
    assert id_claims["iss"] == "https://auth.openai.com"
    access = claims(result["access_token"])
    assert access["exp"] == int(clock.now + 60)
    assert access[AUTH_CLAIM]["chatgpt_account_id"] == "acct-9"
    assert access[AUTH_CLAIM]["chatgpt_plan_type"] == "pro"
    assert result["expires_in"] == 60


def test_issuer_can_be_set_after_construction(clock: Clock) -> None:
    oauth = FakeOAuth(clock=clock)
    oauth.issuer = "http://127.0.0.1:5555/"
    assert claims(login(oauth)["id_token"])["iss"] == "http://127.0.0.1:5555"


def test_access_token_status(oauth: FakeOAuth, clock: Clock) -> None:
    result = login(oauth)
    access = result["access_token"]
    assert oauth.access_token_status(access) is None
    assert oauth.access_token_status("not-issued") == "unknown"
    assert oauth.access_token_status(make_jwt({"exp": clock.now + 100})) == "unknown"
    clock.now += 3599
    assert oauth.access_token_status(access) is None
    clock.now += 1
    assert oauth.access_token_status(access) == "expired"
    refresh(oauth, result["refresh_token"])
    refresh(oauth, result["refresh_token"])  # reuse revokes the family
    assert oauth.access_token_status(access) == "revoked"


def test_auth_document_holds_the_issued_tokens(oauth: FakeOAuth) -> None:
    result = login(oauth)
    document = auth_document(result)
    assert document["OPENAI_API_KEY"] is None
    assert document["tokens"] == {
        "id_token": result["id_token"], "access_token": result["access_token"],
        "refresh_token": result["refresh_token"], "account_id": TEST_ACCOUNT_ID}
    assert document["last_refresh"].endswith("Z")


# --- device code -------------------------------------------------------------------------


def start_device(oauth: FakeOAuth) -> JSON:
    reply = post(oauth, "/api/accounts/deviceauth/usercode", {"client_id": CODEX_CLIENT_ID})
    assert reply.status == 200, reply.body
    result: JSON = body(reply)
    return result


def poll(oauth: FakeOAuth, device: JSON) -> FakeReply:
    return post(oauth, "/api/accounts/deviceauth/token",
                {"device_auth_id": device["device_auth_id"], "user_code": device["user_code"]})


def redeem(oauth: FakeOAuth, success: FakeReply) -> FakeReply:
    assert success.status == 200, success.body
    result = body(success)
    assert result["code_challenge"] == s256(result["code_verifier"])
    return exchange(oauth, result["authorization_code"],
                    redirect_uri=f"{ISSUER}/deviceauth/callback",
                    code_verifier=result["code_verifier"])


def test_device_flow_completes_after_two_pending_polls(oauth: FakeOAuth) -> None:
    device = start_device(oauth)
    assert device["interval"] == 1
    assert device["user_code"]
    assert device["verification_uri"] == f"{ISSUER}/codex/device"
    for _ in range(2):
        pending = poll(oauth, device)
        assert pending.status == 403
        assert body(pending)["error"]["code"] == "deviceauth_authorization_pending"
    success = poll(oauth, device)
    tokens = redeem(oauth, success)
    assert tokens.status == 200
    assert claims(body(tokens)["id_token"])[AUTH_CLAIM]["chatgpt_account_id"] == TEST_ACCOUNT_ID
    assert poll(oauth, device).status == 400
    assert oauth.snapshot()["pending_device_codes"] == []


def test_device_flow_waits_for_explicit_approval(oauth: FakeOAuth) -> None:
    oauth.auto_approve_after_polls = None
    device = start_device(oauth)
    for _ in range(5):
        assert poll(oauth, device).status == 403
    [pending] = oauth.snapshot()["pending_device_codes"]
    assert pending == {"device_auth_id": device["device_auth_id"],
                       "user_code": device["user_code"], "pending_polls": 5,
                       "approved": False}
    oauth.approve_device(device["user_code"])
    assert redeem(oauth, poll(oauth, device)).status == 200
    with pytest.raises(KeyError):
        oauth.approve_device("NOPE-0000")


def test_device_auto_approval_at_zero_polls(oauth: FakeOAuth) -> None:
    oauth.auto_approve_after_polls = 0
    assert poll(oauth, start_device(oauth)).status == 200


def test_device_codes_verifiers_differ(oauth: FakeOAuth) -> None:
    oauth.auto_approve_after_polls = 0
    first = body(poll(oauth, start_device(oauth)))
    second = body(poll(oauth, start_device(oauth)))
    assert first["code_verifier"] != second["code_verifier"]


def test_device_errors(oauth: FakeOAuth, clock: Clock) -> None:
    reply = post(oauth, "/api/accounts/deviceauth/usercode", {"client_id": "app_other"})
    assert reply.status == 400
    device = start_device(oauth)
    assert poll(oauth, {**device, "user_code": "WRONG-0000"}).status == 400
    assert poll(oauth, {**device, "device_auth_id": "deviceauth_x"}).status == 400
    clock.now += 901
    reply = poll(oauth, device)
    assert reply.status == 400
    assert body(reply)["error"]["code"] == "device_code_expired"
    assert post(oauth, "/api/accounts/deviceauth/token", headers={}).status == 400


def test_device_verification_page(oauth: FakeOAuth) -> None:
    reply = oauth.handle("GET", "/codex/device", {}, b"")
    assert reply.status == 200
    assert header(reply, b"content-type").startswith(b"text/html")
    assert b"code" in reply.body


# --- control endpoints -----------------------------------------------------------------


def test_state_endpoint(oauth: FakeOAuth) -> None:
    first = login(oauth)
    refresh(oauth, first["refresh_token"])
    refresh(oauth, "rt_unknown")
    device = start_device(oauth)
    reply = oauth.handle("GET", "/__fake__/oauth/state", {}, b"")
    assert reply.status == 200
    state = body(reply)
    assert state["refresh_count"] == 1
    assert state["refresh_attempts"] == 2
    assert state["access_tokens_issued"] == 2
    assert state["families"] == [{"id": state["families"][0]["id"], "status": "active",
                                  "refreshes": 1}]
    assert [d["user_code"] for d in state["pending_device_codes"]] == [device["user_code"]]
    assert state["next_refresh_error"] is None
    assert state["next_authorize_error"] is None
    assert state["issuer"] == ISSUER


def test_control_next_refresh_error(oauth: FakeOAuth) -> None:
    first = login(oauth)
    reply = post(oauth, "/__fake__/oauth/next_refresh_error", {"error": "server_error"})
    assert (reply.status, body(reply)) == (200, {"next_refresh_error": "server_error"})
    assert refresh_error(refresh(oauth, first["refresh_token"]), 500) == "server_error"
    post(oauth, "/__fake__/oauth/next_refresh_error", {"error": "revoked"})
    post(oauth, "/__fake__/oauth/next_refresh_error", {"error": None})
    assert oauth.next_refresh_error is None
    reply = post(oauth, "/__fake__/oauth/next_refresh_error", {"error": 5})
    assert reply.status == 400


def test_control_next_authorize_error(oauth: FakeOAuth) -> None:
    reply = post(oauth, "/__fake__/oauth/next_authorize_error", {"error": "access_denied"})
    assert reply.status == 200
    assert redirect_params(authorize(oauth))["error"] == "access_denied"


def test_control_expire_access_tokens(oauth: FakeOAuth) -> None:
    first = login(oauth)
    reply = post(oauth, "/__fake__/oauth/expire_access_tokens")
    assert (reply.status, body(reply)) == (200, {"expired": 1})
    assert oauth.access_token_status(first["access_token"]) == "expired"
    second = body(refresh(oauth, first["refresh_token"]))
    assert oauth.access_token_status(second["access_token"]) is None


def test_control_revoke_all_and_approve_device(oauth: FakeOAuth) -> None:
    first = login(oauth)
    assert body(post(oauth, "/__fake__/oauth/revoke_all")) == {"revoked": 1}
    assert oauth.access_token_status(first["access_token"]) == "revoked"
    oauth.auto_approve_after_polls = None
    device = start_device(oauth)
    reply = post(oauth, "/__fake__/oauth/approve_device", {"user_code": device["user_code"]})
    assert reply.status == 200
    assert poll(oauth, device).status == 200
    reply = post(oauth, "/__fake__/oauth/approve_device", {"user_code": device["user_code"]})
    assert reply.status == 404


# --- the backend's token checks ------------------------------------------------------


def codex_request(fake: FakeCodex, access_token: str, path: str = "responses") -> FakeReply:
    headers = codex_headers(access_token, TEST_ACCOUNT_ID)
    if path == "models":
        return fake.handle("GET", "/backend-api/codex/models", headers, b"")
    payload = {"model": "gpt-5.4", "stream": True, "store": False, "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}]}
    return fake.handle("POST", "/backend-api/codex/responses", headers,
                       json.dumps(payload).encode())


def backend_error(reply: FakeReply) -> str:
    assert reply.status == 401, reply.status
    error = body(reply)["error"]
    assert error["type"] == "invalid_request_error"
    code: str = error["code"]
    return code


@pytest.mark.parametrize("path", ["responses", "models"])
def test_token_check_follows_the_oauth_state(
        oauth: FakeOAuth, clock: Clock, path: str) -> None:
    fake = FakeCodex(token_check=oauth.access_token_status, clock=clock)
    first = login(oauth)
    assert codex_request(fake, first["access_token"], path).status == 200
    assert backend_error(codex_request(fake, "test-token", path)) == "invalid_token"
    oauth.expire_access_tokens()
    reply = codex_request(fake, first["access_token"], path)
    assert backend_error(reply) == "token_expired"
    assert body(reply)["error"]["message"] == (
        "Your authentication token has expired. Please try signing in again.")
    second = body(refresh(oauth, first["refresh_token"]))
    assert codex_request(fake, second["access_token"], path).status == 200
    oauth.revoke_all()
    assert backend_error(codex_request(fake, second["access_token"], path)) == "token_revoked"


@pytest.mark.parametrize("path", ["responses", "models"])
def test_expired_jwt_bearers_are_refused_without_token_check(path: str) -> None:
    fake = FakeCodex()
    expired = make_jwt({"exp": 1_000_000_000, AUTH_CLAIM: {}})
    assert backend_error(codex_request(fake, expired, path)) == "token_expired"
    fresh = make_jwt({"exp": 4_000_000_000})
    assert codex_request(fake, fresh, path).status == 200
    assert codex_request(fake, make_jwt({"sub": "no exp"}), path).status == 200
    assert codex_request(fake, "test-token", path).status == 200
    assert codex_request(fake, "a.b.c", path).status == 200


def test_expired_jwt_uses_the_backend_clock(clock: Clock) -> None:
    fake = FakeCodex(clock=clock)
    token_value = make_jwt({"exp": clock.now + 10})
    assert codex_request(fake, token_value).status == 200
    clock.now += 10
    assert backend_error(codex_request(fake, token_value)) == "token_expired"


def test_missing_bearer_is_still_refused_first() -> None:
    fake = FakeCodex(token_check=lambda _: "unknown")
    reply = fake.handle("GET", "/backend-api/codex/models", {}, b"")
    assert reply.status == 401
    assert "Missing bearer" in body(reply)["error"]["message"]


# --- process wiring ------------------------------------------------------------------


@pytest.mark.parametrize(("path", "expected"), [
    ("/oauth/authorize", True), ("/oauth/token", True),
    ("/api/accounts/deviceauth/usercode", True), ("/codex/device", True),
    ("/__fake__/oauth/state", True), ("/__fake__/requests", False),
    ("/backend-api/codex/responses", False), ("/health", False), ("/codex/devices", False),
])
def test_is_oauth_path(path: str, expected: bool) -> None:
    assert is_oauth_path(path) is expected


def test_upstream_app_routes_and_checks_tokens_only_when_asked() -> None:
    for check_tokens, expected in ((False, 200), (True, 401)):
        app = FakeUpstreamApp.create(check_tokens=check_tokens)
        assert app.dispatch("GET", "/__fake__/oauth/state", {}, b"").status == 200
        assert app.dispatch("GET", "/health", {}, b"").status == 200
        headers = {b"authorization": b"Bearer test-token"}
        reply = app.dispatch("GET", "/backend-api/codex/models", headers, b"")
        assert reply.status == expected
