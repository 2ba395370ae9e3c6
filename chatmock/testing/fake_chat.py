"""Sans-I/O fake of an OpenAI-compatible chat-completions server, one flavor at a time.

`FakeChat(flavor).handle` takes one parsed HTTP request and returns a
`FakeReply`; `python -m chatmock.testing.fake_chat --flavor xai --port 0`
serves it over chatmock's own HTTP server (see `fake_server`). Flavors and
their quirks (xAI, OpenRouter, vLLM, llama.cpp, Ollama's `/v1`, a plain
OpenAI-compatible server) are described in `fake_chat_flavors`; what each
refuses in `fake_chat_rules`; how answers are framed in `fake_chat_events`.

Routes, under the flavor's prefix (`/v1`, OpenRouter `/api/v1`):

* `POST <prefix>/chat/completions`: checks the key, then the body; answers an
  SSE stream (`stream: true`) or one `chat.completion`;
* `GET <prefix>/models` (no key needed on OpenRouter, which also filters by
  `?supported_parameters=`), `GET <prefix>/models/<id>`; xAI also
  `GET /v1/language-models`;
* `GET`/`DELETE /__fake__/requests` (recorded chat requests: path, headers,
  body), `GET`/`DELETE /__fake__/in-flight` (how many it answers at once, and the
  most so far: `fake_server.CountingApp`) and `GET /health`.

Keys: the flavor's `api_key` (xAI and OpenRouter have fixed fake keys,
`fake_chat_flavors.XAI_KEY` / `OPENROUTER_KEY`), replaced by the `api_key`
argument; None accepts any. Ollama never checks.

Scenarios come from `fake:` words in the last user message, exactly as on the
Codex fake (`fake_events.parse_scenario`: `deltas`, `burst`, `delay_ms`,
`reasoning`, `tool`, `args`, `error`, the endings); a last message of role
`tool` is answered with `Tool <id> returned: <output>`. Added here:
`fake:retry_after=<seconds>` puts a `Retry-After` header on a `fake:error`
answer (and, on OpenRouter's 429, into `metadata.retry_after_seconds`, which
is 7 otherwise). `fake:websearch` and `fake:commentary` have no chat
counterpart and are refused. `fake:error=402` is OpenRouter's "insufficient
credits", `fake:error=429` its provider rate limit.
"""

from __future__ import annotations

import argparse
import itertools
import re
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from urllib.parse import parse_qsl

import trio

from chatmock.testing.fake_chat_events import ChatAnswer, ChatSeed, response_format_text
from chatmock.testing.fake_chat_flavors import (
    FLAVORS,
    Flavor,
    models_list,
    openrouter_filter,
    xai_language_models,
)
from chatmock.testing.fake_chat_rules import refuse, validate_chat
from chatmock.testing.fake_codex import FakeReply, FakeRequest
from chatmock.testing.fake_events import (
    JSON,
    DirectiveError,
    Scenario,
    dump_json,
    parse_scenario,
    tool_result_scenario,
)
from chatmock.testing.fake_items import ItemPlan
from chatmock.testing.fake_rules import Rejected, load_json
from chatmock.testing.fake_server import (
    RECORDS_PATH,
    CountingApp,
    Recording,
    RequestLog,
    serve_forever,
)
from chatmock.testing.fake_structured import structured_answer

_Handler = Callable[[FakeRequest], FakeReply]
_NOT_ON_CHAT = ("fake:websearch", "fake:commentary")
_RETRY_AFTER = re.compile(r"[ \t]*(?<!\S)fake:retry_after=\S*")


class FakeChat(Recording):
    """The fake server's state: flavor, key, recorded requests, an id counter.

    Not thread-safe; meant for one event loop."""

    def __init__(self, flavor: Flavor | str = "openai", *, api_key: str | None = "",
                 record_limit: int = 200) -> None:
        self.flavor = FLAVORS[flavor] if isinstance(flavor, str) else flavor
        self.api_key = self.flavor.api_key if api_key == "" else api_key
        self._log = RequestLog(record_limit)
        self._ids = itertools.count(1)
        prefix = self.flavor.prefix
        self._routes: dict[str, dict[str, _Handler]] = {
            f"{prefix}/chat/completions": {"POST": self._chat},
            f"{prefix}/models": {"GET": self._models},
            RECORDS_PATH: self._log.routes(),
            "/health": {"GET": lambda _: self._json(200, {"status": "ok"})},
        }
        if self.flavor.name == "xai":
            self._routes["/v1/language-models"] = {"GET": self._language_models}

    def handle(self, method: str, target: str, headers: Mapping[bytes, bytes],
               body: bytes) -> FakeReply:
        """Answer one request; `target` is the raw path plus optional query."""
        path, _, query = target.partition("?")
        request = FakeRequest(method.upper(), path, query, headers, body)
        methods = self._routes.get(path)
        if methods is None and path.startswith(f"{self.flavor.prefix}/models/"):
            methods = {"GET": self._model}
        if methods is None:
            return self._error(refuse(self.flavor, 404, f"Unknown URL {path}"))
        handler = methods.get(request.method)
        if handler is None:
            return self._error(refuse(self.flavor, 405, f"Method {method} not allowed"))
        return handler(request)

    # -- replies -----------------------------------------------------------------------

    def _headers(self, content_type: bytes, *extra: tuple[bytes, bytes]) -> list[tuple[bytes,
                                                                                       bytes]]:
        headers = [(b"content-type", content_type), *extra]
        if self.flavor.name == "openrouter":
            headers.append((b"x-generation-id", b"gen-fake-%d" % next(self._ids)))
        return headers

    def _json(self, status: int, value: object) -> FakeReply:
        return FakeReply(status, self._headers(b"application/json"), dump_json(value))

    def _error(self, exc: Rejected) -> FakeReply:
        (_, content_type), *extra = exc.headers
        return FakeReply(exc.status, self._headers(content_type, *extra), exc.body)

    # -- authentication ----------------------------------------------------------------

    def _check_key(self, headers: Mapping[bytes, bytes]) -> None:
        rejection = self._key_rejection(headers)
        if rejection is not None:
            raise rejection

    def _key_rejection(self, headers: Mapping[bytes, bytes]) -> Rejected | None:
        if not self.flavor.checks_key or self.api_key is None:
            return None
        scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
        key = token.strip().decode("latin-1")
        if scheme.lower() != b"bearer" or not key:
            message = {"openrouter": "No auth credentials found",
                       "xai": "Missing or malformed Authorization header: expected "
                              "'Bearer <api key>'"}.get(self.flavor.name, "Invalid API Key")
            return refuse(self.flavor, 401, message)
        if key == self.api_key:
            return None
        masked = f"{key[:2]}***{key[-2:]}" if len(key) > 4 else "***"
        message = {"openrouter": "User not found.",
                   "xai": f"Incorrect API key provided: {masked}. You can obtain an API "
                          "key from https://console.x.ai."}.get(self.flavor.name,
                                                                 "Invalid API Key")
        return refuse(self.flavor, self.flavor.wrong_key_status, message)

    # -- chat --------------------------------------------------------------------------

    def _chat(self, request: FakeRequest) -> FakeReply:
        payload = load_json(request.body)
        self._log.add(request, payload)
        try:
            self._check_content_type(request)
            self._check_key(request.headers)
            model = validate_chat(self.flavor, payload)
            scenario, retry_after = self._scenario(payload["messages"])
            if scenario.error is not None:
                raise self._chosen_error(scenario.error, retry_after)
        except Rejected as exc:
            return self._error(exc)
        structured = structured_answer(response_format_text(payload.get("response_format")),
                                       scenario.answer)
        if structured is not None:
            scenario.answer = structured
        seed = ChatSeed(
            completion_id=f"chatcmpl-fake{next(self._ids):08d}", created=int(time.time()),
            model=model, prompt_tokens=max(1, len(request.body) // 4),
            calls=self._calls(scenario), include_usage=_include_usage(payload),
            show_reasoning=model.reasoning_text and not _excluded(payload))
        answer = ChatAnswer(self.flavor, scenario, seed)
        if payload.get("stream") is True:
            return FakeReply(200, self._headers(b"text/event-stream"), chunks=answer.chunks(),
                             cut=scenario.ending == "cut")
        return self._whole(answer, scenario)

    def _whole(self, answer: ChatAnswer, scenario: Scenario) -> FakeReply:
        ending = scenario.ending
        if ending == "cut":
            chunks: Iterator[tuple[float, bytes]] = iter([(0.0, b'{"id":"chatcmpl-')])
            return FakeReply(200, self._headers(b"application/json"), chunks=chunks, cut=True)
        if ending in ("fail", "error_event"):
            status = 502 if ending == "fail" else 429
            return self._error(refuse(self.flavor, status, "The provider failed this "
                                      "response (fake)."))
        return self._json(200, answer.completion())

    def _check_content_type(self, request: FakeRequest) -> None:
        if not self.flavor.json_content_type:
            return
        content_type = request.headers.get(b"content-type", b"")
        if not request.body or not content_type.lower().startswith(b"application/json"):
            raise refuse(self.flavor, 415, "Expected request with `Content-Type: "
                         "application/json`")

    def _scenario(self, messages: list[JSON]) -> tuple[Scenario, int | None]:
        last = messages[-1]
        if last["role"] == "tool":
            return tool_result_scenario(last["tool_call_id"], _text(last.get("content"))), None
        text = next((_text(m.get("content")) for m in reversed(messages)
                     if m["role"] == "user"), "")
        try:
            return _parse_directives(text)
        except DirectiveError as exc:
            raise refuse(self.flavor, 400, f"Invalid fake directive: {exc}") from None

    def _calls(self, scenario: Scenario) -> tuple[ItemPlan, ...]:
        calls = []
        for index, name in enumerate(scenario.tools):
            number = next(self._ids)
            args = scenario.args[index] if index < len(scenario.args) else "{}"
            calls.append(ItemPlan("function_call", f"fc_{number}", f"call_{number:08d}",
                                  name, args))
        return tuple(calls)

    def _chosen_error(self, status: int, retry_after: int | None) -> Rejected:
        headers = [(b"retry-after", b"%d" % retry_after)] if retry_after is not None else []
        name = self.flavor.name
        if status == 401:
            rejection = self._key_rejection({b"authorization": b"Bearer wrong-key"})
            if rejection is not None:
                return rejection
        if status == 402 and name == "openrouter":
            return refuse(self.flavor, 402, "Insufficient credits. Add more using "
                          "https://openrouter.ai/settings/credits", None, *headers)
        if status == 429 and name == "openrouter":
            metadata = {"provider_name": "Fake Provider", "is_byok": False,
                        "raw": "fake/model is temporarily rate-limited upstream. Please retry "
                               "shortly.",
                        "retry_after_seconds": 7 if retry_after is None else retry_after}
            return refuse(self.flavor, 429, "Provider returned error", metadata, *headers)
        message = ("Rate limit exceeded (fake)." if status == 429 else
                   "Upstream overloaded (fake)." if status >= 500 else f"Fake error {status}")
        return refuse(self.flavor, status, message, None, *headers)

    # -- models ------------------------------------------------------------------------

    def _models(self, request: FakeRequest) -> FakeReply:
        try:
            if self.flavor.name != "openrouter":
                self._check_key(request.headers)
        except Rejected as exc:
            return self._error(exc)
        listed = models_list(self.flavor)
        if self.flavor.name == "openrouter":
            listed["data"] = openrouter_filter(listed["data"], dict(parse_qsl(request.query)))
        return self._json(200, listed)

    def _model(self, request: FakeRequest) -> FakeReply:
        name = request.path.removeprefix(f"{self.flavor.prefix}/models/")
        try:
            self._check_key(request.headers)
            found = [m for m in models_list(self.flavor)["data"] if m["id"] == name]
            if not found:
                raise refuse(self.flavor, 404, f"The model {name} does not exist.")
        except Rejected as exc:
            return self._error(exc)
        return self._json(200, found[0])

    def _language_models(self, request: FakeRequest) -> FakeReply:
        try:
            self._check_key(request.headers)
        except Rejected as exc:
            return self._error(exc)
        return self._json(200, xai_language_models(self.flavor))


def _parse_directives(text: str) -> tuple[Scenario, int | None]:
    """The Codex fake's directives, plus `fake:retry_after=<seconds>` (taken out first, so
    that the answer text is the Codex fake's)."""
    retry_after = None
    for word in text.split():
        if word.startswith("fake:retry_after="):
            value = word.removeprefix("fake:retry_after=")
            if not (value.isascii() and value.isdigit()):
                raise DirectiveError(f"{word}: not a whole number: {value!r}")
            retry_after = int(value)
        elif word.startswith(_NOT_ON_CHAT):
            raise DirectiveError(f"{word}: chat completions have no such output")
    return parse_scenario(_RETRY_AFTER.sub("", text)), retry_after


def _text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content
                         if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _include_usage(payload: JSON) -> bool:
    options = payload.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _excluded(payload: JSON) -> bool:
    """OpenRouter's `reasoning.exclude` (or `enabled: false`) hides the reasoning text."""
    reasoning = payload.get("reasoning")
    return isinstance(reasoning, dict) and (reasoning.get("exclude") is True
                                            or reasoning.get("enabled") is False)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chatmock.testing.fake_chat",
                                     description="Fake OpenAI-compatible chat-completions "
                                                 "server (xAI, OpenRouter, vLLM, llama.cpp, "
                                                 "Ollama /v1) for tests and bench.")
    parser.add_argument("--flavor", choices=sorted(FLAVORS), default="openai")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--api-key", default="",
                        help="the key to require (default: the flavor's fake key, if any)")
    args = parser.parse_args(argv)
    app = CountingApp(FakeChat(args.flavor, api_key=args.api_key))
    trio.run(serve_forever, app, args.host, args.port, f"fake-chat ({args.flavor})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
