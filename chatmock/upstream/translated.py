"""A provider's stream, read as if the Codex backend had sent it.

`TranslatedResponse` wraps the open response of a provider (a chat-completions
server, the Qwen web API) and yields, read for read, the Codex Responses
events its body stands for: the provider's decoder
(`chat_upstream_stream.ChatStreamDecoder`, `qwen_stream.QwenStreamDecoder`)
turns bytes into neutral events, `responses_encoder.ResponsesEncoder` turns
those into Responses SSE. Routes relay or collect it exactly like a Codex
stream (`routes/relay.py`), so no dialect translator knows which provider
answered. A body cut short (the connection closed before its end) aborts the
answer; the end of a complete body finishes it (with or without `[DONE]`).
"""

from __future__ import annotations

from collections.abc import Callable

from chatmock.dialects.provider_events import TRUNCATED_MESSAGE, Event, EventDecoder
from chatmock.dialects.responses_encoder import ResponsesEncoder
from chatmock.net.response import UpstreamResponse


class TranslatedResponse(UpstreamResponse):
    """See the module docstring. `on_event` sees every decoded event (Qwen keeps its
    chat's parent id from `Started`)."""

    def __init__(self, inner: UpstreamResponse, decoder: EventDecoder,
                 encoder: ResponsesEncoder,
                 on_events: Callable[[list[Event]], None] | None = None) -> None:
        super().__init__(inner.status, inner.headers, inner._read_timeout)
        self.inner = inner
        self.decoder = decoder
        self.encoder = encoder
        self.on_events = on_events
        self._ended = False

    def _encode(self, events: list[Event]) -> bytes:
        if self.on_events is not None and events:
            self.on_events(events)
        return self.encoder.encode(events)

    async def receive(self, heartbeat: float | None = None) -> bytes | None:
        """The Codex events the provider's next read stands for; b"" while it is silent
        (the route's heartbeat), the decoder's tail once its body ends, then None."""
        while not self._ended:
            read = await self.inner.receive(heartbeat)
            if read is None:
                return self._finish() or None
            if not read:
                return b""
            data = self._encode(self.decoder.feed(read))
            if data:
                return data
        return None

    def _finish(self) -> bytes:
        """The last events: a complete body finishes the answer, a cut one aborts it."""
        self._ended = True
        self.complete = self.inner.complete
        return self._encode(self.decoder.finish() if self.inner.complete
                            else self.decoder.abort(TRUNCATED_MESSAGE, "upstream_truncated"))
