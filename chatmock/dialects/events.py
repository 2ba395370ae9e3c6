"""The Codex Responses event stream, as seen by every dialect's translator.

`UpstreamTranslator` is a sans-I/O state machine: `feed(bytes)` takes what one
network read brought, `finish()` marks the end of the body, and both return
the bytes to write to the client (all of them in one piece, so one upstream
read becomes one client write). It decodes SSE, classifies each event by its
type and calls one `on_*` hook; subclasses render a dialect.

States and moves (`machine.LIFECYCLE`, which raises on any other move; an
event of a type not handled is ignored, never an error, because the backend
adds event types over time):

    STREAMING --response.completed / .incomplete--> DONE (COMPLETE: success hooks)
    STREAMING --response.failed / error----------> DONE (FAIL: on_failed)
    STREAMING --end of body, or a broken one-----> DONE (CUT: on_cut, cut short)
    DONE      --any event------------------------> dropped before any move

The frequent events (text, reasoning and argument deltas) are handled on the
raw bytes: the `delta` string is located and handed over still escaped, ready
to be copied into outgoing JSON. Only rare, structural events (created,
item added/done, terminal) are parsed with `json.loads`; when the request's
tool names were renamed for the backend (`tool_names`), those parsed items
get the client's names back before any hook sees them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from typing import Any, ClassVar

from chatmock import jsonbytes
from chatmock.dialects.machine import LIFECYCLE, End, State
from chatmock.dialects.sse import SSEDecoder, SSEEvent
from chatmock.dialects.tool_names import NameMap, restore_item, restore_response
from chatmock.errors import UpstreamError

TRUNCATED_MESSAGE = "the backend's stream ended before the response was complete"


def raw_field(data: bytes, quoted_key: bytes, copy_raw: bool = True) -> bytes | None:
    """Escaped string member of an event, parsing the JSON only when the fast path can't
    (or must not: `copy_raw` False when the bytes were not checked safe to copy)."""
    if copy_raw:
        raw = jsonbytes.raw_string(data, quoted_key)
        if raw is not None:
            return raw
    try:
        value = json.loads(data).get(quoted_key[1:-1].decode())
    except (ValueError, AttributeError):
        return None
    return jsonbytes.escape(value) if isinstance(value, str) else None


def load(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def error_of(event: dict[str, Any]) -> tuple[str, str]:
    """(message, code) of a `response.failed` or `error` event."""
    response = event.get("response")
    error = response.get("error") if isinstance(response, dict) else None
    if not isinstance(error, dict):
        error = event.get("error") if isinstance(event.get("error"), dict) else event
    found: dict[str, Any] = error if isinstance(error, dict) else {}
    message = found.get("message")
    code = found.get("code") or found.get("type")
    return (message if isinstance(message, str) and message else "the backend failed the response",
            code if isinstance(code, str) else "upstream_error")


def failure_kind(code: str) -> str:
    """What an upstream failure code means to a client, whatever its dialect:
    `invalid_request` (this prompt cannot be served: beyond the context window, or
    flagged), `rate_limit` (usage limits, quotas, a plan without Codex), `overloaded`,
    `authentication`, or `api` (anything else, including a cut stream)."""
    lowered = code.lower()
    if "context_length" in lowered or lowered in _REFUSED_PROMPTS:
        return "invalid_request"
    if any(word in lowered for word in ("rate_limit", "usage_limit", "quota",
                                        "usage_not_included")):
        return "rate_limit"
    if any(word in lowered for word in ("overload", "server_error", "unavailable", "capacity",
                                        "slow_down")):
        return "overloaded"
    if any(word in lowered for word in ("auth", "api_key", "token_expired")):
        return "authentication"
    return "api"


_REFUSED_PROMPTS = frozenset({"invalid_prompt", "cyber_policy", "bio_policy"})


def content_filtered(response: dict[str, Any]) -> bool:
    """Was an incomplete response cut short by the content filter (not by length)?"""
    details = response.get("incomplete_details")
    return isinstance(details, dict) and details.get("reason") == "content_filter"


TOOL_CALLS = ("function_call", "custom_tool_call")
"""Output items every dialect shows as a tool call. A custom (freeform) tool's input
is not JSON, so its call carries the arguments `{"input": "<the freeform text>"}`.
(A tuple, not a set: an item's `type` may be any JSON value, lists included.)"""


def arguments_of(item: dict[str, Any]) -> str:
    """A tool call item's arguments as JSON text (`arguments`, else `parameters`/`input`;
    a custom tool call's freeform input as `{"input": …}`)."""
    if item.get("type") == "custom_tool_call":
        text = item.get("input")
        return json.dumps({"input": text if isinstance(text, str) else ""})
    for key in ("arguments", "parameters", "input"):
        value = item.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, dict):
            return json.dumps(value)
    return ""


def map_usage(usage: Any) -> dict[str, Any] | None:
    """Responses usage → Chat Completions usage (with the detail objects)."""
    if not isinstance(usage, dict):
        return None
    prompt = _count(usage, "input_tokens") or 0
    completion = _count(usage, "output_tokens") or 0
    mapped: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion,
                              "total_tokens": _count(usage, "total_tokens") or prompt + completion}
    cached = _count(usage.get("input_tokens_details"), "cached_tokens")
    if cached is not None:
        mapped["prompt_tokens_details"] = {"cached_tokens": cached}
    reasoning = _count(usage.get("output_tokens_details"), "reasoning_tokens")
    if reasoning is not None:
        mapped["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return mapped


def _count(parent: Any, key: str) -> int | None:
    """A token count, or None when it is missing or not a number (never an exception)."""
    value = parent.get(key) if isinstance(parent, dict) else None
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError, OverflowError):
        return None


Handler = Callable[["UpstreamTranslator", bytes], None]


@cache
def _skipped_blocks(kinds: tuple[bytes, ...]) -> tuple[bytes, ...]:
    """The first lines of the blocks of these event types: made once per translator class,
    not per stream (ten byte strings and their tuple for every open Responses stream)."""
    return tuple(b"event: " + kind + b"\n" for kind in kinds)


class UpstreamTranslator:
    """Base of every dialect translator; see the module docstring."""

    # Event type → handler; a subclass that needs fewer events narrows it (less work).
    handlers: ClassVar[dict[bytes, Handler]]
    # Event types not even worth decoding (skipped by their `event:` line), and whether
    # string values may be copied raw (then each read is checked for that first).
    skip_events: ClassVar[tuple[bytes, ...]] = ()
    copies_raw: ClassVar[bool] = True
    # How long the backend may stay silent before `relay` asks for `heartbeat()` bytes.
    # While the backend is silent (long reasoning), `heartbeat()` is written this often:
    # it keeps proxies from timing out and reveals a client that has gone away.
    heartbeat_seconds: ClassVar[float] = 15.0
    # Upstream tool name -> the client's, when the request renamed any (set per request).
    tool_names: NameMap = {}
    # What the stream ended with, for the access log: the terminal event's `usage`, and
    # the message of a failure (the backend's, or a stream cut short). Set once, at the end.
    usage: Any = None
    failure: str = ""
    # A collector's failure as (message, code), for the non-streamed answer's error
    # (streaming translators report theirs in-band and leave it None).
    error: tuple[str, str] | None = None

    def __init__(self) -> None:
        self.state = State.STREAMING
        self.out: list[bytes] = []
        self._decoder = SSEDecoder(skip=_skipped_blocks(self.skip_events))
        self._copy_raw = True

    # -- driving ----------------------------------------------------------------

    def feed(self, chunk: bytes) -> bytes:
        """Bytes of one upstream read in, bytes for the client out."""
        # Bytes may be copied raw only if every byte of the events they complete was
        # checked: an unsafe tail left in the decoder keeps the careful path on.
        safe = self.copies_raw and jsonbytes.safe_to_copy(chunk)
        self._copy_raw = safe and (self._copy_raw or not self._decoder.buffered)
        for event in self._decoder.feed(chunk):
            self.dispatch(event)
        return self._drain()

    def finish(self) -> bytes:
        """The upstream body ended; close the client stream one way or the other."""
        self._copy_raw = False  # the tail's bytes were never checked as a whole
        for event in self._decoder.finish():
            self.dispatch(event)
        if self.state is State.STREAMING:
            self._cut(TRUNCATED_MESSAGE, "upstream_truncated")
        return self._drain()

    def abort(self, message: str, code: str = "upstream_error") -> bytes:
        """The upstream broke (timeout, network); report it in-band if still open."""
        if self.state is State.STREAMING:
            self._cut(message, code)
        return self._drain()

    def upstream_failed(self, error: UpstreamError) -> bytes:
        """The upstream broke mid-stream (`relay` caught it): `abort` with its message. A
        translator whose client also learns the status and code (the WebSocket's error
        frame, `routes/responses_ws.py`) overrides this."""
        return self.abort(error.message)

    def _cut(self, message: str, code: str) -> None:
        self.state = LIFECYCLE.next(self.state, End.CUT)
        self.failure = message
        self.on_cut(message, code)

    def heartbeat(self) -> bytes:
        """Bytes that keep the client stream alive while the backend is silent (none by default)."""
        return b""

    def fail(self, message: str, code: str) -> None:
        self.state = LIFECYCLE.next(self.state, End.FAIL)
        self.failure = message
        self.on_failed(message, code)

    def _drain(self) -> bytes:
        out = self.out
        if not out:
            return b""
        data = out[0] if len(out) == 1 else b"".join(out)
        out.clear()
        return data

    def dispatch(self, event: SSEEvent) -> None:
        """Hand one decoded event to its hook; a subclass that must see every event
        (e.g. to forward it as is) extends this."""
        if self.state is State.DONE:
            return
        kind = event.event or raw_field(event.data, b'"type"') or b""
        handler = self.handlers.get(kind)
        if handler is not None:
            handler(self, event.data)

    # -- hooks for subclasses (defaults ignore) ---------------------------------

    def on_created(self, response: dict[str, Any]) -> None: ...
    def on_item_added(self, item: dict[str, Any]) -> None: ...
    def on_item_done(self, item: dict[str, Any]) -> None: ...
    def on_text(self, raw: bytes) -> None: ...
    def on_summary_part(self) -> None: ...
    def on_reasoning(self, raw: bytes, summary: bool) -> None: ...
    def on_arguments(self, item_id: bytes, raw: bytes) -> None: ...
    def on_completed(self, response: dict[str, Any], incomplete: bool) -> None: ...
    def on_failed(self, message: str, code: str) -> None: ...

    def on_cut(self, message: str, code: str) -> None:
        """The stream ended without a terminal event, or broke (not the backend's report)."""
        self.on_failed(message, code)

    # -- event handlers ---------------------------------------------------------

    def _handle_created(self, data: bytes) -> None:
        response = load(data).get("response")
        self.on_created(response if isinstance(response, dict) else {})

    def _handle_item(self, data: bytes, done: bool) -> None:
        item = load(data).get("item")
        if isinstance(item, dict):
            if self.tool_names:
                item = restore_item(item, self.tool_names)
            (self.on_item_done if done else self.on_item_added)(item)

    def _handle_text(self, data: bytes) -> None:
        raw = raw_field(data, b'"delta"', self._copy_raw)
        if raw:
            self.on_text(raw)

    def _handle_reasoning(self, data: bytes, summary: bool) -> None:
        raw = raw_field(data, b'"delta"', self._copy_raw)
        if raw:
            self.on_reasoning(raw, summary)

    def _handle_arguments(self, data: bytes) -> None:
        raw = raw_field(data, b'"delta"', self._copy_raw)
        if raw:
            self.on_arguments(raw_field(data, b'"item_id"', self._copy_raw) or b"", raw)

    def _handle_terminal(self, data: bytes, incomplete: bool) -> None:
        self.state = LIFECYCLE.next(self.state, End.COMPLETE)
        response = load(data).get("response")
        if isinstance(response, dict):
            self.usage = response.get("usage")
            if self.tool_names:
                response = restore_response(response, self.tool_names)
        self.on_completed(response if isinstance(response, dict) else {}, incomplete)

    def _handle_failed(self, data: bytes) -> None:
        self.fail(*error_of(load(data)))


_HANDLERS: dict[bytes, Handler] = {
    b"response.created": UpstreamTranslator._handle_created,
    b"response.output_item.added": lambda t, d: t._handle_item(d, done=False),
    b"response.output_item.done": lambda t, d: t._handle_item(d, done=True),
    b"response.output_text.delta": UpstreamTranslator._handle_text,
    b"response.reasoning_summary_part.added": lambda t, d: t.on_summary_part(),
    b"response.reasoning_summary_text.delta": lambda t, d: t._handle_reasoning(d, summary=True),
    b"response.reasoning_text.delta": lambda t, d: t._handle_reasoning(d, summary=False),
    b"response.function_call_arguments.delta": UpstreamTranslator._handle_arguments,
    b"response.completed": lambda t, d: t._handle_terminal(d, incomplete=False),
    b"response.incomplete": lambda t, d: t._handle_terminal(d, incomplete=True),
    b"response.failed": UpstreamTranslator._handle_failed,
    b"error": UpstreamTranslator._handle_failed,
}
UpstreamTranslator.handlers = _HANDLERS
