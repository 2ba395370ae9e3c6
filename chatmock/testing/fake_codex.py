"""Sans-I/O fake of the ChatGPT Codex backend, for tests and benchmarks.

``FakeCodex.handle`` takes one parsed HTTP request and returns a ``FakeReply``;
an HTTP server (``chatmock.testing.fake_upstream``) does the socket work.

Requests go through the same checks as on the real backend
(``fake_rules``: credentials, the account/client/session headers,
``stream``/``store``, the accepted parameters, models, efforts, tools,
``text.format``, input items; ``fake_replay``: items it cannot find, encrypted
content it did not mint, tool names it refuses); valid ones get a Responses
API event stream whose shape is chosen by ``fake:`` directives in the last
user message (``fake_events``); a structured-output request gets its answer as JSON of
the requested shape (``fake_structured``).  Every reply carries the
``x-codex-*`` rate-limit headers and an ``x-request-id``.

A missing bearer is a 401 (the auth layer's "Missing bearer or basic
authentication in header", answered before anything else is looked at); a
missing ``chatgpt-account-id``, ``originator``, ``user-agent`` or session id
is a 400 naming the header.

Bearer tokens: a JWT whose ``exp`` claim has passed is refused with the
backend's 401 ``token_expired`` (signatures are not checked; non-JWT bearers
pass).  With ``token_check`` (e.g. ``FakeOAuth.access_token_status``) every
bearer must also be one the check accepts: a reason of ``"expired"`` gives
``token_expired``, ``"revoked"`` gives ``token_revoked``, anything else
``invalid_token``, all 401.

Routes: ``POST /backend-api/codex/responses``, ``GET /backend-api/codex/models``,
``GET``/``DELETE /__fake__/requests`` (recorded /responses requests),
``GET /__fake__/streams`` (``StreamCounters``: how many event streams are
open, and how each ended; kept by the server that plays them out),
``/__fake__/accounts`` (several accounts: ``fake_accounts``) and
``GET /health``.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import jwt

from chatmock.testing.fake_accounts import (
    ACCOUNTS_PATH,
    LIMIT_PATH,
    REVOKE_PATH,
    FakeAccounts,
    spent_window,
    stream_limit_frames,
)
from chatmock.testing.fake_events import (
    JSON,
    DirectiveError,
    ResponseSeed,
    Scenario,
    dump_json,
    parse_scenario,
    plan_items,
    sse_chunks,
    tool_result_scenario,
)
from chatmock.testing.fake_failures import error_reply, window_headers
from chatmock.testing.fake_replay import check_items_and_names
from chatmock.testing.fake_rules import (
    INVALID_JSON,
    MODEL_EFFORTS,
    Rejected,
    bad_request,
    check_headers,
    item_type,
    load_json,
    reject,
    validate_payload,
)
from chatmock.testing.fake_structured import structured_answer

RESPONSES_PATH = "/backend-api/codex/responses"
MODELS_PATH = "/backend-api/codex/models"
RECORDS_PATH = "/__fake__/requests"
STREAMS_PATH = "/__fake__/streams"
HEALTH_PATH = "/health"
MODELS_ETAG = b'W/"fake-models-1"'

LISTED_MODELS: tuple[tuple[str, str, str, bool], ...] = (
    ("gpt-5.5", "GPT-5.5", "list", False),
    ("gpt-5.4", "GPT-5.4", "list", True),
    ("gpt-5.4-mini", "GPT-5.4 Mini", "list", False),
    ("gpt-5.6-sol", "GPT-5.6 Sol", "list", True),
    ("gpt-5.3-codex", "GPT-5.3 Codex", "list", False),
    ("gpt-5.2", "GPT-5.2", "list", True),
    ("gpt-5.1-codex-max", "GPT-5.1 Codex Max", "list", False),
    ("gpt-5.1-codex-mini", "GPT-5.1 Codex Mini", "hide", False),
)
"""(slug, display name, visibility, priority tier) served by GET /models."""


@dataclass(frozen=True, slots=True)
class FakeReply:
    """One HTTP response.

    ``chunks``, when set, is a lazy iterator of ``(seconds to sleep before
    writing, bytes to write)`` for a streamed body and ``body`` is unused.
    ``cut`` asks the server to drop the connection after the last chunk
    without ending the chunked body.
    """

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    chunks: Iterator[tuple[float, bytes]] | None = None
    cut: bool = False


def _openai_error(message: str, code: str | None = None) -> JSON:
    return {"error": {"message": message, "type": "invalid_request_error", "code": code}}


@dataclass(slots=True)
class StreamCounters:
    """The event streams played out so far: ``open`` now, and how the others ended:
    ``completed`` (every chunk written; a ``fake:cut`` counts here too) or
    ``abandoned`` (the client, chatmock, went away first)."""

    open: int = 0
    completed: int = 0
    abandoned: int = 0


@dataclass(frozen=True, slots=True)
class FakeRequest:
    """One request to a fake server, as its handlers see it."""

    method: str
    path: str
    query: str
    headers: Mapping[bytes, bytes]
    body: bytes


_Handler = Callable[[FakeRequest], FakeReply]
_Header = tuple[bytes, bytes]


class FakeCodex:
    """The fake backend's state: recorded requests, id and usage counters.

    Ids come from one counter, so a sequence of requests always produces the
    same ids.  Not thread-safe; meant for one event loop.
    """

    def __init__(self, *, record_limit: int = 200,
                 token_check: Callable[[str], str | None] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._token_check = token_check
        self._clock = clock
        self._records: deque[JSON] = deque(maxlen=record_limit)
        self._ids = itertools.count(1)
        self._request_ids = itertools.count(1)
        self.accounts = FakeAccounts(clock)
        self.streams = StreamCounters()
        self._routes: dict[str, dict[str, _Handler]] = {
            RESPONSES_PATH: {"POST": self._responses},
            MODELS_PATH: {"GET": self._models},
            RECORDS_PATH: {"GET": self._list_records, "DELETE": self._clear_records},
            STREAMS_PATH: {"GET": lambda _: self._json(200, dataclasses.asdict(self.streams))},
            HEALTH_PATH: {"GET": lambda _: self._json(200, {"status": "ok"})},
            ACCOUNTS_PATH: {"GET": self._accounts, "DELETE": self._accounts},
            LIMIT_PATH: {"POST": self._accounts},
            REVOKE_PATH: {"POST": self._accounts},
        }

    @property
    def requests(self) -> list[JSON]:
        """The recorded /responses requests, oldest first."""
        return list(self._records)

    def handle(
        self, method: str, target: str, headers: Mapping[bytes, bytes], body: bytes
    ) -> FakeReply:
        """Answer one request; ``target`` is the raw path plus optional query."""
        path, _, query = target.partition("?")
        methods = self._routes.get(path)
        if methods is None:
            return self._json(404, {"detail": "Not Found"})
        handler = methods.get(method.upper())
        if handler is None:
            allow = (b"allow", ", ".join(methods).encode())
            return self._json(405, {"detail": "Method Not Allowed"}, allow)
        return handler(FakeRequest(method.upper(), path, query, headers, body))

    def _next_id(self) -> int:
        return next(self._ids)

    def _headers(self, content_type: bytes, *extra: _Header, account: str = "") -> list[_Header]:
        """Every reply's headers; usage headers of its own (a spent window) win."""
        request_id = f"00000000-0000-4000-8000-{next(self._request_ids):012x}"
        own_limits = any(name.startswith(b"x-codex-") for name, _ in extra)
        return [
            (b"content-type", content_type),
            *extra,
            (b"x-request-id", request_id.encode()),
            *([] if own_limits else rate_limit_headers(self.accounts.streams[account])),
        ]

    def _json(self, status: int, value: object, *extra: tuple[bytes, bytes]) -> FakeReply:
        return FakeReply(status, self._headers(b"application/json", *extra), dump_json(value))

    def _error(self, exc: Rejected) -> FakeReply:
        (_, content_type), *extra = exc.headers
        return FakeReply(exc.status, self._headers(content_type, *extra), exc.body)

    def _check_token(self, headers: Mapping[bytes, bytes]) -> None:
        """Refuse an expired JWT bearer, and whatever ``token_check`` refuses."""
        token = bearer_token(headers)
        reason = "expired" if jwt_expired(token, self._clock()) else None
        if reason is None and self._token_check is not None:
            reason = self._token_check(token)
        if reason is not None:
            raise token_rejected(reason)

    def _responses(self, request: FakeRequest) -> FakeReply:
        payload = load_json(request.body)
        self._record(request, payload)
        try:
            check_bearer(request.headers)
            self._check_token(request.headers)
            account = self.accounts.check(request.headers, bearer_token(request.headers))
            check_headers(request.headers)
            validate_payload(payload)
            check_items_and_names(payload, account)
            limit = self.accounts.stream_limit(account)
            if limit is not None:
                return self._limit_stream(payload, account, *limit)
            scenario = select_scenario(payload["input"])
            scenario.account = account
            if scenario.error == 401:
                raise token_rejected("expired")
            if scenario.error is not None:
                raise error_reply(scenario.error, scenario.usage_limit, self._clock())
            check_scenario_tools(scenario, payload)
            structured = structured_answer(payload.get("text"), scenario.answer)
            if structured is not None:
                scenario.answer = structured
        except Rejected as exc:
            return self._error(exc)
        return self._stream(payload, scenario, len(request.body))

    def _stream(self, payload: JSON, scenario: Scenario, body_size: int) -> FakeReply:
        seed = ResponseSeed(
            response_id=f"resp_{self._next_id():016x}",
            created_at=int(time.time()),
            model=payload["model"],
            input_tokens=max(1, body_size // 4),
            echo=_echo(payload),
            items=plan_items(scenario, self._next_id),
        )
        headers = self._headers(b"text/event-stream", account=scenario.account)
        self.accounts.streams[scenario.account] += 1
        cut = scenario.ending == "cut"
        return FakeReply(200, headers, chunks=sse_chunks(scenario, seed), cut=cut)

    def _limit_stream(self, payload: JSON, account: str, shape: str, seconds: int) -> FakeReply:
        """A usage limit said inside a 200 stream (``FakeAccounts.in_stream``)."""
        response = {"id": f"resp_{self._next_id():016x}", "object": "response",
                    "created_at": int(time.time()), "status": "in_progress", "error": None,
                    "model": payload["model"], "output": []}
        frames = stream_limit_frames(shape, seconds, response)
        headers = self._headers(b"text/event-stream", *spent_window(seconds), account=account)
        return FakeReply(200, headers, chunks=((0.0, data) for data in frames))

    def _record(self, request: FakeRequest, payload: object) -> None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in request.headers.items()}
        body = None if payload is INVALID_JSON else payload
        self._records.append({"path": request.path, "headers": headers, "body": body})

    def _accounts(self, request: FakeRequest) -> FakeReply:
        return self._json(*self.accounts.control(request.path, request.method, request.body))

    def _list_records(self, _: FakeRequest) -> FakeReply:
        return self._json(200, list(self._records))

    def _clear_records(self, _: FakeRequest) -> FakeReply:
        self._records.clear()
        return FakeReply(204, self._headers(b"application/json"))

    def _models(self, request: FakeRequest) -> FakeReply:
        try:
            check_bearer(request.headers)
            self._check_token(request.headers)
        except Rejected as exc:
            return self._error(exc)
        etag = (b"etag", MODELS_ETAG)
        if request.headers.get(b"if-none-match") == MODELS_ETAG:
            return FakeReply(304, self._headers(b"application/json", etag))
        return self._json(200, {"models": [_model_entry(*m) for m in LISTED_MODELS]}, etag)


def rate_limit_headers(streams: int) -> list[tuple[bytes, bytes]]:
    """``x-codex-*`` usage headers; used-percent creeps up with each stream."""
    primary = min(100.0, 12.0 + 0.5 * streams)
    secondary = min(100.0, 4.0 + 0.1 * streams)
    return window_headers((round(primary, 1), 300, 7200), (round(secondary, 1), 10080, 345600))


def _model_entry(slug: str, display: str, visibility: str, priority_tier: bool) -> JSON:
    levels = [
        {"effort": e, "description": f"{e.capitalize()} reasoning effort"}
        for e in MODEL_EFFORTS[slug]
    ]
    return {
        "slug": slug,
        "display_name": display,
        "description": f"{display} (fake catalog)",
        "default_reasoning_level": "medium",
        "supported_reasoning_levels": levels,
        "visibility": visibility,
        "supported_in_api": True,
        "priority": [m[0] for m in LISTED_MODELS].index(slug) + 1,
        "service_tiers": [{"id": "priority"}] if priority_tier else [],
    }


def _echo(payload: JSON) -> JSON:
    """Request fields that the response object repeats."""
    reasoning = payload.get("reasoning") or {}
    effort, summary = reasoning.get("effort") or "medium", reasoning.get("summary")
    return {
        "instructions": payload.get("instructions"),
        "parallel_tool_calls": payload.get("parallel_tool_calls", True),
        "prompt_cache_key": payload.get("prompt_cache_key"),
        "reasoning": {"effort": effort, "summary": summary},
        "service_tier": payload.get("service_tier", "auto"),
        "store": False,
        "tool_choice": payload.get("tool_choice", "auto"),
        "tools": payload.get("tools", []),
    }


# --- authentication ------------------------------------------------------------------


def check_bearer(headers: Mapping[bytes, bytes]) -> None:
    scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
    if scheme.lower() != b"bearer" or not token.strip():
        message = "Missing bearer or basic authentication in header"
        raise reject(401, _openai_error(message))


def bearer_token(headers: Mapping[bytes, bytes]) -> str:
    _, _, token = headers.get(b"authorization", b"").partition(b" ")
    return token.strip().decode("latin-1")


def jwt_expired(token: str, now: float) -> bool:
    """Whether ``token`` is a JWT whose ``exp`` claim is at or before ``now``."""
    if token.count(".") != 2:
        return False
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return False
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return isinstance(exp, int | float) and not isinstance(exp, bool) and exp <= now


_TOKEN_REJECTIONS = {
    "expired": ("Your authentication token has expired. Please try signing in again.",
                "token_expired"),
    "revoked": ("Your authentication token has been revoked. Please try signing in again.",
                "token_revoked"),
}


def token_rejected(reason: str) -> Rejected:
    """The backend's 401 for a bearer that is expired, revoked or unknown."""
    message, code = _TOKEN_REJECTIONS.get(reason, (
        "Could not validate your authentication token. Please try signing in again.",
        "invalid_token"))
    return reject(401, _openai_error(message, code))


# --- scenario selection ---------------------------------------------------------------


def select_scenario(items: list[JSON]) -> Scenario:
    """A tool result answers the tool; otherwise the last user message decides."""
    last = items[-1] if items else {}
    if last.get("type") in ("function_call_output", "custom_tool_call_output"):
        return tool_result_scenario(last["call_id"], last["output"])
    try:
        return parse_scenario(last_user_text(items))
    except DirectiveError as exc:
        raise bad_request(f"Invalid fake directive: {exc}") from None


def check_scenario_tools(scenario: Scenario, payload: JSON) -> None:
    """The model only calls a custom tool the request defines as one (directive error)."""
    declared = {tool.get("name") for tool in payload.get("tools", [])
                if tool.get("type") == "custom"}
    for name in scenario.custom_tools:
        if name not in declared:
            raise bad_request(f"Invalid fake directive: fake:custom_tool={name}: the request "
                              "defines no custom tool of that name")


def last_user_text(items: list[JSON]) -> str:
    for item in reversed(items):
        if item_type(item) == "message" and item.get("role") == "user":
            content = item["content"]
            if isinstance(content, str):
                return content
            texts = (p["text"] for p in content if p.get("type") == "input_text")
            return "\n".join(texts)
    return ""
