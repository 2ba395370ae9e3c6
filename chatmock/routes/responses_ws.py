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

A generated answer goes the way of every HTTP answer (`routes/answer.py`):
the same door upstream (provider routing, gate, retries, the retry without
added tools; the socket's id as account affinity) and the same `relay` loop
(one read, one write, so the client's pace sets the backend's; heartbeat
reads; the exchange's record; the drain; a broken upstream reported in-band).
Only what a write is differs: `FrameSocket` is the Responder `relay` writes
to, and each of its writes is whole frames, which `EventFrames`
(`dialects/responses_frames.py`) makes one per event. The turn is stored
before the terminal frame leaves, as on HTTP (`PendingTurn.before_end`).

The whole socket is one exchange, one access line (status 101): its answers'
tokens add up, its first byte is the first answer's, its error the latest
one, whether a stream's own failure or an error frame of ours.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from typing import Any

import trio

from chatmock.app import App
from chatmock.dialects.errors import Dialect
from chatmock.dialects.fields import OPENAI as fields
from chatmock.dialects.request_body import parse_json
from chatmock.dialects.responses import ResponsesRequest, stored_turn
from chatmock.dialects.responses_frames import EventFrames, error_frame, frames_of
from chatmock.dialects.tool_names import restore_response
from chatmock.errors import ApiError, ClientError
from chatmock.routes.answer import Plan, answer
from chatmock.routes.stored_turn import PendingTurn, parse_with_store
from chatmock.server.exchange import (
    ClientGone,
    HeaderList,
    MessageSocket,
    Request,
    Responder,
    WebSocketUpgrade,
)
from chatmock.state import exchanges
from chatmock.upstream.codex import codex_client_headers

__all__ = ["FrameSocket", "error_frame", "parse_frame", "responses_socket"]

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
        exchanges.current_or_detached().failure = error.message  # the socket's access line
        await socket.send_text(error_frame(error.status, error.message, error.code,
                                           error.headers, error.param))
    except ClientGone:
        raise
    except Exception:
        log.exception("unhandled error on the /v1/responses WebSocket")
        exchanges.current_or_detached().failure = exchanges.INTERNAL_ERROR
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


class FrameSocket:
    """The Responder `relay` writes one answer to on the WebSocket: what `EventFrames`
    translated, one text frame per event (`dialects/responses_frames.py`). The socket
    is already open, so there is no status line to start; every write may hold any
    number of whole frames, the last one's the terminal frame."""

    def __init__(self, socket: MessageSocket) -> None:
        self.socket = socket
        self.extra_headers: list[tuple[bytes, bytes]] = []
        self.status = 0
        self.started = False
        self.client_gone = False  # `MessageSocket.responding` raises ClientGone itself

    async def respond(self, status: int, headers: HeaderList, body: bytes) -> None:
        await self.start(status, headers)
        await self.end(body)

    async def start(self, status: int, headers: HeaderList) -> None:
        self.status, self.started = status, True

    async def send(self, data: bytes) -> None:
        for text in frames_of(data):
            await self.socket.send_text(text)

    async def end(self, data: bytes = b"") -> None:
        await self.send(data)


async def _generate(app: App, request: Request, socket: MessageSocket,
                    parsed: ResponsesRequest, connection: str) -> None:
    """One answer through the skeleton every HTTP route shares (`routes/answer.py`): the
    same door upstream (provider routing, gate, retries, fallback; `affinity` keeps the
    socket's turns on one account) and the same `relay` loop, writing frames."""
    turn = PendingTurn(app, parsed)
    plan = Plan(parsed.payload, EventFrames(parsed.tool_names, turn.finished),
                Dialect.OPENAI, stream_headers=(),
                forwarded=codex_client_headers(request.headers), affinity=(connection,),
                sampling=parsed.sampling, keep_payload=True)
    async with socket.responding():
        # The turn is stored before the terminal frame goes out (routes/stored_turn.py).
        await answer(app, request, turn.before_end(FrameSocket(socket)), plan)


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
