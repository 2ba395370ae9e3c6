"""The fake backend's accounts: whose a request is, usage limits and revocations per account."""

from __future__ import annotations

import json

from chatmock.testing.credentials import codex_headers, fake_tokens
from chatmock.testing.fake_accounts import LIMIT_PATH, REVOKE_PATH
from chatmock.testing.fake_codex import FakeCodex, FakeReply
from tests.unit.test_fake_codex import payload

RESPONSES = "/backend-api/codex/responses"


def ask(fake: FakeCodex, account: str, token: str | None = None) -> FakeReply:
    token = token or fake_tokens(account_id=account)["access_token"]
    return fake.handle("POST", RESPONSES, codex_headers(token, account),
                       json.dumps(payload()).encode())


def control(fake: FakeCodex, method: str, path: str, body: object = None) -> object:
    reply = fake.handle(method, path, {}, json.dumps(body).encode() if body else b"")
    assert reply.status == 200, reply.body
    return json.loads(reply.body)


def test_an_account_over_its_limit_gets_the_429_and_the_other_does_not() -> None:
    now = [1000.0]
    fake = FakeCodex(clock=lambda: now[0])
    control(fake, "POST", LIMIT_PATH, {"account": "acct-a", "seconds": 90})
    reply = ask(fake, "acct-a")
    assert reply.status == 429
    error = json.loads(reply.body)["error"]
    assert error["type"] == "usage_limit_reached" and error["resets_in_seconds"] == 90
    assert (b"retry-after", b"90") in reply.headers
    assert ask(fake, "acct-b").status == 200
    now[0] = 1091.0
    assert ask(fake, "acct-a").status == 200
    state = control(fake, "GET", "/__fake__/accounts")
    assert state == {"acct-a": {"requests": 1, "limited_for": 0, "revoked": False},
                     "acct-b": {"requests": 1, "limited_for": 0, "revoked": False}}


def test_a_revoked_account_gets_401_until_reset() -> None:
    fake = FakeCodex()
    control(fake, "POST", REVOKE_PATH, {"account": "acct-a"})
    reply = ask(fake, "acct-a")
    assert reply.status == 401 and json.loads(reply.body)["error"]["code"] == "token_revoked"
    control(fake, "DELETE", "/__fake__/accounts")
    assert ask(fake, "acct-a").status == 200


def test_a_token_of_another_account_is_refused() -> None:
    reply = ask(FakeCodex(), "acct-a", fake_tokens(account_id="acct-b")["access_token"])
    assert reply.status == 401 and json.loads(reply.body)["error"]["code"] == "invalid_token"


def test_a_bad_control_body_is_a_400() -> None:
    reply = FakeCodex().handle("POST", LIMIT_PATH, {}, b"{}")
    assert reply.status == 400
