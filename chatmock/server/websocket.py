"""WebSocket messages over any byte stream, framed by wsproto (sans-I/O, like h11).

`accept_handshake` turns an HTTP/1.1 upgrade request into the bytes of the
101 answer and a wsproto `Connection`; `WebSocket` then works on that framing
state through two callables, `read()` (one network read, b"" at EOF) and
`write(data)` (one awaited write, ClientGone when the peer is gone). Nothing
here knows HTTP/1.1 beyond the handshake: `accept_extended_connect` is the
HTTP/2 handshake (RFC 8441: an extended CONNECT answered 200, without the
key/accept exchange), and `WebSocket` runs over the stream unchanged.

What a route gets: `receive()` returns whole messages (fragments are joined,
pings are answered on the way, a message past `max_message_bytes` closes
with 1009) and None once the socket is closed; `send_text` is one write per
message; `close` runs the closing handshake, waiting briefly for the peer's
close frame. A socket waiting for its next message counts as idle: a server
drain closes it with 1001 at once, while a response in progress is left to
finish.

Only one task reads at a time. While a route streams a response it wraps the
work in `responding()`, which keeps reading in the background so that pings
are still answered (clients such as `websockets` drop a connection whose
pings go unanswered for 20 s, shorter than a long reasoning turn) and a
peer that leaves cancels the response nobody will read, at once: a close
frame, EOF or a reset (a peer that vanished without a close frame) cancel
the body, and `responding()` then raises ClientGone. A message that
arrives meanwhile is kept for the next `receive()` (after it, bytes are only
buffered, still watching for EOF). Writes are serialised by
a lock: a pong never lands inside another frame, and the deflate context
compresses frames in the order they hit the wire.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import h11
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection, ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    TextMessage,
)
from wsproto.events import Request as Handshake
from wsproto.extensions import PerMessageDeflate
from wsproto.handshake import server_extensions_handshake
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from chatmock.errors import ClientError
from chatmock.server.exchange import ClientGone, Request
from chatmock.server.lifecycle import Lifecycle

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
CLOSE_TIMEOUT_SECONDS = 2.0
UPGRADE_HEADERS = ((b"upgrade", b"websocket"), (b"connection", b"Upgrade"))

Read = Callable[[], Awaitable[bytes]]
Write = Callable[[bytes], Awaitable[None]]
Message = str | bytes


def wants_websocket(request: Request) -> bool:
    """A GET carrying `Connection: upgrade` and `Upgrade: websocket`."""
    tokens = {token.strip().lower() for token in request.header(b"connection").split(",")}
    return (request.method == "GET" and "upgrade" in tokens
            and request.header(b"upgrade").strip().lower() == "websocket")


def accept_handshake(request: Request,
                     subprotocol: str | None = None) -> tuple[bytes, Connection]:
    """The 101 answer to an HTTP/1.1 upgrade request and the framing state behind it.

    permessage-deflate is accepted when offered. Raises ClientError (nothing is
    written yet) when the request is no valid opening handshake."""
    if not wants_websocket(request):
        raise ClientError("A WebSocket needs GET with `Connection: Upgrade` and "
                          "`Upgrade: websocket`.", status=426, code="upgrade_required",
                          headers=UPGRADE_HEADERS)
    handshake = WSConnection(ConnectionType.SERVER)
    target = f"{request.path}?{request.query}" if request.query else request.path
    try:
        handshake.initiate_upgrade_connection(list(request.headers.items()), target)
        offer = next(handshake.events(), None)
    except (RemoteProtocolError, h11.ProtocolError) as exc:
        hint = getattr(exc, "event_hint", None)
        rejection = hint if isinstance(hint, RejectConnection) else RejectConnection()
        raise ClientError(f"Invalid WebSocket handshake: {exc}", status=rejection.status_code,
                          code="invalid_websocket_handshake",
                          headers=tuple(rejection.headers)) from None
    if not isinstance(offer, Handshake):
        raise ClientError("Invalid WebSocket handshake", code="invalid_websocket_handshake")
    chosen = subprotocol if subprotocol in offer.subprotocols else None
    answer = handshake.send(AcceptConnection(subprotocol=chosen,
                                             extensions=[PerMessageDeflate()]))
    assert handshake.connection is not None  # set by the accept
    return answer, handshake.connection


def accept_extended_connect(request: Request, subprotocol: str | None = None
                            ) -> tuple[list[tuple[bytes, bytes]], Connection]:
    """The fields of the 200 answer to an RFC 8441 extended CONNECT and the framing
    state behind them (permessage-deflate when offered). Raises ClientError when the
    request is no WebSocket handshake."""
    if request.header(b"sec-websocket-version").strip() != "13":
        raise ClientError("A WebSocket needs `Sec-WebSocket-Version: 13`.",
                          code="invalid_websocket_handshake",
                          headers=((b"sec-websocket-version", b"13"),))
    fields: list[tuple[bytes, bytes]] = []
    offered = {name.strip() for name in request.header(b"sec-websocket-protocol").split(",")}
    if subprotocol is not None and subprotocol in offered:
        fields.append((b"sec-websocket-protocol", subprotocol.encode()))
    deflate = PerMessageDeflate()
    requested = [offer.strip() for offer in
                 request.header(b"sec-websocket-extensions").split(",") if offer.strip()]
    accepted = server_extensions_handshake(requested, [deflate])
    if accepted:
        fields.append((b"sec-websocket-extensions", accepted))
    return fields, Connection(ConnectionType.SERVER, extensions=[deflate] if accepted else [])


class WebSocket:
    """One accepted WebSocket; see the module docstring for the rules of use."""

    def __init__(self, connection: Connection, read: Read, write: Write, *,
                 lifecycle: Lifecycle | None = None, buffered: bytes = b"", eof: bool = False,
                 max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self._conn = connection
        self._read = read
        self._write = write
        self._lifecycle = lifecycle
        self.max_message_bytes = max_message_bytes
        self._lock = trio.Lock()
        self._broken = False
        # The message being assembled lives here, not in a local, so that a read
        # cancelled at the end of `responding()` loses no fragment.
        self._parts: list[Message] = []
        self._size = 0
        self._pending: Message | None = None
        self._peer_left = False  # during `responding()`: the body was cancelled for it
        if buffered:
            connection.receive_data(buffered)
        if eof:
            connection.receive_data(None)

    @property
    def state(self) -> ConnectionState:
        return self._conn.state

    async def receive(self) -> Message | None:
        """The next whole message; None once the socket is closed (by either side)."""
        if self._pending is not None:
            message, self._pending = self._pending, None
            return message
        try:
            return await self._next_message(idle=True)
        except ClientGone:
            self._broken = True
            return None

    async def send_text(self, text: str) -> None:
        """One text message, one write; ClientGone once the socket is closing or gone."""
        if self._conn.state is not ConnectionState.OPEN:
            raise ClientGone("the WebSocket is closed")
        await self._send(TextMessage(data=text))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Send our close frame (or answer the peer's) and wait briefly for its reply."""
        if self._broken:
            return
        try:
            if self._conn.state in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
                await self._send(CloseConnection(code=code, reason=reason))
            await self._await_close_reply()
        except ClientGone:
            self._broken = True

    @asynccontextmanager
    async def responding(self) -> AsyncIterator[None]:
        """Keep reading while the body writes: pings answered; a peer that leaves cancels
        the body, and ClientGone is raised after it."""
        failure: Exception | None = None
        self._peer_left = False
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._pump, nursery.cancel_scope)
            try:
                yield
            except Exception as exc:  # re-raised below, outside the nursery's exception group
                failure = exc
            finally:
                nursery.cancel_scope.cancel()
        if failure is not None:
            raise failure
        if self._peer_left:
            raise ClientGone("the WebSocket's peer left during a response")

    async def _pump(self, body: trio.CancelScope) -> None:
        if self._pending is None:
            try:
                message = await self._next_message(idle=False)
            except ClientGone:
                self._broken = True
                message = None
            if message is None:
                self._peer_left = True
                body.cancel()
                return
            self._pending = message
        await self._watch_for_eof(body)

    async def _watch_for_eof(self, body: trio.CancelScope) -> None:
        """With a message kept for the next `receive()`, read on only to see the peer
        vanish: what arrives waits, unparsed, in wsproto's buffer (up to the message limit)."""
        budget = self.max_message_bytes
        while budget > 0:
            data = await self._read()
            if not data:
                self._conn.receive_data(None)
                self._peer_left = True
                body.cancel()
                return
            self._conn.receive_data(data)
            budget -= len(data)

    async def _next_message(self, *, idle: bool) -> Message | None:
        while True:
            for event in self._conn.events():
                if isinstance(event, TextMessage | BytesMessage):
                    if not self._add(event.data):
                        await self.close(1009, f"message larger than {self.max_message_bytes}")
                        return None
                    if event.message_finished:
                        return self._take()
                elif isinstance(event, Ping):
                    await self._send(event.response())
                elif isinstance(event, CloseConnection):
                    await self._answer_close(event)
                    return None
            if self._conn.state is not ConnectionState.OPEN or self._broken:
                return None
            data = await self._read_some(idle=idle and not self._parts)
            if data is None:
                await self.close(1001, "chatmock is shutting down")
                return None
            self._conn.receive_data(data or None)

    def _add(self, data: str | bytes | bytearray) -> bool:
        """Append a fragment; False when the message grew past the limit (text counts
        characters, which never exceed its UTF-8 bytes)."""
        self._size += len(data)
        if self._size > self.max_message_bytes:
            self._parts.clear()
            return False
        self._parts.append(bytes(data) if isinstance(data, bytearray) else data)
        return True

    def _take(self) -> Message:
        parts, self._parts, self._size = self._parts, [], 0
        if parts and isinstance(parts[0], str):
            return "".join(part for part in parts if isinstance(part, str))
        return b"".join(part for part in parts if isinstance(part, bytes))

    async def _answer_close(self, event: CloseConnection) -> None:
        """Our close frame in reply. Shielded (for a moment at most): a response that ends
        while `responding()` reads cancels the reader, which must not leave the peer
        without its reply (wsproto counts the frame as sent once it is framed)."""
        state = self._conn.state
        with trio.move_on_after(CLOSE_TIMEOUT_SECONDS, shield=True):
            if state is ConnectionState.REMOTE_CLOSING:
                await self._send(event.response())
            elif state is ConnectionState.OPEN:
                # wsproto reports a frame it could not parse as a close event of ours to send.
                await self._send(CloseConnection(code=event.code, reason=event.reason or ""))
                self._broken = True

    async def _await_close_reply(self) -> None:
        """After our close frame: read, dropping messages, until the peer's close frame."""
        with trio.move_on_after(CLOSE_TIMEOUT_SECONDS):
            while True:
                for _ in self._conn.events():
                    pass  # its close frame moves the state on; data and pings are ignored
                if self._conn.state is not ConnectionState.LOCAL_CLOSING:
                    return
                self._conn.receive_data(await self._read() or None)

    async def _read_some(self, *, idle: bool) -> bytes | None:
        """One read (b"" at EOF); None when a server drain ended an idle wait."""
        lifecycle = self._lifecycle
        if not idle or lifecycle is None:
            return await self._read()
        scope = lifecycle.idle()
        lifecycle.enter_idle(scope)
        try:
            with scope:
                return await self._read()
        finally:
            lifecycle.leave_idle(scope)
        return None

    async def _send(self, event: Event) -> None:
        if self._broken:
            raise ClientGone("the WebSocket's connection is gone")
        async with self._lock:
            try:
                data = self._conn.send(event)
            except LocalProtocolError as exc:
                raise ClientGone(f"the WebSocket is closed ({exc})") from None
            try:
                await self._write(data)
            except BaseException:
                # A frame cut short (or never written after the compressor saw it)
                # leaves the stream unusable.
                self._broken = True
                raise
