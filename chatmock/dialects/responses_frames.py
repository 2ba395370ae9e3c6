"""Codex Responses events back to a WebSocket client: one text frame per event.

The WebSocket route (`routes/responses_ws.py`) serves through the same
`relay` loop as the HTTP routes, and `relay` moves bytes: one upstream read
in, one write out. So `EventFrames` writes its frames as a byte sequence that
the route's frame Responder cuts back into frames: each frame's text preceded
by an RS byte (0x1E), the separator of JSON text sequences (RFC 7464) chosen
for the same reason -- no JSON text contains it (control characters inside
strings must be escaped). A backend event that is not valid JSON and holds a
raw RS anyway gets it escaped, so that one event is still one frame.

What becomes a frame: each event the backend sent, as the client gets it
(`ResponsesObserver.relayed`: as sent, or with the client's tool names),
terminal event included; a stream cut short (its body ended early, or the
upstream broke: a timeout, a reset) ends instead with one error frame of ours,
`{"type": "error", "status_code": N, "error": {...}}`, N being the upstream
error's status (502 for a body that just ended). A stream has exactly one
terminal event (`machine.LIFECYCLE`), so it ends with exactly one terminal frame.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar

from chatmock.dialects.machine import State
from chatmock.dialects.responses_stream import ResponsesObserver
from chatmock.dialects.sse import SSEEvent
from chatmock.dialects.tool_names import NameMap
from chatmock.errors import UpstreamError

SEPARATOR = b"\x1e"
_ESCAPED_SEPARATOR = b"\\u001e"
Headers = tuple[tuple[bytes, bytes], ...]


def error_frame(status: int, message: str, code: str | None, headers: Headers = (),
                param: str | None = None) -> str:
    """Our error frame: a refused request, or a stream cut short."""
    frame: dict[str, Any] = {"type": "error", "status_code": status,
                             "error": {"message": message, "code": code}}
    if param:  # the request field the error is about, as in OpenAI's error objects
        frame["error"]["param"] = param
    if headers:  # e.g. retry-after of a 429
        frame["headers"] = {name.decode("latin-1"): value.decode("latin-1")
                            for name, value in headers}
    return json.dumps(frame)


def framed(text: bytes) -> bytes:
    """One frame's text, ready to join others (see the module docstring)."""
    if SEPARATOR in text:
        text = text.replace(SEPARATOR, _ESCAPED_SEPARATOR)
    return SEPARATOR + text


def frames_of(data: bytes) -> list[str]:
    """The frames' texts in what `EventFrames` wrote (any number of whole frames)."""
    return [text.decode("utf-8", "replace") for text in data.split(SEPARATOR)[1:]]


class EventFrames(ResponsesObserver):
    """Watches the stream exactly as the HTTP route does (the turn noted on success, for
    the route to store before the terminal frame) and writes each event as one frame."""

    skip_events: ClassVar[tuple[bytes, ...]] = ()  # every event becomes a frame

    def __init__(self, tool_names: NameMap,
                 on_success: Callable[[ResponsesObserver], None] | None = None) -> None:
        super().__init__(relay=False, on_success=on_success, tool_names=tool_names)
        self.cut_status = 502  # a body that ended before its terminal event

    def dispatch(self, event: SSEEvent) -> None:
        if self.state is State.STREAMING and event.data != b"[DONE]":
            self.out.append(framed(self.relayed(event)))
        super().dispatch(event)

    def upstream_failed(self, error: UpstreamError) -> bytes:
        self.cut_status = error.status
        return self.abort(error.message, error.code or "upstream_error")

    def on_cut(self, message: str, code: str) -> None:
        super().on_cut(message, code)
        self.out.append(framed(error_frame(self.cut_status, message, code).encode()))
