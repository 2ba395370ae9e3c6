"""The chat.qwen.ai web completion stream → neutral provider events (providers.md §3.5, §3.7).

`QwenStreamDecoder` has the same `feed` / `finish` / `abort` surface as
`ChatStreamDecoder`:

* `{"response.created": {...}}` → `Started` (its `response_id` is the next
  turn's `parent_id`); `response.info` keep-alives are skipped.
* Deltas by `phase`: `think` → `ReasoningDelta`; `thinking_summary` →
  `ReasoningDelta(summary=True)` with the text added to
  `extra.summary_thought.content` since the last snapshot (the list is a
  cumulative snapshot; a snapshot that does not extend the previous one starts
  a new paragraph); `answer`, or no phase at all → `TextDelta`; `web_search`
  and image phases are skipped. `status: "finished"` on the answer ends it.
* `usage` repeats, cumulative, on every content chunk: only the last chunk
  that carried one is kept (its bytes, not parsed) and read once, at the end.
* `{"error": {"code", "details"}}` lines and `{"response.stopped": ...}` end
  the answer (`Error` with the status the code stands for, as DanyAPI maps
  them: rate codes 429, auth codes 401, context length 400, `Server_Busy` 503,
  others 502; `Finish("stop")` for a stop).
* The end of the body (with or without `data: [DONE]`) after some answer is
  a `Finish("stop")`; an empty body is an `Error`.

Errors that are not a stream (`{"success": false, ...}` JSON, usually with
HTTP 200 and the real status in `x-actual-status-code`; the WAF's HTML page)
are turned into an `Error` by `reply_error` from the response head and body,
before any decoding.

Hot path: an answer or think delta in the web app's key order
(`"delta":{"role":"assistant","content":"...","phase":"answer","status":"typing"}`)
has its string copied raw, as in `chat_upstream_stream`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from chatmock import jsonbytes
from chatmock.dialects.chat_upstream_stream import usage_of
from chatmock.dialects.provider_events import (
    Error,
    EventDecoder,
    Finish,
    ReasoningDelta,
    Started,
    TextDelta,
)

_PREFIX = b'"delta":{"role":"assistant","content":"'
_CLOSERS = ((b'","phase":"answer","status":"typing"}', TextDelta),
            (b'","phase":"think","status":"typing"}', ReasoningDelta))
_STATUS = {"too_many_requests": 429, "ratelimited": 429, "quotalimited": 429,
           "unauthorized": 401, "contextlengthexceeded": 400, "bad_request": 400,
           "not_found": 404, "server_busy": 503}
_HIDDEN_PHASES = ("web_search", "image_gen", "image_edit", "video_gen")


def status_of(code: str) -> int:
    """The HTTP status a Qwen error code stands for."""
    return _STATUS.get(code.lower(), 502)


def reply_error(status: int, headers: Iterable[tuple[bytes, bytes]], body: bytes) -> Error | None:
    """The Error of a reply that is not an event stream, or None if it is one."""
    found = {name.lower(): value for name, value in headers}
    kind = found.get(b"content-type", b"").lower()
    if kind.startswith(b"text/event-stream") and status < 400:
        return None
    if kind.startswith(b"text/html") or body.lstrip()[:1] == b"<" or b"RGV587_ERROR" in body:
        return Error("chat.qwen.ai answered with its bot check (WAF) instead of the API: the "
                     "browser headers or cookies were refused", "waf_challenge", 403)
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    data = doc.get("data") if isinstance(doc, dict) else None
    code = data.get("code") if isinstance(data, dict) else None
    actual = found.get(b"x-actual-status-code", b"").strip()
    real = int(actual) if actual.isdigit() else (status if status >= 400 else None)
    if not isinstance(code, str):
        return Error(f"chat.qwen.ai answered {status} without an event stream", "upstream_error",
                     real or 502)
    details = data.get("details") if isinstance(data, dict) else None
    message = details if isinstance(details, str) and details else code
    return Error(message, code, real or status_of(code))


class QwenStreamDecoder(EventDecoder):
    """See the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self._began = False
        self._answered = False
        self._summary = ""
        self._usage_chunk = b""

    def answer_began(self) -> bool:
        return self._answered

    def end_answer(self) -> None:
        self._end("stop")

    def on_data(self, data: bytes) -> None:
        if data == b"[DONE]":
            if self._answered:
                self._end("stop")
            return
        if self._began and self.copy_raw and self._fast(data):
            return
        try:
            doc = json.loads(data)
        except ValueError:
            return
        if isinstance(doc, dict):
            self._document(doc, data)

    def _fast(self, data: bytes) -> bool:
        at = data.find(_PREFIX)
        if at <= 0 or data.count(b'"delta":') != 1:
            return False
        begin = at + len(_PREFIX)
        end = data.find(b'"', begin)
        raw: bytes | None = data[begin:end]
        if end < 0 or (raw is not None and b"\\" in raw):
            raw = jsonbytes.string_at(data, begin)  # finds the real end, checks the escapes
        if raw is None:
            return False
        for closer, kind in _CLOSERS:
            if data.startswith(closer, begin + len(raw)):
                if kind is TextDelta:
                    self._answered = True
                if raw:
                    self.out.append(kind(raw))
                if b'"usage":' in data:
                    self._usage_chunk = data
                return True
        return False

    def _document(self, doc: dict[str, Any], data: bytes) -> None:
        created = doc.get("response.created")
        if isinstance(created, dict):
            self._began = True
            self.out.append(Started(*(str(created.get(key) or "") for key in
                                       ("response_id", "model", "chat_id", "parent_id"))))
            return
        error = doc.get("error")
        if isinstance(error, dict):
            code = str(error.get("code") or "upstream_error")
            details = error.get("details") or error.get("message")
            self.fail(details if isinstance(details, str) and details else code, code,
                       status_of(code))
            return
        if "response.stopped" in doc:
            self._end("stop")
            return
        if isinstance(doc.get("usage"), dict):
            self._usage_chunk = data
        choices = doc.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if isinstance(delta, dict):
            self._delta(delta)

    def _delta(self, delta: dict[str, Any]) -> None:
        phase = delta.get("phase")
        content = delta.get("content")
        text = content if isinstance(content, str) else ""
        if phase == "think":
            if text:
                self.out.append(ReasoningDelta(jsonbytes.escape(text)))
        elif phase == "thinking_summary":
            self._summary_snapshot(delta.get("extra"))
        elif phase not in _HIDDEN_PHASES:
            self._answered = True
            if text:
                self.out.append(TextDelta(jsonbytes.escape(text)))
            if phase == "answer" and delta.get("status") == "finished":
                self._end("stop")

    def _summary_snapshot(self, extra: Any) -> None:
        thought = extra.get("summary_thought") if isinstance(extra, dict) else None
        parts = thought.get("content") if isinstance(thought, dict) else None
        if not isinstance(parts, list):
            return
        snapshot = "\n\n".join(part for part in parts if isinstance(part, str))
        if snapshot.startswith(self._summary):
            added = snapshot[len(self._summary):]
        else:
            added = "\n\n" + snapshot
        self._summary = snapshot
        if added:
            self.out.append(ReasoningDelta(jsonbytes.escape(added), True))

    def _end(self, reason: str) -> None:
        self.closed = True
        if self._usage_chunk:
            try:
                usage = usage_of(json.loads(self._usage_chunk).get("usage"))
            except (ValueError, AttributeError):
                usage = None
            if usage is not None:
                self.out.append(usage)
        self.out.append(Finish(reason))
