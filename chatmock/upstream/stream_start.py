"""A usage limit the backend says inside a 200 stream, before anything was answered.

The backend refuses a spent account with a 429 most of the time, but it can
also open the stream (200) and say it there as the first event after
`response.created`, in the shapes the Codex CLI reads:

* `response.failed` whose `response.error` has the code (or type)
  `usage_limit_reached` / `usage_not_included` (the CLI's
  `is_usage_not_included` and friends, codex-api `sse/responses.rs`);
* an `error` event wrapping the HTTP refusal, `{"type": "error", "status": 429,
  "error": {"type": "usage_limit_reached", ...}, "headers": {...}}` (the CLI's
  `parse_wrapped_websocket_error_event`).

With several accounts, `read_start` reads the stream ahead until its first
event that is not `response.created` / `response.in_progress` (or the end, or
`QUIET_SECONDS` of silence, or `MAX_HELD` bytes) before anything reaches the
client. A usage limit found there becomes the same `UpstreamError` 429 as the
HTTP one, so the pool cools the account down and fails over: nothing was
streamed yet. Otherwise the bytes read ahead are handed out first by
`HeldStart`, and the relay sees the stream unchanged.
"""

from __future__ import annotations

import json
from typing import Any

from chatmock.dialects.sse import SSEDecoder
from chatmock.net.response import UpstreamResponse

QUIET_SECONDS = 0.5
MAX_HELD = 64 * 1024
PREAMBLE = frozenset({"response.created", "response.in_progress"})
LIMIT_CODES = frozenset({"usage_limit_reached", "usage_not_included"})


class HeldStart(UpstreamResponse):
    """`inner`, whose first bytes (`held`) were already read: they come first."""

    def __init__(self, inner: UpstreamResponse, held: bytes, ended: bool) -> None:
        super().__init__(inner.status, inner.headers, inner._read_timeout)
        self.inner = inner
        self._held = held
        self._ended = ended
        self.complete = inner.complete

    async def receive(self, heartbeat: float | None = None) -> bytes | None:
        if self._held:
            data, self._held = self._held, b""
            return data
        if self._ended:
            return None
        read = await self.inner.receive(heartbeat)
        if read is None:
            self._ended = True
            self.complete = self.inner.complete
        return read


async def read_start(response: UpstreamResponse) -> tuple[HeldStart, dict[str, Any] | None]:
    """The stream with its start held, and the usage-limit refusal found there (the
    wrapped error's fields: `error`, and `headers` when the event carries them)."""
    decoder = SSEDecoder(max_event_bytes=MAX_HELD)
    held: list[bytes] = []
    size = 0
    while size < MAX_HELD:
        data = await response.receive(QUIET_SECONDS)
        if data is None:
            return HeldStart(response, b"".join(held), True), None
        if not data:
            break
        held.append(data)
        size += len(data)
        for event in decoder.feed(data):
            document = _json(event.data)
            kind = document.get("type") if isinstance(document, dict) else None
            if kind in PREAMBLE:
                continue
            return HeldStart(response, b"".join(held), False), usage_limit(document)
    return HeldStart(response, b"".join(held), False), None


def usage_limit(document: Any) -> dict[str, Any] | None:
    """`{"error": {...}, "headers": {...}}` when `document` (one event) says the
    account's usage limit was reached; None for any other event."""
    if not isinstance(document, dict):
        return None
    if document.get("type") == "response.failed":
        response = document.get("response")
        error = response.get("error") if isinstance(response, dict) else None
        return {"error": error} if _limit(error) else None
    if document.get("type") != "error":
        return None
    error = document.get("error")
    if not _limit(error):
        return None
    headers = document.get("headers")
    return {"error": error, "headers": headers if isinstance(headers, dict) else {}}


def _limit(error: Any) -> bool:
    return isinstance(error, dict) and (error.get("code") in LIMIT_CODES
                                        or error.get("type") in LIMIT_CODES)


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None
