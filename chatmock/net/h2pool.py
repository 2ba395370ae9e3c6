"""The HTTP/2 connections to one origin: streams fill a connection before another opens.

`H2Pool.request` reserves a slot on the first connection with room (its
room is the server's SETTINGS_MAX_CONCURRENT_STREAMS, assumed to be
`ASSUMED_STREAMS` while the connection is still being made, so a burst of
requests at start-up opens one connection per hundred, not one each), opens
a stream on it and returns the response once its head arrived. A stream the
backend never processed (`Retry`) is sent once more, on another connection
than the one that failed it.

ALPN decides the protocol: if the origin picks `http/1.1`, the pool
remembers it and hands the fresh connection back, and from then on the
client speaks HTTP/1.1 to that origin.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import trio

from chatmock.errors import UpstreamError
from chatmock.net.h2client import H2ClientConnection
from chatmock.net.h2response import H2Response, Retry
from chatmock.net.transport import Origin

Connect = Callable[[Origin], Awaitable[tuple[trio.abc.Stream, str]]]
"""Opens a connection to an origin: the stream and the protocol ALPN chose."""


class H2Pool:
    """See the module docstring."""

    def __init__(self, origin: Origin, connect: Connect, *, connect_timeout: float,
                 read_timeout: float) -> None:
        self.origin = origin
        self._connect = connect
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.connections: list[H2ClientConnection] = []
        self.http1 = False  # the origin chose HTTP/1.1 by ALPN

    async def request(self, method: str, target: str, headers: Sequence[tuple[bytes, bytes]],
                      body: bytes) -> H2Response | trio.abc.Stream | None:
        """The response; or, for an origin that speaks HTTP/1.1, a fresh connection to
        use for it (or None: the caller opens one). Raises UpstreamError."""
        failed: H2ClientConnection | None = None
        for attempt in (1, 2):
            picked = await self._acquire(avoid=failed)
            if not isinstance(picked, H2ClientConnection):
                return picked
            try:
                return await picked.exchange(method, target, headers, body)
            except Retry as exc:
                if attempt == 2:
                    raise UpstreamError(f"{self.origin.authority} closed the connection "
                                        f"without answering ({exc})") from None
                failed = picked
        raise AssertionError("unreachable")

    def _pick(self, avoid: H2ClientConnection | None) -> H2ClientConnection | None:
        self.connections = [c for c in self.connections if not (c.closed or c.failure)]
        for connection in self.connections:
            if connection.free > 0 and connection is not avoid:
                return connection
        return None

    async def _acquire(self, *, avoid: H2ClientConnection | None = None
                       ) -> H2ClientConnection | trio.abc.Stream | None:
        """A connection with a slot reserved for the caller (see `request`), not `avoid`."""
        while not self.http1:
            connection = self._pick(avoid)
            if connection is None:
                return await self._open()
            connection.reserved += 1
            try:
                await connection.ready.wait()
            except BaseException:
                connection.reserved -= 1
                raise
            if not connection.failure and connection.free >= 0:
                return connection
            connection.reserved -= 1
            if connection.connect_error is not None:
                raise connection.connect_error
        return None

    async def _open(self) -> H2ClientConnection | trio.abc.Stream:
        connection = H2ClientConnection(self.origin, self.read_timeout)
        connection.reserved = 1
        self.connections.append(connection)
        try:
            stream, protocol = await self._connect(self.origin)
            if protocol != "h2":
                self.http1 = True
                connection.fail("the origin speaks HTTP/1.1")
                return stream
            await connection.start(stream, self.connect_timeout)
        except UpstreamError as exc:
            connection.connect_error = exc
            connection.fail(exc.message)
            raise
        except BaseException:
            connection.fail("the connection attempt was abandoned")
            raise
        return connection

    async def aclose(self) -> None:
        for connection in self.connections:
            await connection.close()
        self.connections.clear()
