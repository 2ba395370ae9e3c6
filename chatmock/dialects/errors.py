"""ApiError → the error body each dialect's clients parse.

OpenAI: `{"error": {"message", "type", "param", "code"}}`.
Anthropic: `{"type": "error", "error": {"type", "message"}}`, with the type
chosen by status the way Anthropic's API does.
Ollama: `{"error": "message"}`, the message led by the field's path when the
error is about one (`param`) and does not name it already.

`failure_error` is the error of a backend failure inside the stream of a
non-streamed answer (`response.failed` or `error`): the status follows what
the code means (`events.failure_kind`): 400 for a prompt the backend cannot
serve (context length, flagged prompt), 429 for limits (with `Retry-After`
when the message says "try again in Ns"), 401 for credentials, 529 for an
overloaded backend on the Anthropic routes (Anthropic's own status for
`overloaded_error`), else 502.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Mapping

from chatmock import jsonbytes
from chatmock.errors import ApiError, UpstreamError


class Dialect(enum.Enum):
    """An API family's errors: what the route table hands the router for each path
    (`chatmock.server.router.ErrorShape`), and what `failure` gives a non-streamed answer."""

    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    OLLAMA = "ollama"

    @property
    def label(self) -> str:
        return self.value

    def render(self, error: ApiError) -> bytes:
        return render(error, self)

    def for_headers(self, headers: Mapping[bytes, bytes]) -> Dialect:
        """Anthropic's SDKs send `anthropic-version` on every request: an OpenAI-family
        path they call (`/v1/models`) answers them in Anthropic's error shape."""
        if self is Dialect.OPENAI and b"anthropic-version" in headers:
            return Dialect.ANTHROPIC
        return self

    def failure(self, message: str, code: str) -> UpstreamError:
        return failure_error(message, code, self)


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


_FAILURES = {"invalid_request": (400, "invalid_request_error"),
             "rate_limit": (429, "rate_limit_error"),
             "authentication": (401, "authentication_error")}
_TRY_AGAIN = re.compile(r"try again in\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|seconds?)\b", re.I)


def failure_type(code: str) -> str:
    """The OpenAI error `type` of an upstream failure code (in-stream error chunks)."""
    from chatmock.dialects.events import failure_kind  # the router needs only `Dialect`

    return _FAILURES.get(failure_kind(code), (502, "api_error"))[1]


def failure_error(message: str, code: str, dialect: Dialect) -> UpstreamError:
    """The error a non-streamed answer gets for an in-stream backend failure (module doc)."""
    from chatmock.dialects.events import failure_kind

    kind = failure_kind(code)
    status, error_type = _FAILURES.get(kind, (502, "api_error"))
    if kind == "overloaded" and dialect is Dialect.ANTHROPIC:
        status = 529
    headers: tuple[tuple[bytes, bytes], ...] = ()
    wait = _TRY_AGAIN.search(message) if kind == "rate_limit" else None
    if wait is not None:
        seconds = float(wait.group(1)) / (1000 if wait.group(2).lower() == "ms" else 1)
        headers = ((b"retry-after", b"%d" % max(1, math.ceil(seconds))),)
    return UpstreamError(message, status=status, error_type=error_type, code=code,
                         headers=headers)
