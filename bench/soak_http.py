"""The soak's client side: raw HTTP/1.1 exchanges that can read slowly, pause, or leave at a
chosen moment (wire.py's parser underneath), and a small WebSocket client (wsproto).

Nothing here decides what is right; `soak_kinds` checks what these return.
"""

from __future__ import annotations

import json
import socket
import struct
from dataclasses import dataclass
from typing import Any

import trio
from wire import RECEIVE_SIZE, Connection, Head, ProtocolError
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Ping, TextMessage
from wsproto.events import Request as Handshake

HOST = "127.0.0.1"
WS_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed",
                         "error"})


def request_bytes(port: int, method: str, path: str, body: bytes = b"",
                  headers: tuple[tuple[str, str], ...] = (),
                  content_type: str | None = "application/json") -> bytes:
    """A complete HTTP/1.1 request; a Content-Length whenever there is a body or a POST."""
    lines = [f"{method} {path} HTTP/1.1", f"host: {HOST}:{port}"]
    if content_type is not None:
        lines.append(f"content-type: {content_type}")
    if body or method == "POST":
        lines.append(f"content-length: {len(body)}")
    lines += [f"{name}: {value}" for name, value in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Reply:
    head: Head
    body: bytes

    @property
    def status(self) -> int:
        return self.head.status

    def json(self) -> Any:
        return json.loads(self.body)


class Client(Connection):
    """One client connection. `receive_size` 1 reads a byte at a time; `pause` (after
    so many bytes, for so many seconds) stops reading once, as a client busy elsewhere."""

    def __init__(self, stream: trio.SocketStream, *, receive_size: int = RECEIVE_SIZE,
                 pause: tuple[int, float] | None = None) -> None:
        super().__init__(stream)
        self.receive_size = receive_size
        self.pause = pause

    @classmethod
    async def connect(cls, port: int, **options: Any) -> Client:
        return cls(await trio.open_tcp_stream(HOST, port), **options)

    async def _fill(self) -> None:
        if self.pause is not None and self.received >= self.pause[0]:
            seconds, self.pause = self.pause[1], None
            await trio.sleep(seconds)
        data = await self.stream.receive_some(self.receive_size)
        if not data:
            raise ProtocolError("connection closed by peer")
        self.received += len(data)
        self.buf += data

    async def send(self, data: bytes, *, piece: int = 0, gap: float = 0.0) -> None:
        """Send `data`, in pieces of `piece` bytes `gap` seconds apart if `piece` is set."""
        if not piece:
            await self.stream.send_all(data)
            return
        for start in range(0, len(data), piece):
            await self.stream.send_all(data[start : start + piece])
            await trio.sleep(gap)

    async def reply(self) -> Reply:
        head = await self.read_head()
        parts: list[bytes] = []
        await self.read_body(head, parts.append)
        return Reply(head, b"".join(parts))

    async def read_for(self, seconds: float) -> None:
        """Read whatever comes for `seconds` (the response is left unfinished)."""
        with trio.move_on_after(seconds):
            while True:
                await self._fill()

    async def until_closed(self, within: float) -> bytes:
        """Everything the server still sends before it closes the connection; raises
        trio.TooSlowError if it keeps it open longer than `within` seconds."""
        with trio.fail_after(within):
            try:
                while True:
                    await self._fill()
            except (ProtocolError, trio.BrokenResourceError):
                pass
        rest = bytes(self.buf)
        self.buf.clear()
        return rest

    async def leave(self, *, reset: bool) -> None:
        """Close: a FIN, or with `reset` an RST (SO_LINGER 0), as a killed client does."""
        if reset:
            self.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                          struct.pack("ii", 1, 0))
        await self.aclose()


class WebSocket:
    """The Responses API over a WebSocket: `response.create` frames out, events back."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.ws = WSConnection(ConnectionType.CLIENT)

    @classmethod
    async def connect(cls, port: int, path: str = "/v1/responses") -> WebSocket:
        socket_ = cls(await Client.connect(port))
        await socket_.client.send(socket_.ws.send(Handshake(host=f"{HOST}:{port}", target=path)))
        event = await socket_._next()
        if not isinstance(event, AcceptConnection):
            await socket_.client.aclose()
            raise ProtocolError(f"WebSocket handshake refused: {event!r}")
        return socket_

    async def send_json(self, value: Any) -> None:
        await self.client.send(self.ws.send(TextMessage(data=json.dumps(value))))

    async def receive_json(self) -> dict[str, Any]:
        parts: list[str] = []
        while True:
            event = await self._next()
            if isinstance(event, Ping):
                await self.client.send(self.ws.send(event.response()))
            elif isinstance(event, TextMessage):
                parts.append(event.data)
                if event.message_finished:
                    value: dict[str, Any] = json.loads("".join(parts))
                    return value
            else:
                raise ProtocolError(f"unexpected WebSocket event {event!r}")

    async def create(self, fields: dict[str, Any]) -> list[dict[str, Any]]:
        """One `response.create`; its events up to the terminal one."""
        await self.send_json({"type": "response.create", **fields})
        events = [await self.receive_json()]
        while events[-1].get("type") not in WS_TERMINAL:
            events.append(await self.receive_json())
        return events

    async def close(self) -> None:
        """The closing handshake: our close frame, the server's answer, then the socket."""
        try:
            await self.client.send(self.ws.send(CloseConnection(code=1000)))
            while not isinstance(await self._next(), CloseConnection):
                pass
        finally:
            await self.client.aclose()

    async def _next(self) -> Any:
        while True:
            for event in self.ws.events():
                return event
            await self.client._fill()
            self.ws.receive_data(bytes(self.client.buf))
            self.client.buf.clear()
