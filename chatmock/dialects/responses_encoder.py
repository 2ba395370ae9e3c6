"""Neutral provider events → the Codex Responses event stream, incrementally.

A provider's stream (`chat_upstream_stream`, `qwen_stream`) is decoded into
`provider_events`; `ResponsesEncoder.encode(events)` turns them into the SSE
bytes the Codex backend would have sent for the same answer. Every dialect's
translator (chat, completions, Anthropic, Ollama, and the Responses relay that
passes events through as they are) then reads them unchanged: one internal
event vocabulary, whichever upstream answered.

What the backend would send, item by item (`output_index` counts items):

* the first event of any kind: `response.created`, `response.in_progress`;
* text: a `message` item (`output_item.added`, `content_part.added`), one
  `output_text.delta` per `TextDelta`; closed (`output_text.done`,
  `content_part.done`, `output_item.done`) when anything else starts;
* reasoning: a `reasoning` item; a summary (`ReasoningDelta.summary`) streams
  as `reasoning_summary_text.delta` after one `reasoning_summary_part.added`,
  thinking text as `reasoning_text.delta`. OpenRouter's `reasoning_details`
  are packed into the item's `encrypted_content`
  (`chat_upstream_request.pack_reasoning_details`), which brings them back to
  OpenRouter on the next turn, through any dialect that keeps the blob;
* tool calls: one `function_call` item per call (`fc_<n>`), its arguments as
  `function_call_arguments.delta`; calls stay open until the answer ends, since
  a provider may interleave the arguments of parallel calls;
* `Finish`: every open item closed, then `response.completed`, or
  `response.incomplete` for `length` (max_output_tokens) and `content_filter`;
* `Error`: `response.failed` with a code every dialect maps to the right
  status (`events.failure_kind`): when the provider's code says nothing, the
  status it stands for picks one (429 → rate_limit_exceeded, ...).

Deltas are framed with bytes concatenation only (their `raw` strings are
already escaped JSON); items are built as objects once, when they close.
"""

from __future__ import annotations

from typing import Any

from chatmock import jsonbytes
from chatmock.dialects.chat_upstream_request import pack_reasoning_details
from chatmock.dialects.events import failure_kind
from chatmock.dialects.provider_events import (
    Error,
    Event,
    Finish,
    ReasoningDelta,
    ReasoningDetail,
    Started,
    TextDelta,
    ToolArgumentsDelta,
    ToolCallStart,
    Usage,
)

JSON = dict[str, Any]
_STATUS_CODES = {400: "invalid_request_error", 401: "authentication_error",
                 402: "insufficient_quota", 403: "permission_denied",
                 404: "model_not_found", 408: "timeout", 413: "context_length_exceeded",
                 429: "rate_limit_exceeded", 503: "server_is_overloaded",
                 529: "server_is_overloaded"}
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def failure_code(code: str, status: int | None) -> str:
    """The provider's code when it says what went wrong, else one its status stands for."""
    if failure_kind(code) != "api" or status is None:
        return code
    return _STATUS_CODES.get(status, code)


class _Item:
    """One open output item: its number, id and what streamed into it (escaped JSON)."""

    __slots__ = ("call_id", "details", "index", "item_id", "kind", "name", "parts", "summary")

    def __init__(self, kind: str, index: int, item_id: str, *, call_id: str = "",
                 name: str = "") -> None:
        self.kind = kind
        self.index = index
        self.item_id = item_id
        self.call_id = call_id
        self.name = name
        self.parts: list[bytes] = []  # text, thinking text or arguments
        self.summary: list[bytes] = []  # a reasoning summary's text
        self.details: list[JSON] = []  # OpenRouter's reasoning_details


class ResponsesEncoder:
    """See the module docstring; one per answer."""

    def __init__(self, response_id: str, model: str, created_at: int) -> None:
        self.response_id = response_id
        self.model = model
        self.created_at = created_at
        self.usage: Usage | None = None
        self.done = False
        self._sequence = 0
        self._out: list[bytes] = []
        self._output: list[JSON] = []
        self._count = 0
        self._text: _Item | None = None
        self._reasoning: _Item | None = None
        self._calls: dict[int, _Item] = {}
        self._text_prefix = b""
        self._frames: dict[tuple[str, int], tuple[bytes, bytes]] = {}

    def encode(self, events: list[Event]) -> bytes:
        """The SSE bytes `events` stand for (b"" when they complete nothing visible)."""
        for event in events:
            if self.done:
                break
            if not self._sequence:
                self._start(event if isinstance(event, Started) else None)
            kind = type(event)
            if kind is TextDelta:
                self._on_text(event.raw)  # type: ignore[union-attr]
            elif kind is ReasoningDelta:
                self._on_reasoning(event.raw, event.summary)  # type: ignore[union-attr]
            elif kind is ToolArgumentsDelta:
                self._on_arguments(event.call_index, event.raw)  # type: ignore[union-attr]
            else:
                self._on_rare(event)
        out = self._out
        if not out:
            return b""
        self._out = []
        return b"".join(out)

    # -- the frequent events: bytes only ------------------------------------------------

    def _on_text(self, raw: bytes) -> None:
        item = self._text
        if item is None:
            item = self._open_text()
        item.parts.append(raw)
        self._sequence += 1
        self._out.append(b"%s%d%s%s\",\"logprobs\":[]}\n\n" % (
            _TEXT_HEAD, self._sequence, self._text_prefix, raw))

    def _on_reasoning(self, raw: bytes, summary: bool) -> None:
        item = self._reasoning if self._reasoning is not None else self._open_reasoning()
        if summary and not item.summary:
            self._emit("response.reasoning_summary_part.added", {
                "item_id": item.item_id, "output_index": item.index, "summary_index": 0,
                "part": {"type": "summary_text", "text": ""}})
        (item.summary if summary else item.parts).append(raw)
        kind = "response.reasoning_summary_text.delta" if summary else \
            "response.reasoning_text.delta"
        self._delta(kind, item, raw, b',"summary_index":0' if summary else
                    b',"content_index":0')

    def _on_arguments(self, call_index: int, raw: bytes) -> None:
        item = self._calls.get(call_index)
        if item is None:
            return
        item.parts.append(raw)
        self._delta("response.function_call_arguments.delta", item, raw, b"")

    def _delta(self, kind: str, item: _Item, raw: bytes, where: bytes) -> None:
        key = (kind, item.index)
        frame = self._frames.get(key)
        if frame is None:
            name = kind.encode()
            frame = self._frames[key] = (
                b'event: %s\ndata: {"type":"%s","sequence_number":' % (name, name),
                b',"item_id":"%s","output_index":%d%s,"delta":"' % (
                    item.item_id.encode(), item.index, where))
        self._sequence += 1
        self._out.append(b'%s%d%s%s"}\n\n' % (frame[0], self._sequence, frame[1], raw))

    # -- everything else: parsed objects ------------------------------------------------

    def _on_rare(self, event: Event) -> None:
        if isinstance(event, Started):
            if event.model:
                self.model = event.model
        elif isinstance(event, ReasoningDetail):
            item = self._reasoning if self._reasoning is not None else self._open_reasoning()
            item.details.append(event.detail)
        elif isinstance(event, ToolCallStart):
            self._close_text()
            self._close_reasoning()
            item = _Item("function_call", self._next_index(), f"fc_{event.call_index}",
                         call_id=event.call_id, name=event.name)
            self._calls[event.call_index] = item
            self._emit("response.output_item.added", {
                "output_index": item.index, "item": self._call_item(item, "in_progress")})
        elif isinstance(event, Usage):
            self.usage = event
        elif isinstance(event, Finish):
            self._finish(event.reason)
        elif isinstance(event, Error):
            self.done = True
            failed = self._response("failed", error={
                "code": failure_code(event.code, event.status), "message": event.message})
            self._emit("response.failed", {"response": failed})

    def _start(self, started: Started | None) -> None:
        if started is not None and started.model:
            self.model = started.model
        self._emit("response.created", {"response": self._response("in_progress")})
        self._emit("response.in_progress", {"response": self._response("in_progress")})

    def _finish(self, reason: str) -> None:
        self._close_text()
        self._close_reasoning()
        for item in self._calls.values():
            arguments = jsonbytes.decode_string(b"".join(item.parts))
            self._emit("response.function_call_arguments.done", {
                "item_id": item.item_id, "output_index": item.index, "arguments": arguments})
            self._item_done(item, self._call_item(item, "completed", arguments))
        self._calls.clear()
        self.done = True
        incomplete = _INCOMPLETE.get(reason)
        if incomplete is None:
            self._emit("response.completed", {"response": self._response("completed")})
            return
        response = self._response("incomplete", incomplete_details={"reason": incomplete})
        self._emit("response.incomplete", {"response": response})

    # -- items --------------------------------------------------------------------------

    def _next_index(self) -> int:
        self._count += 1
        return self._count - 1

    def _open_text(self) -> _Item:
        self._close_reasoning()
        item = self._text = _Item("message", self._next_index(), f"msg_{self._count}")
        self._emit("response.output_item.added", {"output_index": item.index, "item": {
            "id": item.item_id, "type": "message", "status": "in_progress", "content": [],
            "role": "assistant"}})
        where = {"item_id": item.item_id, "output_index": item.index, "content_index": 0}
        self._emit("response.content_part.added", {**where, "part": _text_part("")})
        self._text_prefix = b',"item_id":"%s","output_index":%d,"content_index":0,"delta":"' \
            % (item.item_id.encode(), item.index)
        return item

    def _close_text(self) -> None:
        item, self._text = self._text, None
        if item is None:
            return
        text = jsonbytes.decode_string(b"".join(item.parts))
        where = {"item_id": item.item_id, "output_index": item.index, "content_index": 0}
        self._emit("response.output_text.done", {**where, "text": text, "logprobs": []})
        self._emit("response.content_part.done", {**where, "part": _text_part(text)})
        self._item_done(item, {"id": item.item_id, "type": "message", "status": "completed",
                               "content": [_text_part(text)], "role": "assistant"})

    def _open_reasoning(self) -> _Item:
        self._close_text()
        item = self._reasoning = _Item("reasoning", self._next_index(), f"rs_{self._count}")
        self._emit("response.output_item.added", {"output_index": item.index, "item": {
            "id": item.item_id, "type": "reasoning", "summary": []}})
        return item

    def _close_reasoning(self) -> None:
        item, self._reasoning = self._reasoning, None
        if item is None:
            return
        done: JSON = {"id": item.item_id, "type": "reasoning", "summary": []}
        if item.summary:
            text = jsonbytes.decode_string(b"".join(item.summary))
            done["summary"] = [{"type": "summary_text", "text": text}]
        if item.parts:
            text = jsonbytes.decode_string(b"".join(item.parts))
            done["content"] = [{"type": "reasoning_text", "text": text}]
        if item.details:
            done["encrypted_content"] = pack_reasoning_details(item.details)
        self._item_done(item, done)

    def _call_item(self, item: _Item, status: str, arguments: str = "") -> JSON:
        return {"id": item.item_id, "type": "function_call", "status": status,
                "arguments": arguments, "call_id": item.call_id, "name": item.name}

    def _item_done(self, item: _Item, done: JSON) -> None:
        self._output.append(done)
        self._emit("response.output_item.done", {"output_index": item.index, "item": done})

    # -- framing ------------------------------------------------------------------------

    def _response(self, status: str, **extra: Any) -> JSON:
        finished = status != "in_progress"
        return {"id": self.response_id, "object": "response", "created_at": self.created_at,
                "status": status, "error": None, "incomplete_details": None,
                "model": self.model, "output": list(self._output) if finished else [],
                "usage": _usage(self.usage) if finished and status != "failed" else None,
                **extra}

    def _emit(self, kind: str, fields: JSON) -> None:
        self._sequence += 1
        payload = {"type": kind, "sequence_number": self._sequence, **fields}
        self._out.append(b"event: %s\ndata: %s\n\n" % (kind.encode(), jsonbytes.dumps(payload)))


_TEXT_HEAD = (b'event: response.output_text.delta\n'
              b'data: {"type":"response.output_text.delta","sequence_number":')


def _text_part(text: str) -> JSON:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _usage(usage: Usage | None) -> JSON | None:
    if usage is None:
        return None
    found: JSON = {"input_tokens": usage.input_tokens,
                   "input_tokens_details": {"cached_tokens": usage.cached_tokens or 0},
                   "output_tokens": usage.output_tokens,
                   "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens or 0},
                   "total_tokens": usage.total_tokens}
    if usage.cost is not None:
        found["cost"] = usage.cost
    return found
