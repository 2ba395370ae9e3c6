"""Several ChatGPT accounts on one fake backend: whose a request is, and what each may do.

A request's account is its `chatgpt-account-id` header; a JWT bearer names
its own account (the `https://api.openai.com/auth` claim) and must name the
same one, as on the real backend (401 `invalid_token` otherwise). Each account
has its own usage counter (the `x-codex-*` figures of its answers), and its
reasoning is minted for it (`fake_mint`): another account's is refused.

Control routes, for tests:

* `POST /__fake__/accounts/limit` `{"account": ID, "seconds": N}`: the account
  is over its usage limit for N seconds: every request gets the 429
  `usage_limit_reached` with `resets_in_seconds` (the time left), a
  `Retry-After` and a spent 5-hour window. With `"in_stream": "failed"` or
  `"error"` the backend says it inside a 200 stream instead, right after
  `response.created`, in the two shapes the Codex CLI reads there
  (`stream_limit_frames`);
* `POST /__fake__/accounts/revoke` `{"account": ID}`: every token of the
  account is refused (401 `token_revoked`) until `DELETE /__fake__/accounts`;
* `GET /__fake__/accounts`: per account, `requests` (streams started),
  `limited_for` (seconds left, 0 when not limited) and `revoked`;
* `DELETE /__fake__/accounts`: forget limits, revocations and counters.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import jwt

from chatmock.testing.fake_events import frame
from chatmock.testing.fake_failures import window_headers
from chatmock.testing.fake_rules import Rejected, reject

ACCOUNTS_PATH = "/__fake__/accounts"
LIMIT_PATH = ACCOUNTS_PATH + "/limit"
REVOKE_PATH = ACCOUNTS_PATH + "/revoke"
_AUTH_CLAIM = "https://api.openai.com/auth"


class FakeAccounts:
    """The per-account state of one fake backend."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.limited: dict[str, float] = {}  # account -> until
        self.in_stream: dict[str, str] = {}  # account -> "failed" | "error" (else a 429)
        self.revoked: set[str] = set()
        self.streams: Counter[str] = Counter()

    def check(self, headers: Mapping[bytes, bytes], token: str) -> str:
        """The request's account, or Rejected (a foreign token, revoked, over its limit)."""
        account = headers.get(b"chatgpt-account-id", b"").decode("latin-1")
        named = token_account(token)
        if named and account and named != account:
            raise reject(401, {"error": {
                "message": "Could not validate your authentication token for this account.",
                "type": "invalid_request_error", "code": "invalid_token"}})
        if account in self.revoked:
            raise reject(401, {"error": {
                "message": "Your authentication token has been revoked. Please try signing "
                           "in again.", "type": "invalid_request_error", "code": "token_revoked"}})
        left = self.limited.get(account, 0.0) - self._clock()
        if left > 0 and account not in self.in_stream:
            raise limit_reached(math.ceil(left))
        return account

    def stream_limit(self, account: str) -> tuple[str, int] | None:
        """(shape, seconds left) when the account's limit is said inside the stream."""
        left = self.limited.get(account, 0.0) - self._clock()
        if left <= 0 or account not in self.in_stream:
            return None
        return self.in_stream[account], math.ceil(left)

    def state(self) -> dict[str, Any]:
        now = self._clock()
        names = set(self.streams) | set(self.limited) | self.revoked
        return {name: {"requests": self.streams[name],
                       "limited_for": max(0, math.ceil(self.limited.get(name, 0.0) - now)),
                       "revoked": name in self.revoked} for name in sorted(names)}

    def control(self, path: str, method: str, body: bytes) -> tuple[int, Any]:
        """A control request: (status, JSON answer)."""
        if method == "GET":
            return 200, self.state()
        if method == "DELETE":
            self.limited.clear()
            self.in_stream.clear()
            self.revoked.clear()
            self.streams.clear()
            return 200, {}
        try:
            document = json.loads(body or b"{}")
            account = str(document["account"])
            seconds = float(document.get("seconds", 300))
            shape = document.get("in_stream")
            if shape not in (None, "failed", "error"):
                raise ValueError(shape)
        except (ValueError, KeyError, TypeError):
            return 400, {"detail": 'expected {"account": ID, "seconds": N, '
                                   '"in_stream": "failed"|"error" (optional)}'}
        if path == LIMIT_PATH:
            self.limited[account] = self._clock() + seconds
            if shape is None:
                self.in_stream.pop(account, None)
            else:
                self.in_stream[account] = shape
        else:
            self.revoked.add(account)
        return 200, self.state()


def token_account(token: str) -> str:
    """The account a JWT bearer was issued for ('' for other bearers)."""
    if token.count(".") != 2:
        return ""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return ""
    auth = claims.get(_AUTH_CLAIM) if isinstance(claims, dict) else None
    value = auth.get("chatgpt_account_id") if isinstance(auth, dict) else None
    return value if isinstance(value, str) else ""


def limit_reached(seconds: int) -> Rejected:
    """The usage-limit 429 of an account that is over its limit for `seconds` more."""
    return reject(429, {"error": limit_error(seconds)}, (b"retry-after", str(seconds).encode()),
                  *spent_window(seconds))


def limit_error(seconds: int) -> dict[str, Any]:
    return {"type": "usage_limit_reached", "message": "The usage limit has been reached",
            "plan_type": "plus", "resets_in_seconds": seconds}


def spent_window(seconds: int) -> list[tuple[bytes, bytes]]:
    return window_headers((100.0, 300, seconds), (20.0, 10080, 400000))


def stream_limit_frames(shape: str, seconds: int, response: dict[str, Any]) -> list[bytes]:
    """The 200 stream of an account over its limit: `response.created`, then either
    `response.failed` carrying the usage-limit error (code and type
    `usage_limit_reached`) or the wrapped `error` event of the refusal (`status` 429,
    the error, and the `x-codex-*` headers of a spent window)."""
    error = {**limit_error(seconds), "code": "usage_limit_reached"}
    created = frame("response.created", 0, {"response": {**response, "status": "in_progress"}})
    if shape == "failed":
        failed = {**response, "status": "failed", "error": error}
        return [created, frame("response.failed", 1, {"response": failed})]
    headers = {name.decode(): value.decode() for name, value in spent_window(seconds)}
    return [created, frame("error", 1, {"status": 429, "error": error, "headers": headers})]
