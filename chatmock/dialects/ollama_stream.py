"""Codex Responses events → Ollama `/api/chat` and `/api/generate`, NDJSON or whole.

Streaming: one JSON object a line (`application/x-ndjson`), each made of a
per-request prefix (`{"model":…,"created_at":…,`), the delta still escaped
(copied raw, see `chatmock.jsonbytes`) and a fixed suffix: no JSON work per
delta. `/api/chat` lines carry `message: {role, content}`, `/api/generate`
lines a top-level `response`.

Reasoning (spec §1.3 and the `think` mode of `chatmock.dialects.ollama`):

* `think` requested (true or an effort) → `thinking` deltas, on lines of
  their own with empty `content` / `response` (as Ollama streams them);
* `think` absent and `--reasoning-compat think-tags` → `<think>…</think>`
  inside the content, exactly as chat does (closed by the first text, tool
  call or the end, never reopened; later reasoning is dropped);
* `think` absent in the other compat modes, or `think: false` → dropped:
  Ollama has no other place for it and clients would show it as the answer.

Tool calls (chat only) are streamed as one line per call when the backend
finishes the call, with `arguments` parsed into an object (Ollama clients
validate that it is one); arguments that are not a JSON object arrive as
`{"raw": "<text>"}`, as in the Anthropic dialect, so nothing is lost. A
custom (freeform) tool's call carries `{"input": "<text>"}`. Each call also
carries the backend's `id` (newer Ollama sends ids too; clients that drop
them are paired by position on the next turn) and `function.index`.
Web-search citations have no place in Ollama's answer and are dropped (the
links stay in the text).

The final line is `done: true` with `done_reason` (`stop`, `length` for a
response cut at its output limit, `content_filter` for one the filter
stopped; tool calls end with `stop` as in Ollama), the token counts of the
backend's usage (`prompt_eval_count` = input tokens,
`eval_count` = output tokens, 0 when missing) and durations in nanoseconds
on the monotonic clock from the request's start: `load_duration` up to the
backend's `response.created`, `prompt_eval_duration` from there to the first
output (text, reasoning or tool call), `eval_duration` from there to the end
(at least 1, since clients divide by it), `total_duration` the whole. The
generate final line adds `"context": []` (there are no tokens to return).

A failure or a cut stream ends with `{"error": "…"}` instead of the final
line, never a silent `done: true`; clients raise it.

Heartbeat: NDJSON has no comment lines, so `heartbeat()` returns no bytes
(the first one flushes the response head). A client that has gone away is
then only noticed at the next real line.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from chatmock import jsonbytes
from chatmock.dialects.anthropic_stream import tool_input
from chatmock.dialects.events import (
    TOOL_CALLS,
    Handler,
    UpstreamTranslator,
    arguments_of,
    content_filtered,
)
from chatmock.dialects.machine import CLOSE, CLOSED, OPEN, REASON, THINK_TAGS, UNOPENED, Paragraphs

if TYPE_CHECKING:
    from chatmock.dialects.collectors import OllamaCollector


NDJSON_HEADERS = ((b"content-type", b"application/x-ndjson"), (b"cache-control", b"no-cache"),
                  (b"x-accel-buffering", b"no"))
_NEWLINE = b"\\n"
_ARGUMENT_DELTA = b"response.function_call_arguments.delta"
Clock = Callable[[], int]


def created_at(now: float | None = None) -> str:
    """Ollama's `created_at`: UTC, RFC 3339 with microseconds."""
    stamp = time.time() if now is None else now
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp)) + \
        f".{int(stamp % 1 * 1_000_000):06d}Z"


def error_line(message: str) -> bytes:
    return b'{"error":' + jsonbytes.quote(message) + b"}\n"



def tool_call(call_id: str, index: int, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "function": {"index": index, "name": name,
                                        "arguments": tool_input(arguments)}}


class Timing:
    """Monotonic marks of one request, rendered as Ollama's final fields."""

    def __init__(self, started: int | None, clock: Clock) -> None:
        self.clock = clock
        self.started = clock() if started is None else started
        self.created = 0
        self.first = 0

    def mark_created(self) -> None:
        if not self.created:
            self.created = self.clock()

    def mark_output(self) -> None:
        if not self.first:
            self.first = self.clock()

    def final(self, response: dict[str, Any], incomplete: bool) -> dict[str, Any]:
        now = self.clock()
        created = self.created or now
        first = self.first or now
        usage = response.get("usage")
        return {"done_reason": done_reason(response, incomplete),
                "total_duration": max(now - self.started, 1),
                "load_duration": max(created - self.started, 0),
                "prompt_eval_count": _count(usage, "input_tokens"),
                "prompt_eval_duration": max(first - created, 0),
                "eval_count": _count(usage, "output_tokens"),
                "eval_duration": max(now - first, 1)}


def done_reason(response: dict[str, Any], incomplete: bool) -> str:
    """`stop`; `length` for a response cut at its output limit; `content_filter` for one
    the content filter stopped (Ollama has no such reason of its own: `length` would tell
    the client to ask for more tokens, which is wrong)."""
    if not incomplete:
        return "stop"
    return "content_filter" if content_filtered(response) else "length"


def _count(usage: Any, key: str) -> int:
    value = usage.get(key) if isinstance(usage, dict) else None
    try:
        return max(int(value), 0) if value is not None else 0
    except (TypeError, ValueError, OverflowError):
        return 0


def reasoning_mode(think: bool | None, compat: str) -> str:
    """`field` (a `thinking` field), `tags` (`<think>` in content) or `drop`."""
    if think is True:
        return "field"
    return "tags" if think is None and compat == "think-tags" else "drop"


class OllamaStreamTranslator(UpstreamTranslator):
    """Streaming `/api/chat` (or `/api/generate` with `generate=True`); see the module doc."""

    handlers: ClassVar[dict[bytes, Handler]] = {
        kind: handler for kind, handler in UpstreamTranslator.handlers.items()
        if kind != _ARGUMENT_DELTA}  # full arguments come with the item's `done`
    skip_events: ClassVar[tuple[bytes, ...]] = (_ARGUMENT_DELTA,)

    def __init__(self, *, model: str, created_at: str, think: bool | None, compat: str,
                 generate: bool = False, started: int | None = None,
                 clock: Clock = time.monotonic_ns) -> None:
        super().__init__()
        self.generate = generate
        self.mode = reasoning_mode(think, compat)
        self.timing = Timing(started, clock)
        self._head = (b'{"model":' + jsonbytes.quote(model) + b',"created_at":'
                      + jsonbytes.quote(created_at) + b",")
        if generate:
            self._text = self._head + b'"response":"'
            self._thinking = self._head + b'"response":"","thinking":"'
            self._end = b'","done":false}\n'
        else:
            self._text = self._head + b'"message":{"role":"assistant","content":"'
            self._thinking = self._head + b'"message":{"role":"assistant","content":"",' \
                b'"thinking":"'
            self._end = b'"},"done":false}\n'
        self._think = UNOPENED if self.mode == "tags" else CLOSED
        self._paragraphs = Paragraphs()
        self._text_sent = False
        self._separator_due = False
        self._calls = 0

    def heartbeat(self) -> bytes:
        """No bytes: NDJSON has no comments (see the module docstring)."""
        return b""

    def _close_think(self) -> bytes:
        was = self._think
        if was is CLOSED:  # THINK_TAGS' (CLOSED, CLOSE) move, on every text delta
            return b""
        self._think = THINK_TAGS.next(was, CLOSE)
        return b"</think>" if was is OPEN else b""

    def _flush_think(self) -> None:
        closing = self._close_think()
        if closing:
            self.out.append(self._text + closing + self._end)

    # -- hooks ----------------------------------------------------------------------

    def on_created(self, response: dict[str, Any]) -> None:
        self.timing.mark_created()

    def on_text(self, raw: bytes) -> None:
        self.timing.mark_output()
        if self._separator_due:
            self._separator_due = False
            raw = _NEWLINE + _NEWLINE + raw
        self._text_sent = True
        self.out.append(self._text + self._close_think() + raw + self._end)

    def on_summary_part(self) -> None:
        self._paragraphs.part()

    def on_reasoning(self, raw: bytes, summary: bool) -> None:
        self.timing.mark_output()
        if summary and self._paragraphs.take():
            raw = _NEWLINE + raw
        if self.mode == "field":
            self.out.append(self._thinking + raw + self._end)
            return
        was = self._think
        self._think = THINK_TAGS.next(was, REASON)
        if was is UNOPENED:
            self.out.append(self._text + b"<think>" + raw + self._end)
        elif was is OPEN:
            self.out.append(self._text + raw + self._end)

    def on_item_added(self, item: dict[str, Any]) -> None:
        if item.get("type") == "message" and self._text_sent:
            self._separator_due = True

    def on_item_done(self, item: dict[str, Any]) -> None:
        if item.get("type") not in TOOL_CALLS or self.generate:
            return
        self.timing.mark_output()
        self._flush_think()
        call = tool_call(str(item.get("call_id") or item.get("id") or ""), self._calls,
                         str(item.get("name") or ""), arguments_of(item))
        self._calls += 1
        self.out.append(self._head + b'"message":{"role":"assistant","content":"",'
                        b'"tool_calls":[' + jsonbytes.dumps(call) + b']},"done":false}\n')

    def on_completed(self, response: dict[str, Any], incomplete: bool) -> None:
        self._flush_think()
        fields = self.timing.final(response, incomplete)
        if self.generate:
            fields["context"] = []
            body = b'"response":"","done":true,'
        else:
            body = b'"message":{"role":"assistant","content":""},"done":true,'
        self.out.append(self._head + body + jsonbytes.dumps(fields)[1:] + b"\n")

    def on_failed(self, message: str, code: str) -> None:
        self.out.append(error_line(message))


def _content_and_thinking(collected: OllamaCollector, mode: str) -> tuple[str, str]:
    reasoning = "\n\n".join(part for part in (collected.summary, collected.full_reasoning)
                            if part)
    if mode == "tags" and reasoning:
        return f"<think>{reasoning}</think>{collected.text}", ""
    return collected.text, reasoning if mode == "field" else ""


def chat_object(collected: OllamaCollector, *, model: str, created_at: str,
                think: bool | None, compat: str) -> dict[str, Any]:
    """The non-stream `/api/chat` answer of a collected response."""
    content, thinking = _content_and_thinking(collected, reasoning_mode(think, compat))
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking:
        message["thinking"] = thinking
    if collected.tool_calls:
        message["tool_calls"] = [tool_call(call["id"], index, call["name"], call["arguments"])
                                 for index, call in enumerate(collected.tool_calls)]
    return {"model": model, "created_at": created_at, "message": message, "done": True,
            **collected.timing.final(collected.response, collected.incomplete)}


def generate_object(collected: OllamaCollector, *, model: str, created_at: str,
                    think: bool | None, compat: str) -> dict[str, Any]:
    """The non-stream `/api/generate` answer of a collected response."""
    response, thinking = _content_and_thinking(collected, reasoning_mode(think, compat))
    result: dict[str, Any] = {"model": model, "created_at": created_at, "response": response}
    if thinking:
        result["thinking"] = thinking
    result["done"] = True
    result.update(collected.timing.final(collected.response, collected.incomplete))
    result["context"] = []
    return result


def load_object(model: str, created_at: str, reason: str, generate: bool) -> dict[str, Any]:
    """Ollama's answer to a load (or unload) request: nothing generated."""
    if generate:
        return {"model": model, "created_at": created_at, "response": "", "done": True,
                "done_reason": reason}
    return {"model": model, "created_at": created_at,
            "message": {"role": "assistant", "content": ""}, "done_reason": reason,
            "done": True}
