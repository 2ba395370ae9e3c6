"""Every collector: a whole answer gathered for a non-streamed reply.

A collector is a translator (`events.UpstreamTranslator`) that writes nothing
while the stream lasts: it keeps text, reasoning, tool calls and usage (escaped
as they came, decoded once at the end), and its dialect renders the answer from
it afterwards (`chat_stream.chat_completion`, `completions.text_completion`,
`ollama_stream.chat_object` / `generate_object`, `anthropic_stream.message_object`).
A failure inside the stream is kept as `error` (message, code); the route raises
it with its dialect's status (routes/answer.py). The Responses API's collector is
`responses_stream.ResponsesObserver`, which also relays.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from chatmock import jsonbytes
from chatmock.dialects.anthropic_stream import Blocks
from chatmock.dialects.chat_stream import chat_annotations, message_text, shifted
from chatmock.dialects.events import TOOL_CALLS, UpstreamTranslator, arguments_of
from chatmock.dialects.machine import Paragraphs
from chatmock.dialects.ollama_stream import Clock, Timing

_NEWLINE = b"\\n"


class ResponseCollector(UpstreamTranslator):
    """Collects a whole answer (text, reasoning, tool calls, usage) for non-stream replies.

    Text and reasoning stay escaped while collecting and are decoded once at
    the end; the dialect renders the result.
    """

    def __init__(self) -> None:
        super().__init__()
        self.response_id = ""
        self._text: list[bytes] = []
        self._summary: list[bytes] = []
        self._full_reasoning: list[bytes] = []
        self._paragraphs = Paragraphs()
        self._separator_due = False
        self.tool_calls: list[dict[str, Any]] = []
        self.annotations: list[dict[str, Any]] = []  # in Chat's shape, indices into `text`
        self.response: dict[str, Any] = {}
        self.incomplete = False

    def on_created(self, response: dict[str, Any]) -> None:
        self.response_id = str(response.get("id") or "")

    def on_item_added(self, item: dict[str, Any]) -> None:
        if item.get("type") == "message" and self._text:
            self._separator_due = True

    def on_text(self, raw: bytes) -> None:
        if self._separator_due:
            self._separator_due = False
            self._text.append(_NEWLINE + _NEWLINE)
        self._text.append(raw)

    def on_summary_part(self) -> None:
        if self._paragraphs.part():
            self._summary.append(_NEWLINE)

    def on_reasoning(self, raw: bytes, summary: bool) -> None:
        (self._summary if summary else self._full_reasoning).append(raw)

    def on_item_done(self, item: dict[str, Any]) -> None:
        found = chat_annotations(item, 0) if item.get("type") == "message" else []
        if found:  # the item's text ends the text so far (decoded once per such item)
            self.annotations += shifted(found, len(self.text) - len(message_text(item)))
        if item.get("type") in TOOL_CALLS:
            self.tool_calls.append({"id": item.get("call_id") or item.get("id") or "",
                                    "name": item.get("name") or "",
                                    "arguments": arguments_of(item)})

    def on_completed(self, response: dict[str, Any], incomplete: bool) -> None:
        self.response = response
        self.incomplete = incomplete
        self.response_id = str(response.get("id") or self.response_id)

    def on_failed(self, message: str, code: str) -> None:
        self.error = (message, code)

    @property
    def text(self) -> str:
        return jsonbytes.decode_string(b"".join(self._text))

    @property
    def summary(self) -> str:
        return jsonbytes.decode_string(b"".join(self._summary))

    @property
    def full_reasoning(self) -> str:
        return jsonbytes.decode_string(b"".join(self._full_reasoning))


class OllamaCollector(ResponseCollector):
    """`ResponseCollector` plus the timing marks of the final fields."""

    def __init__(self, *, started: int | None = None, clock: Clock = time.monotonic_ns) -> None:
        super().__init__()
        self.timing = Timing(started, clock)

    def on_created(self, response: dict[str, Any]) -> None:
        self.timing.mark_created()
        super().on_created(response)

    def on_text(self, raw: bytes) -> None:
        self.timing.mark_output()
        super().on_text(raw)

    def on_reasoning(self, raw: bytes, summary: bool) -> None:
        self.timing.mark_output()
        super().on_reasoning(raw, summary)

    def on_item_done(self, item: dict[str, Any]) -> None:
        if item.get("type") in TOOL_CALLS:
            self.timing.mark_output()
        super().on_item_done(item)


@dataclass
class CollectedBlock:
    kind: str
    meta: dict[str, Any]
    pieces: list[bytes] = field(default_factory=list)
    signature: str = ""


class MessagesCollector(Blocks):
    """Collects a whole answer as content blocks (thinking included; `message_object`
    drops it unless asked) for a non-stream reply. Deltas stay escaped until the end."""

    def __init__(self, *, account_tag: str = "") -> None:
        super().__init__(thinking=True, account_tag=account_tag)
        self.response_id = ""
        self.blocks: list[CollectedBlock] = []
        self.response: dict[str, Any] = {}
        self.incomplete = False

    def _begin(self, kind: str, block: dict[str, Any]) -> None:
        self.blocks.append(CollectedBlock(kind, block))

    def _append(self, raw: bytes) -> None:
        self.blocks[-1].pieces.append(raw)

    def _end(self, signature: str | None) -> None:
        if signature is not None:
            self.blocks[-1].signature = signature

    def on_created(self, response: dict[str, Any]) -> None:
        self.response_id = str(response.get("id") or "")

    def on_completed(self, response: dict[str, Any], incomplete: bool) -> None:
        self._close()
        self.response = response
        self.incomplete = incomplete
        self.response_id = str(response.get("id") or self.response_id)

    def on_failed(self, message: str, code: str) -> None:
        self.error = (message, code)
