"""The answer side of an HTTP/1.1 exchange (`H1Responder`), and the head fields every
version writes (`http_date`, `reason`).

The answer's head is written by hand when the connection read the request by hand
(`server/h1fast.py`), else by h11; an HTTP/1.1 client's chunks are framed here, an
HTTP/1.0 client's body by h11 (ended by the connection's close).
"""

from __future__ import annotations

import socket
import time
from typing import TYPE_CHECKING

import h11

from chatmock.errors import ApiError, ClientError
from chatmock.net.tcpstream import TCPStream
from chatmock.server.exchange import DirectSend, HeaderList, Request, ResponseState
from chatmock.server.h1fast import response_head

if TYPE_CHECKING:
    from chatmock.server.http1 import H1Connection
    from chatmock.server.websocket import WebSocket

_date_cache: tuple[int, bytes] = (-1, b"")
_reasons: dict[int, bytes] = {200: b"OK"}  # the others from `http.HTTPStatus` on first use
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date() -> bytes:
    """The current IMF-fixdate (RFC 9110 §5.6.7), made once a second; by hand, as
    `email.utils.formatdate` would cost its import (~3 ms) at every start."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        t = time.gmtime(now)
        _date_cache = (now, b"%s, %02d %s %04d %02d:%02d:%02d GMT" % (
            _DAYS[t.tm_wday].encode(), t.tm_mday, _MONTHS[t.tm_mon - 1].encode(), t.tm_year,
            t.tm_hour, t.tm_min, t.tm_sec))
    return _date_cache[1]


def reason(status: int) -> bytes:
    phrase = _reasons.get(status)
    if phrase is None:
        from http import HTTPStatus  # ~0.5 ms of import: not before the first such status

        try:
            phrase = HTTPStatus(status).phrase.encode()
        except ValueError:
            phrase = b""
        _reasons[status] = phrase
    return phrase


class H1Responder(ResponseState, DirectSend):
    """Responder for one exchange on an `H1Connection`."""

    __slots__ = ("_by_hand", "_c", "_chunked", "_head", "_head_only")

    def __init__(self, connection: H1Connection, *, head_only: bool = False) -> None:
        super().__init__()
        self._c = connection
        self._head = b""
        self._head_only = head_only
        self._chunked = False
        self._by_hand = False  # the head was written by hand (h11 saw no request)

    @property
    def client_gone(self) -> bool:
        return self._c.client_gone

    def _response_head(self, status: int, headers: HeaderList, length: int | None) -> bytes:
        if self.started:
            raise RuntimeError("response already started")
        self.started = True
        self.status = status
        all_headers = [*headers, *self.extra_headers, (b"date", http_date())]
        close = self._c.must_close or self._c.lifecycle.draining
        if self._c.read_by_hand:
            head = response_head(status, reason(status), all_headers, length=length, close=close)
            if head is not None:
                self._by_hand = True
                self._c.wrote_head_by_hand(close)
                return head
            self._c.hand_to_h11()  # a status or header h11 frames itself
        if length is not None:
            all_headers.append((b"content-length", b"%d" % length))
        if close:
            all_headers.append((b"connection", b"close"))
        if self._chunked:
            all_headers.append((b"transfer-encoding", b"chunked"))
        event = h11.Response(status_code=status, reason=reason(status), headers=all_headers)
        return self._c.conn.send(event)

    async def respond(self, status: int, headers: HeaderList, body: bytes) -> None:
        conn = self._c.conn
        out = self._response_head(status, headers, len(body))
        if self._by_hand:
            out += body
        else:
            if body and not self._head_only:
                out += conn.send(h11.Data(data=body))
            out += conn.send(h11.EndOfMessage())
        self.finished = True
        await self._c.write_last(out)

    async def start(self, status: int, headers: HeaderList) -> None:
        # An HTTP/1.1 client gets chunks framed here, not by h11, whose `send(Data)`
        # costs ~3.5 us a write against ~0.3 us. h11 still writes the head and the last
        # chunk (it needs no Data events to track a chunked body); an HTTP/1.0 client
        # gets a body ended by the connection's close, from h11.
        connection = self._c
        self._chunked = not self._head_only and (connection.read_by_hand
                                                 or connection.conn.their_http_version == b"1.1")
        self._head = self._response_head(status, headers, None)

    def _body(self, data: bytes) -> bytes:
        if not data or self._head_only:
            return b""
        if self._chunked:
            return b"%x\r\n%b\r\n" % (len(data), data)
        return self._c.conn.send(h11.Data(data=data))

    async def send(self, data: bytes) -> None:
        out = self._body(data)
        if self._head:
            out, self._head = self._head + out, b""
        if out:
            await self._c.write(out)

    def direct_socket(self) -> socket.socket | None:
        stream = self._c.stream
        if not self._chunked or not isinstance(stream, TCPStream):
            return None
        return stream.socket

    def send_nowait(self, data: bytes) -> bytes:
        out = self._body(data)
        if self._head:
            out, self._head = self._head + out, b""
        if not out:
            return b""
        stream = self._c.stream
        assert isinstance(stream, TCPStream)
        try:
            sent = stream.socket.send(out)
        except OSError:  # full (BlockingIOError) or failed: `send_rest` waits or reports
            return out
        return out[sent:]

    async def send_rest(self, rest: bytes) -> None:
        await self._c.write(rest)

    async def end(self, data: bytes = b"") -> None:
        out = self._head + self._body(data)
        out += b"0\r\n\r\n" if self._by_hand else self._c.conn.send(h11.EndOfMessage())
        self._head = b""
        self.finished = True
        await self._c.write_last(out)

    async def upgrade_websocket(self, request: Request, *,
                                subprotocol: str | None = None) -> WebSocket:
        """Answer 101 and turn the connection into a WebSocket (see the module docstring).

        Raises ClientError before anything is written if the request is no handshake."""
        if self.started:
            raise RuntimeError("response already started")
        connection = self._c
        connection.hand_to_h11()  # (a handshake is never read by hand: it has `Upgrade`)
        if connection.declared_length or b"transfer-encoding" in request.headers:
            raise ClientError("A WebSocket upgrade request must not have a body",
                              code="invalid_websocket_handshake")
        if connection.lifecycle.draining:
            raise ApiError("chatmock is shutting down", status=503, code="shutting_down")
        from chatmock.server.websocket import WebSocket, accept_handshake  # wsproto: on first use

        answer, framing = accept_handshake(request, subprotocol)
        buffered, eof = await connection.take_over()  # the WebSocket reads from here on
        self.started = self.finished = True
        self.status = 101
        await connection.write(answer)
        return WebSocket(framing, connection.receive, connection.write,
                         lifecycle=connection.lifecycle, buffered=buffered, eof=eof)
