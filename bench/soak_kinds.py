"""What the soak asks for and how it judges the answer, per dialect.

An `Api` is one generating route: how to build its body, how its stream ends (`stream_end`
tells a proper terminal event from an in-band error and from a stream that just stopped),
and the shape of its error documents. An `Ask` is what one request asks the fake backend
for (`fake:` directives in the prompt) and what the client must then see. `problem` compares
a reply with its ask: None when it is right, else what is wrong.

Text answers are the fake's numbered deltas (`tok0 `, `tok1 `, ...): whatever the dialect,
a complete answer carries every number in order, so a lost or repeated delta shows up
without decoding the dialect (`numbers_complete`).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from soak_http import Reply

MODEL = "gpt-5.4"
SUCCESS, ERROR, TRUNCATED = "success", "error", "truncated"
SILENCE_MS = 3_600_000
"""A backend silence of an hour: a stream that is not cancelled outlives the soak."""
_NUMBERS = re.compile(rb"tok(\d+) ")


def numbers_complete(body: bytes, deltas: int) -> bool:
    """The first `deltas` numbers are 0..deltas-1 in order and no other number occurs
    (done events and final objects repeat the text, which is fine)."""
    found = [int(n) for n in _NUMBERS.findall(body)]
    return found[:deltas] == list(range(deltas)) and set(found) == set(range(deltas))


# --- how streams end, per dialect ----------------------------------------------------


def openai_end(body: bytes) -> str:
    """Chat and legacy completions: `data: [DONE]` once, at the end; an error chunk first
    when the backend failed."""
    if not body.endswith(b"data: [DONE]\n\n") or body.count(b"data: [DONE]") != 1:
        return TRUNCATED
    return ERROR if b'data: {"error":' in body else SUCCESS


def named_end(success: bytes, errors: tuple[bytes, ...]) -> Callable[[bytes], str]:
    """SSE with event names (Responses, Anthropic): the last event decides."""

    def end(body: bytes) -> str:
        start = body.rfind(b"\nevent: ") + 1
        if not body.endswith(b"\n\n") or (start == 0 and not body.startswith(b"event: ")):
            return TRUNCATED
        name = body[start + len(b"event: ") : body.find(b"\n", start)]
        if name == success and body.count(b"event: %b\n" % success) == 1:
            return SUCCESS
        return ERROR if name in errors else TRUNCATED

    return end


def ollama_end(body: bytes) -> str:
    """NDJSON: the last line has `"done": true`, or is `{"error": ...}`."""
    if not body.endswith(b"\n"):
        return TRUNCATED
    last = json.loads(body[body.rfind(b"\n", 0, len(body) - 1) + 1 :])
    if last.get("done") is True and body.count(b'"done":true') == 1:
        return SUCCESS
    return ERROR if isinstance(last.get("error"), str) else TRUNCATED


def openai_error(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("error"), dict) \
        and isinstance(doc["error"].get("message"), str)


def anthropic_error(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("type") == "error" \
        and isinstance(doc.get("error"), dict) and isinstance(doc["error"].get("message"), str)


def ollama_error(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("error"), str)


@dataclass(frozen=True)
class Api:
    name: str
    path: str
    build: Callable[[str, bool], dict[str, Any]]
    """(prompt, stream) -> the request body."""
    stream_end: Callable[[bytes], str]
    error_shape: Callable[[Any], bool]
    headers: tuple[tuple[str, str], ...] = ()
    overloaded: int = 502
    """The status of a whole answer the backend failed with `server_error`: Anthropic's
    routes answer 529 (`overloaded_error`), as Anthropic does."""


def _messages(prompt: str, stream: bool) -> dict[str, Any]:
    return {"model": MODEL, "stream": stream, "messages": [{"role": "user", "content": prompt}]}


def _prompt(prompt: str, stream: bool) -> dict[str, Any]:
    return {"model": MODEL, "stream": stream, "prompt": prompt}


APIS = {api.name: api for api in (
    Api("chat", "/v1/chat/completions", _messages, openai_end, openai_error),
    Api("completions", "/v1/completions", _prompt, openai_end, openai_error),
    Api("responses", "/v1/responses",
        lambda prompt, stream: {"model": MODEL, "stream": stream, "input": prompt},
        named_end(b"response.completed", (b"error", b"response.failed")), openai_error),
    Api("messages", "/v1/messages",
        lambda prompt, stream: {**_messages(prompt, stream), "model": "claude-sonnet-5",
                                "max_tokens": 4096},
        named_end(b"message_stop", (b"error",)), anthropic_error,
        (("anthropic-version", "2023-06-01"), ("x-api-key", "soak")), overloaded=529),
    Api("ollama-chat", "/api/chat", _messages, ollama_end, ollama_error),
    Api("ollama-generate", "/api/generate", _prompt, ollama_end, ollama_error),
)}


# --- what a request asks the fake for ------------------------------------------------


@dataclass(frozen=True)
class Ask:
    """The `fake:` directives of one request and what the client must see."""

    label: str
    prompt: str
    status: int
    """The expected status (of the head, for a stream)."""
    end: str | None = None
    """SUCCESS or ERROR: how a streamed 200 must end."""
    deltas: int | None = None
    """Numbered deltas a successful answer carries in full."""
    upstream_5xx: bool = False
    """The body asked the fake for a failure: a 5xx answer is the upstream's own."""

    @property
    def plays_stream(self) -> bool:
        """Whether the fake plays an event stream (to its end) for this request."""
        return self.status in (200, 502) and self.label in ("ok", *FAILURES)


FAILURES = ("cut", "fail", "late_error")
"""Streams the backend ends badly after two deltas: reset, response.failed, error event."""
USAGE_LIMITS = ("fake:error=429", "fake:usage_limit=resets_in", "fake:usage_limit=resets_at",
                "fake:usage_limit=not_included", "fake:usage_limit=headers_only",
                "fake:usage_limit=plain")
PACINGS = ("", "", "fake:reasoning", "fake:burst=5 fake:delay_ms=2", "fake:first_delay_ms=30")
ENDINGS = {"ok": 84, "cut": 6, "fail": 2, "late_error": 2, "5xx": 3, "429": 3}


def ask_ok(rng: random.Random, deltas: int | None = None) -> Ask:
    n = deltas if deltas is not None else rng.randint(1, 120)
    return Ask("ok", f"soak fake:deltas={n} {rng.choice(PACINGS)}", 200, SUCCESS, n)


def ask_429(rng: random.Random) -> Ask:
    return Ask("429", f"soak {rng.choice(USAGE_LIMITS)}", 429)


def ask(rng: random.Random, stream: bool, label: str | None = None) -> Ask:
    """A request's ending, drawn by ENDINGS' weights unless `label` names it."""
    label = label or rng.choices(list(ENDINGS), list(ENDINGS.values()))[0]
    if label == "ok":
        return ask_ok(rng)
    if label == "429":
        return ask_429(rng)
    if label == "5xx":
        status = rng.choice((500, 502, 503))
        return Ask("5xx", f"soak fake:error={status}", status, upstream_5xx=True)
    prompt = f"soak fake:deltas={rng.randint(3, 40)} fake:{label}"
    if stream:  # the head went out before the failure: an in-band error must end it
        return Ask(label, prompt, 200, ERROR)
    return Ask(label, prompt, 502, upstream_5xx=True)


def problem(api: Api, ask_: Ask, stream: bool, reply: Reply) -> str | None:
    """What is wrong with `reply` to `ask_` (None: nothing)."""
    expected = api.overloaded if ask_.label in ("fail", "late_error") and not stream \
        else ask_.status
    if reply.status != expected:
        return f"status {reply.status}, expected {expected}: {reply.body[:160]!r}"
    if reply.status != 200:
        return None if api.error_shape(_json(reply.body)) else \
            f"error not in the {api.name} shape: {reply.body[:160]!r}"
    if stream:
        end = api.stream_end(reply.body)
        if end != ask_.end:
            return f"stream ended as {end}, expected {ask_.end}: ...{reply.body[-160:]!r}"
    elif api.error_shape(_json(reply.body)):
        return f"a 200 carrying an error: {reply.body[:160]!r}"
    if ask_.end == SUCCESS and ask_.deltas and not numbers_complete(reply.body, ask_.deltas):
        return f"answer lost deltas (wanted {ask_.deltas}): {reply.body[:200]!r}"
    return None


def ws_problem(ask_: Ask, events: list[dict[str, Any]]) -> str | None:
    """The same for one `response.create` over the WebSocket."""
    last = events[-1]
    kind = last.get("type")
    if ask_.status != 200:
        status = last.get("status_code")
        return None if kind == "error" and status == ask_.status else \
            f"ended with {kind} {status}, expected an error frame {ask_.status}"
    if ask_.end == ERROR:
        return None if kind in ("error", "response.failed") else f"ended with {kind}, not an error"
    if kind != "response.completed":
        return f"ended with {kind}: {str(last)[:160]}"
    body = json.dumps(events).encode()
    if ask_.deltas and not numbers_complete(body, ask_.deltas):
        return f"answer lost deltas (wanted {ask_.deltas})"
    return None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None
