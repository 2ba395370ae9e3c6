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

from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing

from chatmock.dialects.provider_events import TRUNCATED_MESSAGE, Event, EventDecoder
from chatmock.dialects.responses_encoder import ResponsesEncoder
from chatmock.net.client import UpstreamResponse


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

    async def chunks(self, heartbeat: float | None = None) -> AsyncGenerator[bytes, None]:
        async with aclosing(self.inner.chunks(heartbeat)) as reads:
            async for read in reads:
                if not read:
                    yield b""  # the provider is silent: the route's heartbeat
                    continue
                data = self._encode(self.decoder.feed(read))
                if data:
                    yield data
        self.complete = self.inner.complete
        if self._ended:
            return
        self._ended = True
        tail = self._encode(self.decoder.finish() if self.inner.complete
                            else self.decoder.abort(TRUNCATED_MESSAGE, "upstream_truncated"))
        if tail:
            yield tail
