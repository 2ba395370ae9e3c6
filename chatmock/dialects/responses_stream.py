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
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, ClassVar

from chatmock import jsonbytes
from chatmock.dialects.events import Handler, UpstreamTranslator

Item = dict[str, Any]


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
                 on_success: Callable[[ResponsesObserver], None] | None = None) -> None:
        super().__init__()
        self.relay = relay
        # Called at the terminal event, before its bytes go to the client: a chained
        # request sent the moment the client sees `response.completed` must find the turn.
        self.on_success = on_success
        self.response_id = ""
        self.created: dict[str, Any] = {}
        self.output: list[Item] = []
        self.response: dict[str, Any] | None = None
        self.error: tuple[str, str] | None = None
        self.created_at = time.time()

    def feed(self, chunk: bytes) -> bytes:
        translated = super().feed(chunk)
        return chunk + translated if self.relay else translated

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


def error_body(error: tuple[str, str]) -> bytes:
    message, code = error
    return json.dumps({"error": {"message": message, "type": "api_error", "param": None,
                                 "code": code}}).encode()
