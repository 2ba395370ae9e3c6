"""One HTTP/2 stream as an exchange: the request body, the `Responder`, a WebSocket.

`H2Exchange` is what the connection (`chatmock.server.http2`) keeps per
stream. Its request body is a buffer the connection's reader fills; the
bytes are acknowledged to the client (WINDOW_UPDATE, batched by h2 once half a
window is used) only when the route takes them, so a body nobody reads holds
at most one stream window and the client waits. `H2Responder` frames the
answer within the flow-control windows (`chatmock.net.h2io`): each `send`
returns once its bytes are written, as over HTTP/1.1.

An extended CONNECT (RFC 8441, `:protocol websocket`) reaches routes as the
GET it stands for, with the `Upgrade: websocket` / `Connection: Upgrade`
headers of the HTTP/1.1 handshake added, so `GET /v1/responses` serves both
versions with the same code; `upgrade_websocket` answers 200 and runs the
WebSocket framing over the stream's DATA frames.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import h2.exceptions
import trio

from chatmock import jsonbytes
from chatmock.errors import ApiError, ClientError
from chatmock.net.h2io import ReceiveBuffer, StreamGone, WireBroken
from chatmock.server.exchange import ClientGone, HeaderList, Request, ResponseState
from chatmock.server.h1responder import http_date

if TYPE_CHECKING:
    from chatmock.server.http2 import H2ServerConnection
    from chatmock.server.websocket import WebSocket

# Connection-specific fields are not allowed in HTTP/2 (RFC 9113 §8.2.2).
HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding",
                        b"upgrade"})
WEBSOCKET_HEADERS = {b"upgrade": b"websocket", b"connection": b"upgrade"}


class BadRequest(Exception):
    """The request's pseudo-headers do not make an exchange chatmock can serve."""


def build_request(headers: list[tuple[bytes, bytes]], stream: H2Exchange, client: str,
                  body_limit: int) -> Request:
    """The `Request` of a HEADERS frame's fields; raises BadRequest (e.g. plain CONNECT)."""
    fields: dict[bytes, bytes] = {}
    pseudo: dict[bytes, bytes] = {}
    for name, value in headers:
        if name[:1] == b":":
            pseudo[name] = value
        elif name in fields:
            fields[name] += (b"; " if name == b"cookie" else b", ") + value
        else:
            fields[name] = value
    method = pseudo.get(b":method", b"")
    if method == b"CONNECT":
        if pseudo.get(b":protocol", b"").lower() != b"websocket":
            raise BadRequest("CONNECT is only served for WebSockets (RFC 8441)")
        method = b"GET"
        fields.update(WEBSOCKET_HEADERS)
        stream.extended_connect = True
    length = fields.get(b"content-length", b"0")
    stream.declared = int(length) if length.isdigit() else 0
    if b":authority" in pseudo and b"host" not in fields:
        fields[b"host"] = pseudo[b":authority"]
    path, _, query = pseudo.get(b":path", b"/").decode("latin-1").partition("?")
    return Request(method.decode("latin-1"), path, query, fields, stream, body_limit, client,
                   http_version="2")


class H2Exchange(ReceiveBuffer):
    """Per-stream state; the connection's reader calls `push`, `end` and `reset`."""

    __slots__ = ("c", "declared", "ended", "extended_connect", "gone", "local_closed",
                 "responder", "running", "scope")

    def __init__(self, connection: H2ServerConnection, stream_id: int,
                 *, head_only: bool) -> None:
        super().__init__(connection.conn, stream_id)
        self.c = connection
        self.scope = trio.CancelScope()
        self.responder = H2Responder(self, head_only=head_only)
        self.extended_connect = False
        self.declared = 0  # the request's Content-Length, if it gave one
        self.ended = False  # the client finished its side (END_STREAM)
        self.gone = False  # the stream was reset, or the connection lost
        self.local_closed = False  # our END_STREAM is framed
        self.running = False  # its route's task was started

    def end(self) -> None:
        self.ended = True
        self.wake()

    def reset(self) -> None:
        """The client reset the stream or left: the route is cancelled, writes fail."""
        self.gone = True
        self.scope.cancel()
        self.wake()
        self.c.wire.window_opened(self.stream_id)

    async def read_body(self, limit: int) -> bytes:
        """BodyReader: the whole body; ClientError 413 beyond `limit`, 408 on a stall."""
        if self.declared > limit:
            raise ClientError(f"request body exceeds the limit of {limit} bytes", status=413)
        parts: list[bytes] = []
        size = 0
        while True:
            data = self.take()
            size += len(data)
            if size > limit:
                raise ClientError(f"request body exceeds the limit of {limit} bytes",
                                  status=413)
            if data:
                parts.append(data)
            if self.acked:
                await self._flush()
            if self.ended:
                return b"".join(parts)
            if self.gone:
                raise ClientGone("the stream was reset before the request body was complete")
            if not await self.wait(self.c.limits.header_timeout):
                raise ClientError("request body not received in time", status=408)

    async def read(self) -> bytes:
        """The next piece of the stream's data; b"" once it ended (a WebSocket's read)."""
        while True:
            data = self.take()
            if self.acked:
                await self._flush()
            if data:
                return data
            if self.ended or self.gone:
                return b""
            await self.wait(float("inf"))

    async def _flush(self, *, wait: bool = False) -> None:
        wire = self.c.wire
        try:
            await (wire.flush() if wait else wire.answer())
        except WireBroken as exc:
            raise ClientGone(str(exc)) from None

    async def write(self, data: bytes, *, end_stream: bool = False) -> None:
        """DATA within the windows; ClientGone if the stream or connection is gone."""
        if self.gone:
            raise ClientGone("the client reset the stream")
        if end_stream:
            self.local_closed = True
        try:
            await self.c.wire.send_data(self.stream_id, data, end_stream=end_stream)
        except (StreamGone, WireBroken) as exc:
            raise ClientGone(str(exc)) from None

    async def write_head(self, headers: list[tuple[bytes, bytes]], *, end_stream: bool) -> None:
        self.frame_head(headers, end_stream=end_stream)
        await self._flush(wait=True)

    def frame_head(self, headers: list[tuple[bytes, bytes]], *, end_stream: bool) -> None:
        if self.gone:
            raise ClientGone("the client reset the stream")
        try:
            self.c.conn.send_headers(self.stream_id, headers, end_stream=end_stream)
        except h2.exceptions.ProtocolError as exc:  # StreamClosedError among them
            raise ClientGone(str(exc)) from None
        if end_stream:
            self.local_closed = True


def _head(status: int, headers: HeaderList, extra: list[tuple[bytes, bytes]],
          length: int | None) -> list[tuple[bytes, bytes]]:
    out = [(b":status", b"%d" % status)]
    for name, value in (*headers, *extra):
        lower = name.lower()
        if lower not in HOP_BY_HOP:
            out.append((lower, value))
    out.append((b"date", http_date()))
    if length is not None:
        out.append((b"content-length", b"%d" % length))
    return out


class H2Responder(ResponseState):
    """Responder for one stream (see `chatmock.server.exchange.Responder`)."""

    __slots__ = ("_head", "_x", "head_only")

    def __init__(self, exchange: H2Exchange, *, head_only: bool = False) -> None:
        super().__init__()
        self._x = exchange
        self.head_only = head_only
        self._head: list[tuple[bytes, bytes]] | None = None

    @property
    def client_gone(self) -> bool:
        """True once the client reset the stream or the connection was lost."""
        return self._x.gone

    def _begin(self, status: int) -> None:
        if self.started:
            raise RuntimeError("response already started")
        self.started = True
        self.status = status

    async def respond(self, status: int, headers: HeaderList, body: bytes) -> None:
        self._begin(status)
        self.finished = True
        head = _head(status, headers, self.extra_headers, len(body))
        if not body or self.head_only:
            await self._x.write_head(head, end_stream=True)
            return
        self._x.frame_head(head, end_stream=False)
        await self._x.write(body, end_stream=True)

    async def start(self, status: int, headers: HeaderList) -> None:
        self._begin(status)
        self._head = _head(status, headers, self.extra_headers, None)

    def _frame_head(self) -> None:
        if self._head is not None:
            head, self._head = self._head, None
            self._x.frame_head(head, end_stream=False)

    async def send(self, data: bytes) -> None:
        self._frame_head()
        if not self.head_only:
            await self._x.write(data)

    async def end(self, data: bytes = b"") -> None:
        self.finished = True
        self._frame_head()
        await self._x.write(b"" if self.head_only else data, end_stream=True)

    async def upgrade_websocket(self, request: Request, *,
                                subprotocol: str | None = None) -> WebSocket:
        """Answer an extended CONNECT with 200 and run a WebSocket over the stream.

        Raises ClientError, before anything is written, for a request that is none."""
        if self.started:
            raise RuntimeError("response already started")
        exchange = self._x
        if not exchange.extended_connect:
            raise ClientError("Over HTTP/2 a WebSocket opens with an extended CONNECT "
                              "(RFC 8441, `:protocol websocket`).", status=426,
                              code="upgrade_required")
        if exchange.c.lifecycle.draining:
            raise ApiError("chatmock is shutting down", status=503, code="shutting_down")
        from chatmock.server.websocket import WebSocket, accept_extended_connect

        fields, framing = accept_extended_connect(request, subprotocol)
        self._begin(200)
        self.finished = True
        await exchange.write_head(_head(200, fields, [], None), end_stream=False)
        return WebSocket(framing, exchange.read, exchange.write,
                         lifecycle=exchange.c.lifecycle)


def error_body(message: str) -> bytes:
    return jsonbytes.dumps({"error": {"message": message, "type": "invalid_request_error"}})

