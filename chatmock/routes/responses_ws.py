"""`GET /v1/responses` upgraded to a WebSocket: the Responses API, one frame per event.

Clients (spec: clients.md, openai-python `responses.connect()` and the Codex
CLI's WebSocket mode; upstream.md §11) send JSON text frames
`{"type": "response.create", ...create fields...}` and read the Responses
stream events back, one per frame, up to the terminal one; then the next
`response.create` may follow on the same socket. Each create body goes
through the same `parse_with_store` as an HTTP body, so
`previous_response_id` chaining (the client sends only the new items) is
resolved from the local store and the backend gets the full input.

`generate: false` is the Codex prewarm: nothing goes upstream; a synthetic
response (created + completed, no output) is answered and its turn stored,
so that the first real turn can chain on it.

Browsers apply no CORS to WebSockets, so the handshake's `Origin` is judged
by the router before this route runs, by the same rules as any request
(`server/browser.py`): a page from a foreign origin gets a 403, never a 101.

Anything that goes wrong with one request becomes an error frame
`{"type": "error", "status_code": N, "error": {"message", "code"}}` and the
socket stays open. Each request ends with exactly one terminal frame: the
backend's own `response.completed` / `response.incomplete` /
`response.failed` / `error` event, relayed as it came, or one error frame of
ours (a refused request, a stream cut short) -- never both, so a client that
stops reading at the first terminal frame never finds a stale one in front
of its next answer.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from contextlib import aclosing
from typing import Any, ClassVar

import trio

from chatmock.app import App
from chatmock.dialects.fields import OPENAI as fields
from chatmock.dialects.machine import State
from chatmock.dialects.request_body import parse_json
from chatmock.dialects.responses import ResponsesRequest, stored_turn
from chatmock.dialects.responses_stream import ResponsesObserver
from chatmock.dialects.sse import SSEEvent
from chatmock.dialects.tool_names import restore_response
from chatmock.errors import ApiError, ClientError, UpstreamError
from chatmock.net.client import UpstreamResponse
from chatmock.routes.answer import client_of, query_provider
from chatmock.routes.relay import drain
from chatmock.routes.stored_turn import PendingTurn, parse_with_store
from chatmock.server.exchange import (
    ClientGone,
    MessageSocket,
    Request,
    Responder,
    WebSocketUpgrade,
)
from chatmock.upstream.codex import codex_client_headers

log = logging.getLogger("chatmock.responses")

CLOSE_SECONDS = 5.0
_ZERO_USAGE = {"input_tokens": 0, "input_tokens_details": {"cached_tokens": 0},
               "output_tokens": 0, "output_tokens_details": {"reasoning_tokens": 0},
               "total_tokens": 0}
_ECHOED_FIELDS = ("instructions", "tools", "tool_choice", "parallel_tool_calls", "reasoning",
                  "text", "service_tier")


async def responses_socket(app: App, request: Request, out: Responder) -> None:
    from chatmock.server.websocket import UPGRADE_HEADERS, wants_websocket  # wsproto: on first use

    if not isinstance(out, WebSocketUpgrade) or not wants_websocket(request):
        raise ClientError("GET /v1/responses is the WebSocket mode of the Responses API: "
                          "connect with `Upgrade: websocket`, or POST for HTTP.", status=426,
                          code="upgrade_required", headers=UPGRADE_HEADERS)
    socket = await out.upgrade_websocket(request)
    connection = "ws:" + secrets.token_hex(12)  # its turns stay on one account (the pool)
    try:  # a ClientGone (the peer left mid-response) goes on to the router's log line
        while (message := await socket.receive()) is not None:
            await _serve_one(app, request, socket, message, connection)
    finally:
        with trio.move_on_after(CLOSE_SECONDS, shield=True):
            await socket.close()


async def _serve_one(app: App, request: Request, socket: MessageSocket,
                     message: str | bytes, connection: str) -> None:
    """One client frame: a response streamed back, or one error frame."""
    try:
        body, generate = parse_frame(message)
        parsed = await parse_with_store(app, body)
        if generate:
            await _generate(app, request, socket, parsed, connection)
        else:
            await _prewarm(app, socket, parsed)
    except ApiError as error:
        await socket.send_text(error_frame(error.status, error.message, error.code,
                                           error.headers, error.param))
    except ClientGone:
        raise
    except Exception:
        log.exception("unhandled error on the /v1/responses WebSocket")
        await socket.send_text(error_frame(500, "internal error in chatmock (see its log)",
                                           "internal_error"))


def parse_frame(message: str | bytes) -> tuple[dict[str, Any], bool]:
    """(create body, generate) of a `response.create` frame; ClientError for anything else."""
    if isinstance(message, bytes):
        raise ClientError("Binary frames are not supported: send JSON as text frames",
                          code="invalid_frame")
    frame = parse_json(message.encode(), "frame")
    if not isinstance(frame, dict):
        raise ClientError("A frame must be a JSON object", code="invalid_frame")
    kind = frame.get("type")
    if kind != "response.create":
        raise ClientError(f"Unsupported frame type {kind!r}: expected 'response.create'",
                          code="unsupported_frame_type")
    body = {key: value for key, value in frame.items() if key not in ("type", "generate")}
    return body, fields.boolean(frame, "generate", True)


def error_frame(status: int, message: str, code: str | None,
                headers: tuple[tuple[bytes, bytes], ...] = (), param: str | None = None) -> str:
    frame: dict[str, Any] = {"type": "error", "status_code": status,
                             "error": {"message": message, "code": code}}
    if param:  # the request field the error is about, as in OpenAI's error objects
        frame["error"]["param"] = param
    if headers:  # e.g. retry-after of a 429
        frame["headers"] = {name.decode("latin-1"): value.decode("latin-1")
                            for name, value in headers}
    return json.dumps(frame)


class EventFrames(ResponsesObserver):
    """Watches the stream exactly as the HTTP route does (turn stored on success) and
    keeps each event's JSON, as the backend sent it, to become one frame."""

    skip_events: ClassVar[tuple[bytes, ...]] = ()  # every event becomes a frame

    def __init__(self, app: App, request: ResponsesRequest) -> None:
        self.turn = PendingTurn(app, request)
        super().__init__(relay=False, on_success=self.turn.finished,
                         tool_names=request.tool_names)
        self.frames: list[bytes] = []
        self.cut: tuple[str, str] | None = None

    def dispatch(self, event: SSEEvent) -> None:
        if self.state is State.STREAMING and event.data != b"[DONE]":
            self.frames.append(self.relayed(event))
        super().dispatch(event)

    def on_cut(self, message: str, code: str) -> None:
        self.cut = (message, code)
        super().on_cut(message, code)


async def _generate(app: App, request: Request, socket: MessageSocket,
                    parsed: ResponsesRequest, connection: str) -> None:
    session = app.sessions.for_request(request.headers, parsed.payload.get("instructions"),
                                       parsed.payload["input"])
    observer = EventFrames(app, parsed)
    forwarded = codex_client_headers(request.headers)
    opened = app.backend.responses(parsed.payload, session, forwarded, affinity=(connection,)) \
        if app.upstreams is None else app.upstreams.open(
            parsed.payload, session, forwarded, client=client_of(request),
            query_provider=query_provider(request), affinity=(connection,),
            sampling=parsed.sampling)
    async with socket.responding(), opened as upstream:
        await _relay(upstream, observer, socket)


async def _relay(upstream: UpstreamResponse, observer: EventFrames, socket: MessageSocket) -> None:
    """Each read's events, one frame each; an error frame of ours if the stream broke."""
    status = 502
    try:
        async with aclosing(upstream.chunks()) as chunks:
            async for chunk in chunks:
                observer.feed(chunk)
                await _flush(observer, socket)
                if observer.state is State.DONE:
                    break
            else:
                observer.finish()
        await drain(upstream)
    except UpstreamError as exc:
        status = exc.status
        observer.abort(exc.message, exc.code or "upstream_error")
    await _flush(observer, socket)
    if observer.cut is not None:
        await socket.send_text(error_frame(status, *observer.cut))


async def _flush(observer: EventFrames, socket: MessageSocket) -> None:
    await observer.turn.stored()  # before the terminal frame goes out
    frames, observer.frames = observer.frames, []
    for frame in frames:
        await socket.send_text(frame.decode("utf-8", "replace"))


async def _prewarm(app: App, socket: MessageSocket, parsed: ResponsesRequest) -> None:
    """Codex's `generate: false`: a response id to chain on, without calling the backend."""
    response_id = "resp_" + secrets.token_hex(24)
    created_at = time.time()
    await app.responses_store.put(stored_turn(response_id, parsed, [], created_at))
    payload = parsed.payload
    response: dict[str, Any] = {
        "id": response_id, "object": "response", "created_at": int(created_at),
        "status": "in_progress", "model": payload["model"], "output": [], "error": None,
        "incomplete_details": None, "usage": None,
        **restore_response({key: payload[key] for key in _ECHOED_FIELDS if key in payload},
                           parsed.tool_names)}
    await socket.send_text(json.dumps({"type": "response.created", "sequence_number": 0,
                                       "response": response}))
    done = {**response, "status": "completed", "usage": _ZERO_USAGE}
    await socket.send_text(json.dumps({"type": "response.completed", "sequence_number": 1,
                                       "response": done}))
