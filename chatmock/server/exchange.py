"""What a route sees of one HTTP exchange, whatever the HTTP version.

Routes receive a `Request` and a `Responder`. The protocol adapters
(`http1`, `http2`) implement both, so routes and translators never know
which wire format carries them. A route answers either in one go
(`respond`) or as a stream (`start`, `send`..., `end`); every `send` is one
write to the client, awaited, which is how back-pressure reaches the upstream
reader: nothing is read from the backend until the client took the last piece.

A responder may also offer `WebSocketUpgrade`, an optional capability a route
checks with `isinstance`: it turns the exchange into a `WebSocket`. HTTP/1.1
does it with `Upgrade: websocket` and a 101; HTTP/2 does it with an extended
CONNECT (RFC 8441), presented to routes as the same GET.

The handler is cancelled when its client is gone. Whatever the version, the
adapter notices a client that leaves while the route works (HTTP/1.1: EOF or
a reset on the connection once the request is complete; HTTP/2: RST_STREAM
or the connection's end), sets `Responder.client_gone` and cancels the
handler (trio cancellation) within a few milliseconds. Routes need no code
for it: their `async with` blocks close the backend exchange on the way out
(`chatmock.net.client` never pools a connection whose answer was not read to
the end), and the router logs the request with `(client gone)`. A route that
must finish something whatever happens shields it itself.
"""

from __future__ import annotations

import socket
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from chatmock import jsonbytes
from chatmock.errors import ChatmockError

HeaderList = Sequence[tuple[bytes, bytes]]
JSON_HEADERS: tuple[tuple[bytes, bytes], ...] = ((b"content-type", b"application/json"),)



@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """What one client connection may take, whatever its HTTP version."""

    max_header_bytes: int = 64 * 1024
    max_body_bytes: int = 64 * 1024 * 1024
    header_timeout: float = 30.0  # the whole request head, from its first byte
    body_timeout: float = 60.0  # the whole request body, from the route's first read
    idle_timeout: float = 75.0
    write_timeout: float = 120.0  # applied by the connection's stream (server/listen.py)
    max_streams: int = 100  # concurrent HTTP/2 streams (SETTINGS_MAX_CONCURRENT_STREAMS)


class ClientGone(ChatmockError):
    """The client closed the connection or stopped reading; abandon the exchange."""


class BodyReader(Protocol):
    async def read_body(self, limit: int) -> bytes:
        """The whole request body; raises ClientError(413) beyond `limit` bytes."""
        ...


_RELEASED = b"\0released"  # compared by identity: a body is never this object


class Request:
    """Method, target, headers (lower-case names), the HTTP version ("1.1" or "2", for
    logs and tests: routes never branch on it) and a lazily read body."""

    __slots__ = ("_body", "_reader", "body_limit", "client", "headers", "http_version", "method",
                 "path", "query")

    def __init__(self, method: str, path: str, query: str, headers: dict[bytes, bytes],
                 reader: BodyReader, body_limit: int, client: str = "", *,
                 http_version: str = "1.1") -> None:
        self.method, self.path, self.query = method, path, query
        self.headers, self.client, self.http_version = headers, client, http_version
        self.body_limit = body_limit
        self._reader = reader
        self._body: bytes | None = None

    def header(self, name: bytes) -> str:
        """A header's value as text ('' when absent)."""
        return self.headers.get(name, b"").decode("latin-1")

    async def body(self) -> bytes:
        if self._body is None:
            self._body = await self._reader.read_body(self.body_limit)
        elif self._body is _RELEASED:
            raise RuntimeError("the request body was released")
        return self._body

    def release_body(self) -> None:
        """Drop the body read (a route that parsed it and streams for minutes need not
        keep a conversation's JSON twice); `body()` raises after this."""
        self._body = _RELEASED


class ResponseState:
    """What every Responder keeps about its response, the same whatever the HTTP version
    (the fields `Responder` names)."""

    __slots__ = ("extra_headers", "finished", "started", "status")

    def __init__(self) -> None:
        self.extra_headers: list[tuple[bytes, bytes]] = []
        self.started = False
        self.finished = False
        self.status = 0


class Responder(Protocol):
    """The answering half of an exchange."""

    extra_headers: list[tuple[bytes, bytes]]
    status: int

    @property
    def started(self) -> bool:
        """True once a status line was committed (errors can no longer change it)."""
        ...

    @property
    def client_gone(self) -> bool:
        """True once the adapter saw the client leave (the handler is then cancelled)."""
        ...

    async def respond(self, status: int, headers: HeaderList, body: bytes) -> None:
        """Send a complete response with a Content-Length, in one write."""
        ...

    async def start(self, status: int, headers: HeaderList) -> None:
        """Begin a streamed response; the head leaves with the first `send`."""
        ...

    async def send(self, data: bytes) -> None:
        """Write one piece of the body; raises ClientGone if the client left."""
        ...

    async def end(self, data: bytes = b"") -> None:
        """Write the last piece (may be empty) and finish the response."""
        ...


class MessageSocket(Protocol):
    """What a route sees of a WebSocket (`chatmock.server.websocket.WebSocket`)."""

    async def receive(self) -> str | bytes | None:
        """The next whole message; None once the socket is closed."""
        ...

    async def send_text(self, text: str) -> None:
        """One text message, one write; raises ClientGone if the peer left."""
        ...

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """The closing handshake, waiting briefly for the peer's close frame."""
        ...

    def responding(self) -> AbstractAsyncContextManager[None]:
        """Around a response: pings are answered; a peer that closes or vanishes cancels
        the body, and ClientGone is raised after it."""
        ...


Handler = Callable[[Request, Responder], Awaitable[None]]


class DirectSend(ABC):
    """Optional Responder capability: a streamed body's pieces written without waiting,
    for the relay hub (`chatmock.net.relayhub`), which writes from a task of its own.
    HTTP/1.1 on plain TCP offers it; the pieces are framed as `send` frames them.

    An abstract base class, not a runtime-checkable Protocol: `isinstance` against one
    of those costs ~150 us (it lists the protocol's members every time), once per
    stream; against an ABC it is a cached lookup."""

    __slots__ = ()

    @abstractmethod
    def direct_socket(self) -> socket.socket | None:
        """The client's socket once `start` was called, when its pieces can be written
        with `send_nowait`; None otherwise (TLS, HTTP/1.0, HEAD)."""

    @abstractmethod
    def send_nowait(self, data: bytes) -> bytes:
        """Write `data` as `send` would, without waiting: b"" when all of it left, else
        the framed bytes still to write with `send_rest` (all of them after an error,
        which `send_rest` then reports as ClientGone)."""

    @abstractmethod
    async def send_rest(self, rest: bytes) -> None:
        """Write what `send_nowait` left (waiting as `send` does)."""


@runtime_checkable
class WebSocketUpgrade(Protocol):
    """Optional Responder capability: the exchange becomes a WebSocket."""

    async def upgrade_websocket(self, request: Request, *,
                                subprotocol: str | None = None) -> MessageSocket:
        """Accept the opening handshake (permessage-deflate when offered) and return the
        socket; raises ClientError, with nothing written, for a request that is none.
        The connection is closed after the socket (no return to HTTP keep-alive)."""
        ...


async def send_json(out: Responder, status: int, value: Any,
                    headers: HeaderList = ()) -> None:
    await out.respond(status, [*JSON_HEADERS, *headers], jsonbytes.dumps(value))
