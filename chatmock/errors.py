"""One root for every error chatmock raises on purpose.

An `ApiError` carries what the HTTP boundary needs to answer: a status, a
human message, an error type (OpenAI/Anthropic vocabulary), the request
field it is about (`param`, a path such as `messages[2].content`) and
optional extra headers. Dialect renderers (`chatmock.dialects.errors`) turn it into the
client's own error shape; nothing below the routes formats error bodies.
"""

from __future__ import annotations

from typing import Any


class ChatmockError(Exception):
    """Root of chatmock's own exceptions."""


class ApiError(ChatmockError):
    """An error that becomes an HTTP answer."""

    status: int = 500
    error_type: str = "api_error"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if error_type is not None:
            self.error_type = error_type
        self.code = code
        self.param = param
        self.headers = headers


class ClientError(ApiError):
    """The request itself is wrong (4xx)."""

    status = 400
    error_type = "invalid_request_error"


class UpstreamError(ApiError):
    """The backend refused, failed, or could not be reached."""

    status = 502
    error_type = "api_error"


class ConfigError(ChatmockError):
    """Settings that cannot work; reported at start-up, never mid-request."""


def extract_message(document: Any) -> str:
    """The human message of an error body, wherever the backend put it."""
    if not isinstance(document, dict):
        return ""
    keys = ("message", "detail", "error_description", "title", "reason")
    error = document.get("error")
    candidates: list[Any] = []
    if isinstance(error, dict):
        candidates.append(error.get("message"))
    candidates += [document.get(key) for key in keys]
    if isinstance(error, dict):
        candidates += [error.get(key) for key in keys]
    candidates.append(error)
    errors = document.get("errors")
    if isinstance(errors, list):
        candidates += [entry.get("message") if isinstance(entry, dict) else entry
                       for entry in errors]
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
        if isinstance(candidate, list) and candidate and isinstance(candidate[0], dict):
            # FastAPI-style validation details: [{"msg": ...}, ...]
            message = candidate[0].get("msg")
            if isinstance(message, str):
                return message
    return ""
