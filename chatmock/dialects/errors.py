"""ApiError → the error body each dialect's clients parse.

OpenAI: `{"error": {"message", "type", "param", "code"}}`.
Anthropic: `{"type": "error", "error": {"type", "message"}}`, with the type
chosen by status the way Anthropic's API does.
Ollama: `{"error": "message"}`, the message led by the field's path when the
error is about one (`param`) and does not name it already.
"""

from __future__ import annotations

import enum

from chatmock import jsonbytes
from chatmock.errors import ApiError


class Dialect(enum.Enum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    OLLAMA = "ollama"


_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                    403: "permission_error", 404: "not_found_error", 413: "request_too_large",
                    429: "rate_limit_error", 500: "api_error", 529: "overloaded_error",
                    503: "overloaded_error"}


def openai_error(error: ApiError) -> dict[str, object]:
    return {"error": {"message": error.message, "type": error.error_type, "param": error.param,
                      "code": error.code}}


def render(error: ApiError, dialect: Dialect) -> bytes:
    if dialect is Dialect.ANTHROPIC:
        kind = _ANTHROPIC_TYPES.get(error.status)
        if kind is None:
            kind = "invalid_request_error" if error.status < 500 else "api_error"
        return jsonbytes.dumps({"type": "error", "error": {"type": kind,
                                                           "message": error.message}})
    if dialect is Dialect.OLLAMA:
        return jsonbytes.dumps({"error": named_message(error)})
    return jsonbytes.dumps(openai_error(error))


def named_message(error: ApiError) -> str:
    """The message, led by the field's path when it does not name it already (for shapes
    without a `param`: Ollama's, WebSocket error frames)."""
    if error.param and error.param not in error.message:
        return f"{error.param}: {error.message}"
    return error.message


def dialect_of(path: str, headers: dict[bytes, bytes]) -> Dialect:
    """Which dialect's error shape a request expects, from its path and headers."""
    if path.startswith("/api/") or path == "/api":
        return Dialect.OLLAMA
    if path.startswith("/v1/messages") or b"anthropic-version" in headers:
        return Dialect.ANTHROPIC
    return Dialect.OPENAI
