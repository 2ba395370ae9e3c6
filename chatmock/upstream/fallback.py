"""The backend's Responses stream, sent again without the tools chatmock added.

`--enable-web-search` (and a request's `responses_tools`) add web-search tools
to a chat request. Where the backend refuses them (a plan or model without
them), the request is sent once more with only the client's own tools, so the
answer still comes; if that is refused too, the client learns why the first
one was (its message) with the second's status. A refusal that no other tools
would change (401, 429, any 5xx) is not retried, nor is anything once the
stream has opened.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

from chatmock.errors import UpstreamError
from chatmock.net.response import UpstreamResponse

Headers = tuple[tuple[bytes, bytes], ...]


class ResponsesBackend(Protocol):
    """What this needs of a backend (`upstream.codex.CodexBackend`)."""

    def responses(self, payload: dict[str, Any], session_id: str, forwarded: Headers = (), *,
                  affinity: tuple[str, ...] = (),
                  ) -> AbstractAsyncContextManager[UpstreamResponse]: ...


@asynccontextmanager
async def open_responses(backend: ResponsesBackend, payload: dict[str, Any], session: str,
                         forwarded: Headers = (), *, fallback: dict[str, Any] | None = None,
                         affinity: tuple[str, ...] = ()) -> AsyncIterator[UpstreamResponse]:
    """`backend.responses(payload, ...)`; if refused and a `fallback` payload is given
    (the request without chatmock's tools), that one instead (see the module doc).
    `affinity` goes to both attempts (the account pool's keys of a WebSocket)."""
    opened = False
    try:
        async with backend.responses(payload, session, forwarded, affinity=affinity) as upstream:
            opened = True
            yield upstream
            return
    except UpstreamError as exc:
        if opened or fallback is None or exc.status in (401, 429) or exc.status >= 500:
            raise
        first = exc
    opened = False
    try:
        async with backend.responses(fallback, session, forwarded, affinity=affinity) as upstream:
            opened = True
            yield upstream
    except UpstreamError as exc:
        if opened:
            raise
        raise UpstreamError(first.message, status=exc.status,
                            code="RESPONSES_TOOLS_REJECTED") from None
