"""The neutral events a provider's stream decodes into.

Every upstream other than the Codex backend (chat-completions servers:
`chat_upstream_stream`; the Qwen web API: `qwen_stream`) is decoded into this
small vocabulary, which one adapter per dialect turns into that dialect's
output, so that no dialect translator knows any provider.

Order within one stream: `Started` first (when the provider names its
response), then any mix of `ReasoningDelta`, `ReasoningDetail`, `TextDelta`,
`ToolCallStart` / `ToolArgumentsDelta` (a call's start always precedes its
arguments; `call_index` counts calls from 0 in the order they started), at most
one `Usage` per chunk that carried one (the last one wins), and at most one
terminal event, `Finish` or `Error`, after which nothing follows.

Strings that go straight into outgoing JSON (`raw` fields) are the escaped
content of a JSON string, without its quotes, copied from the upstream's
bytes where that is safe (see `jsonbytes`); `jsonbytes.decode_string(raw)`
gives the text. They are events, not dataclasses, because one is made per
delta: NamedTuples are the cheapest objects Python builds.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, NamedTuple

from chatmock import jsonbytes
from chatmock.dialects.sse import SSEDecoder


class Started(NamedTuple):
    """The provider's id for this answer (and, for Qwen, its chat and parent ids)."""

    response_id: str
    model: str = ""
    chat_id: str = ""
    parent_id: str = ""


class TextDelta(NamedTuple):
    raw: bytes


class ReasoningDelta(NamedTuple):
    """Reasoning text; `summary` when the provider gives a summary of it rather than the
    thinking itself (OpenRouter's `reasoning.summary` details, Qwen's thinking_summary)."""

    raw: bytes
    summary: bool = False


class ReasoningDetail(NamedTuple):
    """One OpenRouter `reasoning_details` item, kept whole: it goes back to OpenRouter on
    the next turn (`chat_upstream_request.pack_reasoning_details`)."""

    detail: dict[str, Any]


class ToolCallStart(NamedTuple):
    call_index: int
    call_id: str
    name: str


class ToolArgumentsDelta(NamedTuple):
    call_index: int
    raw: bytes


class Usage(NamedTuple):
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost: float | None = None


class Finish(NamedTuple):
    """The answer is complete. `reason`: stop, length, tool_calls, content_filter, or what
    else the provider said (a missing finish reason reads as stop, or tool_calls)."""

    reason: str


class Error(NamedTuple):
    """The answer failed. `status` is the HTTP status the failure stands for, when known
    (an in-stream rate limit is 429 even though the stream's status was 200)."""

    message: str
    code: str = "upstream_error"
    status: int | None = None


Event = (Started | TextDelta | ReasoningDelta | ReasoningDetail | ToolCallStart
         | ToolArgumentsDelta | Usage | Finish | Error)

EMPTY_MESSAGE = "the provider's stream ended without an answer"
TRUNCATED_MESSAGE = "the provider's stream ended before the answer was complete"


def count(parent: Any, key: str) -> int | None:
    """A token count, or None when missing or not a whole number (never an exception)."""
    value = parent.get(key) if isinstance(parent, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return int(value)
    except (OverflowError, ValueError):
        return None


class EventDecoder(ABC):
    """The sans-I/O surface every provider stream decoder shares.

    `feed(bytes)` returns the events the bytes completed, `finish()` those the end of
    the body completes (`answer_ended` says whether the answer was complete: then
    `end_answer()` runs, else the stream was empty and fails), `abort(message)` a
    failure if the stream was still open. Subclasses handle one SSE `data` payload in
    `on_data`; `copy_raw` says whether every byte of it was checked safe to copy into
    outgoing JSON (`jsonbytes.safe_to_copy`, as `UpstreamTranslator` does)."""

    def __init__(self) -> None:
        self._sse = SSEDecoder()
        self.out: list[Event] = []
        self.copy_raw = True
        self.closed = False

    def feed(self, chunk: bytes) -> list[Event]:
        safe = jsonbytes.safe_to_copy(chunk)
        self.copy_raw = safe and (self.copy_raw or not self._sse.buffered)
        for event in self._sse.feed(chunk):
            if not self.closed:
                self.on_data(event.data)
        return self._drain()

    def finish(self) -> list[Event]:
        """The body ended: the answer is complete, unless it never began."""
        self.copy_raw = False  # the tail's bytes were never checked as a whole
        for event in self._sse.finish():
            if not self.closed:
                self.on_data(event.data)
        if not self.closed:
            if self.answer_began():
                self.end_answer()
            else:
                self.fail(EMPTY_MESSAGE, "empty_response", 502)
        return self._drain()

    def abort(self, message: str, code: str = "upstream_error") -> list[Event]:
        """The body broke off (timeout, reset): the answer failed, if it was still open."""
        if not self.closed:
            self.fail(message, code, None)
        return self._drain()

    def fail(self, message: str, code: str, status: int | None) -> None:
        self.closed = True
        self.out.append(Error(message, code, status))

    def _drain(self) -> list[Event]:
        out = self.out
        self.out = []
        return out

    @abstractmethod
    def on_data(self, data: bytes) -> None:
        """Handle one SSE data payload."""

    @abstractmethod
    def answer_began(self) -> bool:
        """Whether anything of an answer arrived (else an ended stream is an empty one)."""

    @abstractmethod
    def end_answer(self) -> None:
        """The answer is complete: add its last events (and set `closed`)."""
