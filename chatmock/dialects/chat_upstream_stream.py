"""An OpenAI chat-completions SSE stream → neutral provider events, incrementally.

`ChatStreamDecoder.feed(bytes)` takes what one network read brought and
returns the `provider_events` it completed; `finish()` marks the end of the
body, `abort(message)` a broken one. It follows the common rules of
providers.md §4, whichever server (xAI, OpenRouter, vLLM, llama.cpp, Ollama,
LM Studio) sent the stream:

* `:` comment lines (OpenRouter's keep-alives) are skipped by the SSE decoder;
  data that is not JSON is ignored; `data: [DONE]` ends the answer, and so does
  the end of the body without it.
* Reasoning text is read from `reasoning_content`, else `reasoning` (vLLM's
  old and new names; one delta never counts twice), else from the text of
  OpenRouter's `reasoning_details`, each of which is also passed on whole
  (`ReasoningDetail`) for the next turn.
* Tool calls are assembled by `index`, else by `id`, else by position (an
  entry with a function name starts a call, one without continues the last),
  and a missing id is made up as `<call_id_prefix><index>`. A call's start
  waits for its name; arguments may come in pieces or whole.
* `usage` is taken from whichever chunk carries it: a `choices: []` chunk after
  the finish (OpenAI, xAI, vLLM, Ollama), a chunk after the finish that still
  has a choice (OpenRouter), the finish chunk itself (llama.cpp). So `Finish`
  is held back until `[DONE]` or the end of the body, and comes last.
* A missing finish reason reads as `stop`; `stop` with tool calls, or the
  legacy `function_call`, reads as `tool_calls`.
* Errors in the stream end the answer with `Error`: OpenRouter's chunk with
  `error` and `finish_reason: "error"`, an OpenAI-style `{"error": {...}}`,
  xAI's `{"code": ..., "error": "<text>"}`, vLLM's `{"object": "error", ...}`.
  An empty stream is an `Error` too (`empty_response`, a cold start to retry).

Hot path: a chunk whose only delta member is one text, reasoning or argument
string (the shape almost every chunk has) is matched with one regular
expression and its string copied raw, as `UpstreamTranslator` does for the
Codex stream: only when every byte of the read was checked safe
(`jsonbytes.safe_to_copy`) and the chunk holds no usage, finish reason or
error. Everything else is parsed with `json.loads`.
"""

from __future__ import annotations

import json
from typing import Any

from chatmock import jsonbytes
from chatmock.dialects.provider_events import (
    Event,
    EventDecoder,
    Finish,
    ReasoningDelta,
    ReasoningDetail,
    Started,
    TextDelta,
    ToolArgumentsDelta,
    ToolCallStart,
    Usage,
    count,
)
from chatmock.errors import extract_message

_DELTA = b'"delta":'
_TEXT_KEYS = ((b'"delta":{"content":"', TextDelta),
              (b'"delta":{"role":"assistant","content":"', TextDelta),
              (b'"delta":{"reasoning_content":"', ReasoningDelta),
              (b'"delta":{"reasoning":"', ReasoningDelta))
_ARGUMENTS = b'"delta":{"tool_calls":[{"index":'
_ARGUMENTS_KEY = b',"function":{"arguments":"'
_BACKSLASH = 92
_FINISH_ALIASES = {"function_call": "tool_calls"}


def _string_at(data: bytes, begin: int, closer: bytes, objects: int) -> bytes | None:
    """The escaped JSON string starting at `begin`, when it is followed by `closer` and the
    chunk is plain: `objects` objects in all (the chunk, its choice, the delta; for
    arguments also the call and its function: a usage, an error or a second choice adds
    more), and no finish reason. Braces inside the string are counted apart, braces inside
    other strings only send the chunk to the parser: the check is never wrong."""
    end = data.find(b'"', begin)
    if end < 0:
        return None
    body = data[begin:end]
    if b"\\" in body:
        found = jsonbytes.string_at(data, begin)  # finds the real end, checks the escapes
        if found is None:
            return None
        body, end = found, begin + len(found)
    if (not data.startswith(closer, end + 1) or b'"finish_reason":"' in data
            or data.count(b"{") - body.count(b"{") != objects):
        return None
    return body


class _Call:
    __slots__ = ("call_id", "index", "name", "pending", "started")

    def __init__(self, index: int, call_id: str, name: str) -> None:
        self.index = index
        self.call_id = call_id
        self.name = name
        self.started = False
        self.pending: list[bytes] = []


class ToolCalls:
    """Assembles tool-call deltas into calls numbered from 0 (see the module docstring)."""

    def __init__(self, call_id_prefix: str) -> None:
        self.prefix = call_id_prefix
        self.calls: list[_Call] = []
        self._keys: dict[tuple[str, Any], _Call] = {}

    def feed(self, entries: list[Any], out: list[Event]) -> None:
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            function = entry.get("function")
            if not isinstance(function, dict):
                function = {}
            name = function.get("name")
            name = name if isinstance(name, str) else ""
            call = self._find(entry, name)
            if name and not call.name:
                call.name = name
            arguments = function.get("arguments")
            if isinstance(arguments, dict | list):
                arguments = json.dumps(arguments, ensure_ascii=False)
            raw = jsonbytes.escape(arguments) if isinstance(arguments, str) and arguments else b""
            self.add(call, raw, out)

    def add(self, call: _Call, raw: bytes, out: list[Event]) -> None:
        if not call.started and call.name:
            call.started = True
            out.append(ToolCallStart(call.index, call.call_id, call.name))
            out.extend(ToolArgumentsDelta(call.index, piece) for piece in call.pending)
            call.pending.clear()
        if raw:
            if call.started:
                out.append(ToolArgumentsDelta(call.index, raw))
            else:
                call.pending.append(raw)

    def by_index(self, index: int) -> _Call | None:
        return self._keys.get(("index", index))

    def finish(self, out: list[Event]) -> None:
        """Calls whose name never came start now, nameless."""
        for call in self.calls:
            if not call.started:
                call.started = True
                out.append(ToolCallStart(call.index, call.call_id, call.name))
                out.extend(ToolArgumentsDelta(call.index, piece) for piece in call.pending)

    def _find(self, entry: dict[str, Any], name: str) -> _Call:
        index, call_id = entry.get("index"), entry.get("id")
        call_id = call_id if isinstance(call_id, str) and call_id else ""
        if isinstance(index, int) and not isinstance(index, bool):
            key: tuple[str, Any] = ("index", index)
        elif call_id:
            key = ("id", call_id)
        elif name or not self.calls:
            key = ("position", len(self.calls))
        else:
            return self.calls[-1]
        call = self._keys.get(key)
        if call is None:
            number = len(self.calls)
            call = _Call(number, call_id or f"{self.prefix}{number}", name)
            self.calls.append(call)
            self._keys[key] = call
        elif call_id and not call.started and call.call_id.startswith(self.prefix):
            call.call_id = call_id
        return call


class ChatStreamDecoder(EventDecoder):
    """See the module docstring."""

    def __init__(self, *, call_id_prefix: str = "call_chatmock_") -> None:
        super().__init__()
        self._calls = ToolCalls(call_id_prefix)
        self._started = False
        self._finish: str | None = None

    def answer_began(self) -> bool:
        return self._started or self._finish is not None

    # -- one data line -----------------------------------------------------------------

    def on_data(self, data: bytes) -> None:
        if data == b"[DONE]":
            self.end_answer()
            return
        if self._started and self.copy_raw and self._fast(data):
            return
        self._chunk(data)

    def _fast(self, data: bytes) -> bool:
        """Handle a plain text, reasoning or arguments chunk without parsing it."""
        at = data.find(_DELTA)
        if at <= 0 or data[at - 1] == _BACKSLASH:
            return False
        for key, kind in _TEXT_KEYS:
            if data.startswith(key, at):
                raw = _string_at(data, at + len(key), b"}", 3)
                if raw is None:
                    return False
                if raw:
                    self.out.append(kind(raw))
                return True
        if data.startswith(_ARGUMENTS, at):
            return self._fast_arguments(data, at + len(_ARGUMENTS))
        return False

    def _fast_arguments(self, data: bytes, at: int) -> bool:
        digits = at
        while data[digits:digits + 1].isdigit():
            digits += 1
        if digits == at or digits - at > 6 or not data.startswith(_ARGUMENTS_KEY, digits):
            return False
        call = self._calls.by_index(int(data[at:digits]))
        raw = _string_at(data, digits + len(_ARGUMENTS_KEY), b"}}]}", 5)
        if call is None or not call.started or raw is None:
            return False
        if raw:
            self.out.append(ToolArgumentsDelta(call.index, raw))
        return True

    def _chunk(self, data: bytes) -> None:
        try:
            doc = json.loads(data)
        except ValueError:
            return
        if not isinstance(doc, dict):
            return
        if _is_error(doc):
            self.fail(*_error_of(doc))
            return
        if not self._started:
            self._started = True
            response_id, model = doc.get("id"), doc.get("model")
            self.out.append(Started(response_id if isinstance(response_id, str) else "",
                                     model if isinstance(model, str) else ""))
        usage = usage_of(doc.get("usage"))
        choices = doc.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        if isinstance(choice, dict):
            self._choice(choice)
        if usage is not None:
            self.out.append(usage)

    def _choice(self, choice: dict[str, Any]) -> None:
        delta = choice.get("delta")
        if isinstance(delta, dict):
            self._reasoning(delta)
            for key in ("content", "refusal"):
                text = delta.get(key)
                if isinstance(text, str) and text:
                    self.out.append(TextDelta(jsonbytes.escape(text)))
            calls = delta.get("tool_calls")
            if isinstance(calls, list):
                self._calls.feed(calls, self.out)
        reason = choice.get("finish_reason")
        if isinstance(reason, str) and reason and self._finish is None:
            self._finish = _FINISH_ALIASES.get(reason, reason)

    def _reasoning(self, delta: dict[str, Any]) -> None:
        text = next((delta[key] for key in ("reasoning_content", "reasoning")
                     if isinstance(delta.get(key), str) and delta[key]), None)
        details = delta.get("reasoning_details")
        details = [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []
        summary = any(d.get("type") == "reasoning.summary" for d in details)
        if text is None:
            text = "".join(str(d.get("text") or d.get("summary") or "") for d in details
                           if d.get("type") in ("reasoning.text", "reasoning.summary"))
        if text:
            self.out.append(ReasoningDelta(jsonbytes.escape(text), summary))
        self.out.extend(ReasoningDetail(detail) for detail in details)

    # -- endings -----------------------------------------------------------------------

    def end_answer(self) -> None:
        self._calls.finish(self.out)
        reason = self._finish or "stop"
        if reason == "stop" and self._calls.calls:
            reason = "tool_calls"
        self.closed = True
        self.out.append(Finish(reason))


def _is_error(doc: dict[str, Any]) -> bool:
    return doc.get("error") not in (None, "", {}) or doc.get("object") == "error"


def _error_of(doc: dict[str, Any]) -> tuple[str, str, int | None]:
    """(message, code, status) of an in-stream error, whatever its shape."""
    error = doc.get("error")
    inner = error if isinstance(error, dict) else doc
    code = inner.get("code")
    if code in (None, ""):
        code = inner.get("type") or doc.get("code")
    status = code if isinstance(code, int) and 400 <= code <= 599 else None
    message = extract_message(doc) or "the provider failed the answer"
    return message, str(code) if code not in (None, "") else "upstream_error", status


def usage_of(usage: Any) -> Usage | None:
    """Chat-completions usage (or the input/output names some servers use) as `Usage`."""
    if not isinstance(usage, dict):
        return None
    prompt = count(usage, "prompt_tokens")
    completion = count(usage, "completion_tokens")
    if prompt is None and completion is None:
        prompt, completion = count(usage, "input_tokens"), count(usage, "output_tokens")
    prompt, completion = prompt or 0, completion or 0
    total = count(usage, "total_tokens") or prompt + completion
    details = usage.get("prompt_tokens_details") or usage.get("input_tokens_details")
    output = usage.get("completion_tokens_details") or usage.get("output_tokens_details")
    cost = usage.get("cost")
    return Usage(prompt, completion, total, count(details, "cached_tokens"),
                 count(output, "reasoning_tokens"),
                 float(cost) if isinstance(cost, int | float) and not isinstance(cost, bool)
                 else None)
