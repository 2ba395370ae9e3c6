"""A finished Responses turn, stored before the client learns that it finished.

The observer sees the terminal event (`response.completed`) while translating,
synchronously; storing may wait (Redis in fleet mode is a round trip). A client
may send its next, chained request the moment it reads that event, and to any
process of the fleet; so the turn is stored first and the event written after:
`PendingTurn.finished` is the observer's `on_success`, `stored()` is awaited
before the terminal bytes go out (`before_end` wraps the route's Responder so that
its `end`, or a collected answer's `respond`, does that; on HTTP and on the
WebSocket, whose Responder writes frames, alike).

`parse_with_store` is the other end of a turn's life: a request that chains on one
(or replays its items) is parsed with what the store returns for it, on HTTP and on
the WebSocket alike.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from chatmock.app import App
from chatmock.dialects.input_repair import store_query
from chatmock.dialects.options import Options
from chatmock.dialects.responses import ResponsesRequest, parse_responses_request, stored_turn
from chatmock.dialects.responses_stream import ResponsesObserver
from chatmock.server.exchange import HeaderList, Responder
from chatmock.turns import StoredResponse

log = logging.getLogger("chatmock.responses")


class PendingTurn:
    """The turn of one request, from its terminal event until it is stored."""

    def __init__(self, app: App, request: ResponsesRequest) -> None:
        self.app = app
        self.request = request
        self.entry: StoredResponse | None = None

    def finished(self, observer: ResponsesObserver) -> None:
        self.entry = stored_turn(observer.response_id, self.request, observer.output_items(),
                                 time.time())

    async def stored(self) -> None:
        """Store the finished turn, if there is one not stored yet."""
        entry, self.entry = self.entry, None
        if entry is not None:
            await self.app.responses_store.put(entry)

    def before_end(self, out: Responder) -> Responder:
        return _StoredFirst(out, self)


class _StoredFirst:
    """A Responder whose last write first stores the pending turn. The terminal event
    always leaves through `end` (the relay ends the response on it), so `send`, the
    per-read path, is the wrapped Responder's own: no extra call per write."""

    def __init__(self, out: Responder, turn: PendingTurn) -> None:
        self._out = out
        self._turn = turn
        self.send: Callable[[bytes], Coroutine[Any, Any, None]] = out.send

    @property
    def extra_headers(self) -> list[tuple[bytes, bytes]]:
        return self._out.extra_headers

    @extra_headers.setter
    def extra_headers(self, value: list[tuple[bytes, bytes]]) -> None:
        self._out.extra_headers = value

    @property
    def status(self) -> int:
        return self._out.status

    @status.setter
    def status(self, value: int) -> None:
        self._out.status = value

    @property
    def started(self) -> bool:
        return self._out.started

    @property
    def client_gone(self) -> bool:
        return self._out.client_gone

    async def respond(self, status: int, headers: HeaderList, body: bytes) -> None:
        await self._turn.stored()
        await self._out.respond(status, headers, body)

    async def start(self, status: int, headers: HeaderList) -> None:
        await self._out.start(status, headers)

    async def end(self, data: bytes = b"") -> None:
        await self._turn.stored()
        await self._out.end(data)


async def parse_with_store(app: App, body: Any) -> ResponsesRequest:
    """Parse a Responses body with what it needs from the local store (a turn to chain
    on, items to restore): one look-up (a worker thread for SQLite, a round trip for Redis)."""
    query = store_query(body)
    stored = await app.responses_store.look_up(query) if query else None
    parsed = parse_responses_request(body, app.catalog, Options.of(app.settings), stored)
    if parsed.dropped:
        log.debug("dropped reasoning items without encrypted content that chatmock did not "
                  "stream (or that expired): %s", ", ".join(parsed.dropped))
    return parsed

