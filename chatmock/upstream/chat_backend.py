"""An OpenAI-compatible chat-completions provider (xAI, OpenRouter, any `--upstream`).

`ChatBackend.responses(payload, model, sampling)` sends the Codex payload every
dialect builds, with the client's sampling parameters that travel beside it
(`dialects.sampling`), as one `POST {base}/chat/completions` stream
(`dialects.chat_upstream_request.chat_request`) and hands back its answer as a
Codex Responses stream (`upstream.translated.TranslatedResponse`), so routes
relay or collect it like the Codex backend's.

One call, one attempt: an answer of status 400 or more, or no answer at all,
is raised as `Refused` (status, headers, body) before anything is yielded;
`upstream.routing` decides whether to retry it (backoff) or to pass it on,
through `provider_error`, as the client's error.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from chatmock import jsonbytes
from chatmock.dialects.chat_upstream_request import chat_request
from chatmock.dialects.chat_upstream_stream import ChatStreamDecoder
from chatmock.dialects.responses_encoder import ResponsesEncoder
from chatmock.dialects.sampling import NONE, Sampling
from chatmock.errors import UpstreamError, extract_message
from chatmock.net.client import HTTPClient
from chatmock.net.response import UpstreamResponse
from chatmock.state import exchanges
from chatmock.upstream.providers import Provider
from chatmock.upstream.translated import TranslatedResponse

MAX_ERROR_BODY = 1024 * 1024
Headers = list[tuple[bytes, bytes]]
_TYPES = {401: "authentication_error", 402: "insufficient_quota", 403: "permission_error",
          404: "not_found_error", 429: "rate_limit_error"}


class Refused(Exception):
    """The provider refused the request (status >= 400) or could not be reached (status
    None: connect errors, resets); nothing was streamed."""

    def __init__(self, status: int | None, headers: Headers, body: bytes,
                 message: str = "") -> None:
        super().__init__(message or f"status {status}")
        self.status = status
        self.headers = headers
        self.body = body
        self.message = message


def flavor_of(provider: Provider) -> str:
    """`chat_request`'s flavor: xai, openrouter, or a generic OpenAI-compatible server."""
    return provider.name if provider.name in ("xai", "openrouter") else "openai"


def response_id() -> str:
    return "resp_" + uuid.uuid4().hex


class ChatBackend:
    """See the module docstring."""

    def __init__(self, provider: Provider, http: HTTPClient) -> None:
        self.provider = provider
        self.http = http
        self.url = provider.url("/chat/completions")
        self.headers: Headers = [(b"content-type", b"application/json"),
                                 (b"accept", b"text/event-stream"),
                                 *provider.auth_headers()]

    @asynccontextmanager
    async def responses(self, payload: dict[str, Any], model: str,
                        sampling: Sampling = NONE) -> AsyncIterator[UpstreamResponse]:
        exchanges.note_model(model, payload.get("reasoning"))  # access log
        # No local for the request: this frame lives as long as the stream.
        async with AsyncExitStack() as stack:
            response = await open_stream(stack, self.http, self.url, self.headers, jsonbytes.dumps(
                chat_request(payload, model=model, flavor=flavor_of(self.provider),
                             sampling=sampling.chat_fields())))
            yield TranslatedResponse(response, ChatStreamDecoder(),
                                     ResponsesEncoder(response_id(), model, int(time.time())))


async def open_stream(stack: AsyncExitStack, http: HTTPClient, url: str, headers: Headers,
                      body: bytes) -> UpstreamResponse:
    """One POST whose response (status < 400) is left open on `stack`, or `Refused`."""
    try:
        async with AsyncExitStack() as attempt:
            request = http.request("POST", url, headers, body)
            del body  # held by the client alone while the answer is awaited
            response = await attempt.enter_async_context(request)
            if response.status >= 400:
                error_body = await response.read_all(MAX_ERROR_BODY)
                raise Refused(response.status, response.headers, error_body)
            stack.push_async_exit(attempt.pop_all())
            return response
    except UpstreamError as exc:  # no answer: connect error, reset, timeout
        raise Refused(None, [], b"", exc.message) from None
    raise AssertionError("unreachable")  # mypy: the with block returns or raises


def provider_error(provider: Provider, refused: Refused,
                   retry_after: int | None) -> UpstreamError:
    """The client's error for a refusal that is passed on: the provider's own message
    (wherever its body keeps it), its status for 4xx (a key it rejects says which
    variable holds it), 502 for anything else, `Retry-After` when known."""
    headers = ((b"retry-after", b"%d" % retry_after),) if retry_after is not None else ()
    if refused.status is None:
        return UpstreamError(f"The {provider.name} provider could not be reached: "
                             f"{refused.message}", status=502, headers=headers)
    message = refused.message or _message(refused.body) or f"status {refused.status}"
    status = refused.status
    text = f"The {provider.name} provider refused the request ({status}): {message}"
    if status in (401, 403) and provider.key_env:
        text += f". Check {provider.key_env} in chatmock's environment."
    if status >= 500 or status < 400:
        return UpstreamError(text, status=502, code="upstream_error", headers=headers)
    return UpstreamError(text, status=status, code=_code(refused.body),
                         error_type=_TYPES.get(status, "invalid_request_error"),
                         headers=headers)


def _document(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _message(body: bytes) -> str:
    document = _document(body)
    message = extract_message(document)
    if message:
        return message
    text = body.decode("utf-8", "replace").strip()
    if text.startswith("<"):
        return "an HTML page instead of an API answer"
    return text[:280]


def _code(body: bytes) -> str | None:
    document = _document(body)
    error = document.get("error") if isinstance(document, dict) else None
    code = error.get("code") if isinstance(error, dict) else (
        document.get("code") if isinstance(document, dict) else None)
    return str(code) if isinstance(code, str | int) and not isinstance(code, bool) else None
