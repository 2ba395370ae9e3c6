"""Codex Responses events back to a Responses client: relayed as they are.

The backend already speaks the client's dialect, so a streamed answer is
passed through byte for byte: `feed` returns each read unchanged. The
observer still watches the few structural events (created, item done,
terminal) to know the response id and output items, which the local
`previous_response_id` store keeps, and to build the response object of a
non-streamed reply. Text deltas are not even looked at: they are not in its
handler table.

When the backend's stream breaks off before a terminal event, an `error`
event is appended so the client is never left with a silent success.

When the request's tool names were renamed for the backend
(`chatmock.dialects.tool_names`), `RenamingRelay` relays instead: every
event is re-framed, and the few that name tools (items added or done, the
response objects, `*_arguments.done`) are parsed and carry the client's names
again; deltas are copied unparsed. Only such requests pay for it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, ClassVar

from chatmock import jsonbytes
from chatmock.dialects.events import Handler, UpstreamTranslator, load, raw_field
from chatmock.dialects.machine import State
from chatmock.dialects.sse import SSEEvent
from chatmock.dialects.tool_names import NameMap, restore_event

Item = dict[str, Any]
_NAMING_EVENTS = frozenset({
    b"response.created", b"response.in_progress", b"response.output_item.added",
    b"response.output_item.done", b"response.completed", b"response.incomplete",
    b"response.failed", b"response.function_call_arguments.done",
    b"response.custom_tool_call_input.done"})


class ResponsesObserver(UpstreamTranslator):
    """Relays (or collects) a Responses stream and remembers what it produced."""

    handlers: ClassVar[dict[bytes, Handler]] = {
        kind: handler for kind, handler in UpstreamTranslator.handlers.items()
        if kind in (b"response.created", b"response.output_item.done", b"response.completed",
                    b"response.incomplete", b"response.failed", b"error")}
    # The bulk of a stream; relayed as bytes, never looked into.
    skip_events: ClassVar[tuple[bytes, ...]] = (
        b"response.output_text.delta", b"response.reasoning_summary_text.delta",
        b"response.reasoning_text.delta", b"response.function_call_arguments.delta",
        b"response.custom_tool_call_input.delta", b"response.in_progress",
        b"response.output_item.added", b"response.content_part.added",
        b"response.content_part.done", b"response.output_text.done")
    copies_raw: ClassVar[bool] = False

    def __init__(self, *, relay: bool,
                 on_success: Callable[[ResponsesObserver], None] | None = None,
                 tool_names: NameMap | None = None) -> None:
        super().__init__()
        if tool_names:
            self.tool_names = tool_names
        self.relay = relay
        # Called at the terminal event, before its bytes go to the client: a chained
        # request sent the moment the client sees `response.completed` must find the turn.
        self.on_success = on_success
        self.response_id = ""
        self.created: dict[str, Any] = {}
        self.output: list[Item] = []
        self.response: dict[str, Any] | None = None
        self.created_at = time.time()

    def feed(self, chunk: bytes) -> bytes:
        translated = super().feed(chunk)
        return chunk + translated if self.relay else translated

    def relayed(self, event: SSEEvent) -> bytes:
        """An event's JSON as the client gets it: as sent, or with the client's tool names."""
        if not self.tool_names:
            return event.data
        kind = event.event or raw_field(event.data, b'"type"') or b""
        document = load(event.data) if kind in _NAMING_EVENTS else None
        return jsonbytes.dumps(restore_event(document, self.tool_names)) if document \
            else event.data

    def on_created(self, response: dict[str, Any]) -> None:
        self.created = response
        self.response_id = str(response.get("id") or "")

    def on_item_done(self, item: dict[str, Any]) -> None:
        self.output.append(item)

    def on_completed(self, response: dict[str, Any], incomplete: bool) -> None:
        self.response = response
        self.response_id = str(response.get("id") or self.response_id)
        if self.on_success is not None and self.response_id:
            self.on_success(self)

    def on_failed(self, message: str, code: str) -> None:
        self.error = (message, code)

    def on_cut(self, message: str, code: str) -> None:
        """A cut stream has no failure event of the backend's to relay: add one of ours."""
        self.on_failed(message, code)
        if self.relay:
            self.out.append(b"event: error\ndata: " + jsonbytes.dumps(
                {"type": "error", "code": code, "message": message, "param": None}) + b"\n\n")

    def final_response(self) -> dict[str, Any]:
        """The response object of a non-streamed reply (output rebuilt if the event lacked it)."""
        response = dict(self.response or self.created)
        if not response.get("output"):
            response["output"] = self.output
        return response

    def output_items(self) -> list[Item]:
        final = (self.response or {}).get("output")
        return final if isinstance(final, list) and final else self.output


class RenamingRelay(ResponsesObserver):
    """The relay of a request whose tool names were renamed (see the module docstring)."""

    skip_events: ClassVar[tuple[bytes, ...]] = ()  # every event is re-framed

    def __init__(self, *, tool_names: NameMap,
                 on_success: Callable[[ResponsesObserver], None] | None = None) -> None:
        super().__init__(relay=True, on_success=on_success, tool_names=tool_names)

    def feed(self, chunk: bytes) -> bytes:
        return UpstreamTranslator.feed(self, chunk)  # the re-framed events, not the chunk

    def dispatch(self, event: SSEEvent) -> None:
        if self.state is State.STREAMING:
            lines = self.relayed(event).split(b"\n")
            head = b"event: " + event.event + b"\n" if event.event else b""
            self.out.append(head + b"".join(b"data: " + line + b"\n" for line in lines) + b"\n")
        super().dispatch(event)


def observer_for(*, relay: bool, tool_names: NameMap,
                 on_success: Callable[[ResponsesObserver], None] | None = None,
                 ) -> ResponsesObserver:
    """The observer of one Responses request: a byte-for-byte relay unless it renamed tools."""
    if relay and tool_names:
        return RenamingRelay(tool_names=tool_names, on_success=on_success)
    return ResponsesObserver(relay=relay, on_success=on_success, tool_names=tool_names)


def error_body(error: tuple[str, str]) -> bytes:
    message, code = error
    return json.dumps({"error": {"message": message, "type": "api_error", "param": None,
                                 "code": code}}).encode()
