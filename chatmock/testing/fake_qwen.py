"""Sans-I/O fake of the chat.qwen.ai web API (providers.md §3), for tests.

`FakeQwen.handle` answers one parsed request; `python -m chatmock.testing.fake_qwen
--port 0` serves it (see `fake_server`). The stream is described in
`fake_qwen_events`. Rules, in the order they are checked:

1. Browser check (the Aliyun WAF): a `User-Agent` that is not a browser's
   (`Mozilla/`) or a missing `bx-v` header gets the WAF's HTML challenge page
   (status 200, `text/html`, body containing `requestInfo`) on every `/api/`
   path.
2. Web-app headers: `source: web` and a `version` header are required on
   writes, else `Bad_Request`.
3. Credentials: `Authorization: Bearer <jwt>` must be this fake's token (a JWT,
   `QWEN_TOKEN` by default) and not expired, and the `Cookie` header must carry
   `token=<the same jwt>`; else `Unauthorized`.
4. Errors that are not in the stream are JSON, usually with HTTP 200:
   `{"success": false, "request_id": ..., "data": {"code": "Bad_Request" |
   "Not_Found" | "Unauthorized", "details": ...}}`, the real status in the
   `x-actual-status-code` header.

Routes: `GET /api/models` and `/api/v2/models/` (`{"success": true, "data":
{"data": [...]}}`, some `info.is_active: false`); `GET /api/v1/auths/`;
`POST /api/v2/chats/new` (needs an active model in `models`);
`POST /api/v2/chat/completions?chat_id=<id>`; `POST
/api/v2/chat/completions/stop` (`{chat_id, response_id}`); `GET
/api/v2/chats/<id>`; `GET`/`DELETE /__fake__/requests` (every recorded
`POST`: path, query, headers, body); `GET /health`.

A completion must name a chat of this account (else `Not_Found`), ask for
`stream: true`, name an active model, and carry exactly one `user` message
whose content is a string. `parent_id` must be null or a response of this chat
(else `Bad_Request` "The parent_id ... does not exist"), and only one
completion may run per chat at a time (else `Bad_Request` "The chat is in
progress"). A response counts as part of the chat from `response.created` on.
Directives: `fake:` words in the message, as on the Codex fake; `fake:error=`
400/401/404 answer the JSON error of that status, 429/500/503 an in-stream
error. `fake:tool`, `fake:websearch`, `fake:commentary` and `fake:incomplete`
have no counterpart here and are refused.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl

import jwt
import trio

from chatmock.testing.fake_codex import FakeReply, FakeRequest, jwt_expired
from chatmock.testing.fake_events import JSON, DirectiveError, Scenario, dump_json, parse_scenario
from chatmock.testing.fake_qwen_events import STREAM_ERRORS, QwenAnswer, QwenSeed
from chatmock.testing.fake_rules import load_json
from chatmock.testing.fake_server import (
    RECORDS_PATH,
    FakeApp,
    Recording,
    RequestLog,
    serve_forever,
)

QWEN_TOKEN = jwt.encode({"id": "user-fake-0001", "exp": 4102444800},
                        "fake-qwen-signing-key-of-32-bytes", algorithm="HS256")
"""The default token: a JWT that expires in 2100."""
MODELS: tuple[tuple[str, bool, bool], ...] = (
    ("qwen3.8-max", True, True), ("qwen3.7-plus", True, True), ("qwen3.5-plus", True, False),
    ("qwen3-max", False, True))
"""(id, is_active, vision) served by /api/models."""
_CHAT_JSON_ERRORS = {400: "Bad_Request", 401: "Unauthorized", 404: "Not_Found"}
_REFUSED = ("tool", "websearch", "commentary", "incomplete")
WAF_PAGE = (b'<!doctype html><html><head><meta charset="utf-8"><title>Verification</title>'
            b'</head><body><script>var requestInfo = {"code":"200","msg":"","traceid":'
            b'"fake0000000000000000"};</script><div id="nocaptcha"></div></body></html>')


class QwenRefused(Exception):
    """A request the fake refuses with a JSON error (or the WAF page when `waf`)."""

    def __init__(self, code: str, details: str, status: int, waf: bool = False) -> None:
        super().__init__(code, details)
        self.code, self.details, self.status, self.waf = code, details, status, waf


def bad_request(details: str) -> QwenRefused:
    return QwenRefused("Bad_Request", details, 400)


@dataclass(slots=True)
class Chat:
    chat_id: str
    model: str
    messages: list[JSON] = field(default_factory=list)
    responses: set[str] = field(default_factory=set)
    running: str | None = None
    stop_requested: bool = False


_Handler = Callable[[FakeRequest], FakeReply]


class FakeQwen(Recording):
    """The fake's state: token, chats, recorded requests, an id counter.

    Not thread-safe; meant for one event loop."""

    def __init__(self, *, token: str = QWEN_TOKEN, done_marker: bool = False,
                 clock: Callable[[], float] = time.time, record_limit: int = 200) -> None:
        self.token = token
        self.done_marker = done_marker
        self._clock = clock
        self.chats: dict[str, Chat] = {}
        self._log = RequestLog(record_limit)
        self._ids = itertools.count(1)
        self._routes: dict[str, dict[str, _Handler]] = {
            "/api/models": {"GET": self._models},
            "/api/v2/models/": {"GET": self._models},
            "/api/v1/auths/": {"GET": self._auths},
            "/api/v2/chats/new": {"POST": self._new_chat},
            "/api/v2/chat/completions": {"POST": self._completion},
            "/api/v2/chat/completions/stop": {"POST": self._stop},
            RECORDS_PATH: self._log.routes(),
            "/health": {"GET": lambda _: self._json(200, {"status": "ok"})},
        }

    def handle(self, method: str, target: str, headers: Mapping[bytes, bytes],
               body: bytes) -> FakeReply:
        path, _, query = target.partition("?")
        request = FakeRequest(method.upper(), path, query, headers, body)
        if request.method == "POST":
            self._log.add(request, load_json(body))
        methods = self._routes.get(path)
        if methods is None and path.startswith("/api/v2/chats/"):
            methods = {"GET": self._chat_history}
        handler = (methods or {}).get(request.method)
        try:
            if handler is None:
                raise QwenRefused("Not_Found", f"{method} {path} not found", 404)
            if path.startswith("/api/"):
                self._check_request(request)
            return handler(request)
        except QwenRefused as exc:
            return self._refused(exc)

    # -- replies -----------------------------------------------------------------------

    def _json(self, status: int, value: object, *extra: tuple[bytes, bytes]) -> FakeReply:
        return FakeReply(status, [(b"content-type", b"application/json"), *extra],
                         dump_json(value))

    def _ok(self, data: object) -> FakeReply:
        return self._json(200, {"success": True, "request_id": self._uuid(), "data": data})

    def _refused(self, exc: QwenRefused) -> FakeReply:
        if exc.waf:
            return FakeReply(200, [(b"content-type", b"text/html; charset=utf-8")], WAF_PAGE)
        body = {"success": False, "request_id": self._uuid(),
                "data": {"code": exc.code, "details": exc.details}}
        return self._json(200, body, (b"x-actual-status-code", str(exc.status).encode()))

    def _uuid(self) -> str:
        number = next(self._ids)
        return f"{number:08x}-0000-4000-8000-{number:012x}"

    # -- checks ------------------------------------------------------------------------

    def _check_request(self, request: FakeRequest) -> None:
        headers = request.headers
        if not headers.get(b"user-agent", b"").startswith(b"Mozilla/") \
                or not headers.get(b"bx-v"):
            raise QwenRefused("WAF", "blocked", 200, waf=True)
        if request.method == "POST" and (headers.get(b"source") != b"web"
                                         or not headers.get(b"version")):
            raise bad_request("Missing the web app's source or version header")
        self._check_token(headers)

    def _check_token(self, headers: Mapping[bytes, bytes]) -> None:
        scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
        bearer = token.strip().decode("latin-1")
        if scheme.lower() != b"bearer" or bearer != self.token:
            raise QwenRefused("Unauthorized", "You are not authorized: invalid token", 401)
        if jwt_expired(bearer, self._clock()):
            raise QwenRefused("Unauthorized", "Your token has expired, please sign in again",
                              401)
        try:
            cookie = SimpleCookie(headers.get(b"cookie", b"").decode("latin-1"))
        except CookieError:
            cookie = SimpleCookie()
        if "token" not in cookie or cookie["token"].value != bearer:
            raise QwenRefused("Unauthorized", "You are not authorized: the token cookie is "
                              "missing or does not match", 401)

    def _model(self, name: object) -> str:
        if not any(m == name and active for m, active, _ in MODELS):
            raise bad_request(f"Model {name} is not available")
        assert isinstance(name, str)
        return name

    # -- routes ------------------------------------------------------------------------

    def _models(self, _: FakeRequest) -> FakeReply:
        return self._ok({"data": [_model_entry(*m) for m in MODELS]})

    def _auths(self, _: FakeRequest) -> FakeReply:
        return self._json(200, {"id": "user-fake-0001", "email": "fake@example.com",
                                "name": "Fake User", "role": "user", "token": self.token,
                                "token_type": "Bearer"})

    def _new_chat(self, request: FakeRequest) -> FakeReply:
        payload = load_json(request.body)
        if not isinstance(payload, dict) or not isinstance(payload.get("models"), list) \
                or not payload["models"]:
            raise bad_request("models is required")
        model = self._model(payload["models"][0])
        chat = Chat(self._uuid(), model)
        self.chats[chat.chat_id] = chat
        return self._ok({"id": chat.chat_id, "title": payload.get("title") or "New Chat",
                         "chat_type": payload.get("chat_type", "t2t"), "models": [model]})

    def _chat_history(self, request: FakeRequest) -> FakeReply:
        chat = self.chats.get(request.path.removeprefix("/api/v2/chats/"))
        if chat is None:
            raise QwenRefused("Not_Found", "Chat not found", 404)
        return self._ok({"id": chat.chat_id, "models": [chat.model],
                         "chat": {"messages": chat.messages}})

    def _stop(self, request: FakeRequest) -> FakeReply:
        payload = load_json(request.body)
        chat_id = payload.get("chat_id") if isinstance(payload, dict) else None
        chat = self.chats.get(chat_id) if isinstance(chat_id, str) else None
        if chat is None:
            raise QwenRefused("Not_Found", "Chat not found", 404)
        if chat.running is not None and chat.running == payload.get("response_id"):
            chat.stop_requested = True
        return self._ok({"status": "stopped"})

    def _completion(self, request: FakeRequest) -> FakeReply:
        chat = self.chats.get(dict(parse_qsl(request.query)).get("chat_id", ""))
        if chat is None:
            raise QwenRefused("Not_Found", "Chat not found", 404)
        payload = load_json(request.body)
        if not isinstance(payload, dict):
            raise bad_request("Invalid JSON body")
        text = _check_completion(payload, chat)
        self._model(payload.get("model"))
        parent = payload.get("parent_id") or payload.get("parentId") or None
        if parent is not None and parent not in chat.responses:
            raise bad_request(f"The parent_id {parent} does not exist")
        if chat.running is not None:
            raise bad_request("The chat is in progress")
        scenario = _scenario(text)
        if scenario.error in _CHAT_JSON_ERRORS:
            raise QwenRefused(_CHAT_JSON_ERRORS[scenario.error], "Fake error", scenario.error)
        return self._stream(chat, payload, text, parent, scenario, len(request.body))

    def _stream(self, chat: Chat, payload: JSON, text: str, parent: str | None,
                scenario: Scenario, size: int) -> FakeReply:
        message_id, response_id = self._uuid(), self._uuid()
        features = _features(payload)
        thinking = (features.get("thinking_format") or "detail") \
            if features.get("thinking_enabled") is True else None
        seed = QwenSeed(chat.chat_id, message_id, response_id, int(self._clock()),
                        max(1, size // 4), features.get("output_schema") == "phase",
                        payload.get("incremental_output") is True, thinking, self.done_marker)
        if scenario.ending != "empty":
            chat.responses.add(response_id)
        chat.running, chat.stop_requested = response_id, False
        chat.messages.append({"id": message_id, "parentId": parent, "role": "user",
                              "content": text})
        answer = QwenAnswer(scenario, seed, lambda: chat.stop_requested,
                            lambda: self._ended(chat, answer, message_id, response_id))
        headers = [(b"content-type", b"text/event-stream;charset=UTF-8"),
                   (b"x-accel-buffering", b"no")]
        return FakeReply(200, headers, chunks=answer.chunks(), cut=scenario.ending == "cut")

    def _ended(self, chat: Chat, answer: QwenAnswer, message_id: str, response_id: str) -> None:
        if chat.running == response_id:
            chat.running = None
        chat.messages.append({"id": response_id, "parentId": message_id, "role": "assistant",
                              "content": answer.text})


def _check_completion(payload: JSON, chat: Chat) -> str:
    """The new user message's text, or Bad_Request."""
    if payload.get("stream") is not True:
        raise bad_request("stream must be true: the web API only streams")
    if payload.get("chat_id", chat.chat_id) != chat.chat_id:
        raise bad_request("chat_id in the body does not match the query")
    messages = payload.get("messages")
    if not isinstance(messages, list) or len(messages) != 1:
        raise bad_request("messages must hold exactly one new message")
    message = messages[0]
    if not isinstance(message, dict) or message.get("role") != "user" \
            or not isinstance(message.get("content"), str):
        raise bad_request("the message must have role user and string content")
    return str(message["content"])


def _features(payload: JSON) -> JSON:
    feature = payload["messages"][0].get("feature_config")
    return feature if isinstance(feature, dict) else {}


def _scenario(text: str) -> Scenario:
    try:
        for word in text.split():
            if word.startswith("fake:") and word[5:].partition("=")[0] in _REFUSED:
                raise DirectiveError(f"{word}: the Qwen web API has no such output")
        scenario = parse_scenario(text)
    except DirectiveError as exc:
        raise bad_request(f"Invalid fake directive: {exc}") from None
    if scenario.error is not None and scenario.error not in (*_CHAT_JSON_ERRORS,
                                                             *STREAM_ERRORS):
        raise bad_request(f"Invalid fake directive: fake:error={scenario.error} has no "
                          "Qwen form (400, 401, 404, 429, 500, 503)")
    return scenario


def _model_entry(model_id: str, active: bool, vision: bool) -> JSON:
    capabilities = {"vision": vision, "document": True, "thinking": True, "search": True,
                    "citations": True}
    meta = {"capabilities": capabilities, "max_context_length": 262144,
            "max_thinking_generation_length": 81920, "max_summary_generation_length": 32768,
            "chat_type": ["t2t", "search", "t2i"], "thinking_format": ["summary", "detail"],
            "abilities": {"thinking": 1, "vision": int(vision)}}
    return {"id": model_id, "name": model_id.replace("qwen", "Qwen"), "object": "model",
            "owned_by": "qwen", "info": {"id": model_id, "meta": meta, "is_active": active}}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chatmock.testing.fake_qwen",
                                     description="Fake chat.qwen.ai web API for tests.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8767)
    parser.add_argument("--token", default=QWEN_TOKEN, help="the JWT to accept")
    parser.add_argument("--done-marker", action="store_true",
                        help="end streams with data: [DONE] (some captures do)")
    args = parser.parse_args(argv)
    app = FakeApp(FakeQwen(token=args.token, done_marker=args.done_marker))
    trio.run(serve_forever, app, args.host, args.port, "fake-qwen")
    return 0


if __name__ == "__main__":
    sys.exit(main())
