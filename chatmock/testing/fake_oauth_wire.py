"""The fake OAuth server's wire shapes: replies, error bodies, request parameters."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from chatmock.testing.fake_codex import FakeReply
from chatmock.testing.fake_events import dump_json
from chatmock.testing.fake_rules import Rejected, reject

NO_STORE = (b"cache-control", b"no-store")
REFRESH_MESSAGES = {
    "refresh_token_reused": "Your refresh token has already been used to generate a new "
                            "access token. Please try signing in again.",
    "refresh_token_invalidated": "Your refresh token has been invalidated. "
                                 "Please try signing in again.",
    "refresh_token_expired": "Your refresh token has expired. Please try signing in again.",
    "server_error": "The server had an error while processing your request. Sorry about that!",
}


def json_reply(status: int, value: object, *extra: tuple[bytes, bytes]) -> FakeReply:
    return FakeReply(status, [(b"content-type", b"application/json"), *extra], dump_json(value))


def text_page(status: int, message: str) -> Rejected:
    return Rejected(status, message.encode(), b"text/plain; charset=utf-8")


def redirect_reply(uri: str, **params: str | None) -> FakeReply:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    location = uri + ("&" if "?" in uri else "?") + query
    return FakeReply(302, [(b"location", location.encode()), NO_STORE])


def grant_error(status: int, error: str, description: str) -> Rejected:
    """The RFC 6749 error shape used by the authorization-code grant."""
    return reject(status, {"error": error, "error_description": description})


def api_error(status: int, code: str, message: str) -> Rejected:
    error_type = "server_error" if status >= 500 else "invalid_request_error"
    return reject(status, {"error": {"message": message, "type": error_type, "code": code}})


def refresh_error(code: str, message: str | None = None) -> Rejected:
    """A failed refresh: 500 for ``server_error``, else 401, in the OpenAI error shape."""
    status = 500 if code == "server_error" else 401
    text = message or REFRESH_MESSAGES.get(
        code, f"Your refresh token could not be used ({code}). Please try signing in again.")
    return api_error(status, code, text)


def require_params(form: Mapping[str, str], *names: str) -> None:
    for name in names:
        if not form.get(name):
            raise grant_error(400, "invalid_request", f"Missing required parameter: {name}.")


def query_params(query: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}


def absolute_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def form_params(headers: Mapping[bytes, bytes], body: bytes) -> dict[str, str]:
    """Parameters of a form-encoded or JSON body (go-chatmock refreshes with JSON)."""
    if b"json" in headers.get(b"content-type", b"").lower():
        payload = json_body(body)
        return {k: v for k, v in payload.items() if isinstance(v, str)}
    try:
        return query_params(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise grant_error(400, "invalid_request", "Body is not UTF-8.") from None


def json_body(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        payload = None
    if not isinstance(payload, dict):
        raise api_error(400, "invalid_request", "Body must be a JSON object.")
    return payload


def control_error(body: bytes) -> str | None:
    value = json_body(body).get("error") if body.strip() else None
    if value is not None and not isinstance(value, str):
        raise api_error(400, "invalid_request", '"error" must be a string or null.')
    return value or None


def fake_user_code(serial: int) -> str:
    """A readable, deterministic user code such as ``FAKE-0003``."""
    return f"FAKE-{serial:04d}"
