"""A small HTTP client: HTTP/1.1 with a keep-alive pool per origin, and HTTP/2.

HTTP/1.1 requests and answer heads of the common shape are written and read by
hand (`chatmock.net.h1wire`, chunked bodies by `chatmock.net.chunked`); h11 takes
anything else, from every byte read, and stays the judge of the unusual.

`HTTPClient.request` is an async context manager yielding the response once
its head has arrived; the body is pulled by the caller (`chunks`, one item
per network read, or `read_all`), so nothing is read from the backend faster
than the caller forwards it. On exit a connection whose response was read to
the end, with nothing after it, goes back to the pool; anything else is closed.

For an https origin the client offers `h2` and `http/1.1` by ALPN. If the
origin picks HTTP/2, its requests share a few connections as streams
(`chatmock.net.h2pool`, `chatmock.net.h2client`); if it picks HTTP/1.1, the
rest of this module serves it. Callers see the same `UpstreamResponse`.

A pooled connection may have been closed by the server while it sat idle. If
a request on a reused connection fails before a single response byte came
back, it is sent once more on a fresh connection: the server cannot have
acted on a request it never read.

A connection idle for `MAX_IDLE_SECONDS` is never reused (the backend may have
dropped it). `close_idle_forever`, a background task of the server, closes such
connections every `SWEEP_SECONDS`: otherwise a pool that once served a burst keeps its
peak of backend sockets for good (the most recently used are taken first, so the
oldest are never reached), half-closed (CLOSE_WAIT) once the backend drops them.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Protocol

import h11
import trio

from chatmock.errors import UpstreamError
from chatmock.net.chunked import ChunkedBody, H11Body, is_chunked
from chatmock.net.h1wire import EOF, NEED_MORE, Outgoing, ResponseHead, Verdict, parse_head
from chatmock.net.response import HubReadable, UpstreamResponse
from chatmock.net.tcpstream import TCPStream
from chatmock.net.transport import Origin, negotiated_protocol, open_stream, split_url

if TYPE_CHECKING:
    from chatmock.net.h2pool import H2Pool
    from chatmock.net.h2response import H2Response

RECEIVE_SIZE = 65536
MAX_IDLE_SECONDS = 50.0
SWEEP_SECONDS = MAX_IDLE_SECONDS / 2


class OpenStream(Protocol):
    """How the client reaches an origin: `transport.open_stream` on the network, or an
    in-memory stream in tests (the shape of httpcore's network backend)."""

    def __call__(self, origin: Origin, connect_timeout: float, *,
                 http2: bool = False) -> Awaitable[trio.abc.Stream]: ...


class _Stale(Exception):
    """The connection died before the response began; safe to retry elsewhere."""


class _Connection:
    __slots__ = ("h11", "idle_since", "origin", "reusable", "stream")

    def __init__(self, stream: trio.abc.Stream, origin: Origin) -> None:
        self.stream = stream
        self.origin = origin
        self.h11: h11.Connection | None = None  # while h11 reads the exchange's answer
        self.idle_since = 0.0
        self.reusable = False  # the answer ended so that another exchange may follow


class H1Response(UpstreamResponse, HubReadable):
    """A response read from an HTTP/1.1 connection; a chunked body is parsed by
    `chatmock.net.chunked` (h11 for the unusual framing), any other by h11."""

    def __init__(self, connection: _Connection, status: int, headers: list[tuple[bytes, bytes]],
                 body: ChunkedBody | H11Body, read_timeout: float, *, keep: bool = True) -> None:
        super().__init__(status, headers, read_timeout)
        self._c = connection
        self._body = body
        self._keep = keep  # False when the request asked for the connection's close
        self._first = self._feed(b"", eof=False)  # what arrived with the head
        self._may_be_ready = True  # the kernel may hold more for us than the head's read

    @classmethod
    def of_h11(cls, connection: _Connection, method: bytes, head: h11.Response,
               read_timeout: float) -> H1Response:
        """The response whose head `connection.h11` read."""
        conn = connection.h11
        assert conn is not None
        buffered, closed = conn.trailing_data
        body: ChunkedBody | H11Body
        if is_chunked(method, head) and not closed:
            body = ChunkedBody(method, head, buffered)
            # The connection's h11 is done with (its receive buffer still holds the
            # head's whole read); the body decides keep-alive (`ChunkedBody.reusable`),
            # unless the request already asked for the connection's close.
            connection.h11 = None
        else:
            body = H11Body(conn)
        return cls(connection, head.status_code, list(head.headers), body, read_timeout,
                   keep=conn.our_state is h11.DONE)

    async def receive(self, heartbeat: float | None = None) -> bytes | None:
        body = self._body
        data, self._first = self._first, b""
        while not data:
            if body.complete or body.broken:
                # Cut or malformed: the caller sees the stream end without its
                # terminal event and reports that.
                return None
            received = await self._read(heartbeat)
            if received is None:
                return b""
            data = self._feed(received, eof=not received)
        if self.trace is not None:
            self.trace(data)
        return data

    def hub_socket(self) -> socket.socket | None:
        stream = self._c.stream
        return stream.socket if isinstance(stream, TCPStream) else None

    @property
    def held(self) -> bool:
        return bool(self._first)

    def receive_nowait(self) -> bytes | None:
        stream = self._c.stream
        assert isinstance(stream, TCPStream)
        try:
            received = stream.socket.recv(RECEIVE_SIZE)
        except BlockingIOError:
            return None
        except OSError:  # a reset: the end, as `_read` sees it
            received = b""
        self._silent = 0.0
        self._may_be_ready = True  # the task that takes over tries a read first
        data = self._feed(received, eof=not received)
        if data and self.trace is not None:
            self.trace(data)
        return data

    @property
    def ended(self) -> bool:
        body = self._body
        return body.complete or body.broken

    def _feed(self, received: bytes, *, eof: bool) -> bytes:
        """The body bytes that `received` completes."""
        body = self._body
        data = body.feed(received, eof=eof)
        if body.complete and not self.complete:
            self.complete = True
            self._c.reusable = body.reusable and self._keep
        return data

    async def _read(self, heartbeat: float | None) -> bytes | None:
        """One read (b"" at the connection's end); None when `heartbeat` seconds passed
        first. Raises after read_timeout.

        On a plain TCP connection the read that finds data needs no cancel scope, and a
        wait, one: a read that returned less than a full buffer emptied the kernel's, so
        the next one waits first instead of trying a read that would fail (the paced
        stream's case: every event alone, then silence)."""
        stream = self._c.stream
        if not isinstance(stream, TCPStream):
            return await self._read_any(stream, heartbeat)
        while True:
            if self._may_be_ready:
                try:
                    data = stream.receive_ready()
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    data = b""
                if data is not None:
                    self._may_be_ready = len(data) == RECEIVE_SIZE
                    self._silent = 0.0
                    await stream.take_turns()
                    return data
            wait = self.silence_left(heartbeat)
            with trio.CancelScope(deadline=trio.current_time() + wait) as scope:
                try:
                    await stream.wait_readable()
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return b""
            self._may_be_ready = True
            if scope.cancelled_caught:
                self.note_silence(wait)
                return None

    async def _read_any(self, stream: trio.abc.Stream, heartbeat: float | None) -> bytes | None:
        """`_read` on any other stream (TLS, or a test's in-memory one)."""
        wait = self.silence_left(heartbeat)
        # A bare scope: move_on_after's generator wrapper costs a third more, per read.
        with trio.CancelScope(deadline=trio.current_time() + wait) as scope:
            try:
                data = bytes(await stream.receive_some(RECEIVE_SIZE))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
        if not scope.cancelled_caught:
            self._silent = 0.0
            return data
        self.note_silence(wait)
        return None


def _host(origin: Origin) -> bytes:
    return origin.authority.encode()


async def _send(connection: _Connection, data: bytes) -> None:
    """Write a request; a connection that is gone before it is `_Stale`."""
    try:
        await connection.stream.send_all(data)
    except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        raise _Stale from exc


async def _read_some(connection: _Connection, seconds: float) -> bytes:
    """One read, bounded by the idle-read timeout (a bare scope: `fail_after`'s generator
    wrapper costs a third more)."""
    with trio.CancelScope(deadline=trio.current_time() + seconds) as scope:
        try:
            return bytes(await connection.stream.receive_some(RECEIVE_SIZE))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return b""
    assert scope.cancelled_caught
    raise UpstreamError(f"the backend sent nothing for {seconds:g} s", status=504)


class _Exchange(AbstractAsyncContextManager["UpstreamResponse"]):
    """One request's context (`HTTPClient.request`). A class, not an
    `asynccontextmanager` generator: 8 Python calls fewer a request (issue 13)."""

    __slots__ = ("_client", "_connection", "_h2_response", "_request")

    def __init__(self, client: HTTPClient,
                 request: tuple[str, str, Sequence[tuple[bytes, bytes]], bytes]) -> None:
        self._client = client
        self._request: tuple[str, str, Sequence[tuple[bytes, bytes]], bytes] | None = request
        self._connection: _Connection | None = None
        self._h2_response: H2Response | None = None

    async def __aenter__(self) -> UpstreamResponse:
        assert self._request is not None, "an exchange is entered once"
        # Sent, and never sent again (`_open` retries before any answer): the exchange
        # lives as long as the stream, so it must not keep the body (a conversation's
        # whole JSON) nor the request's bytes (tests/unit/test_rss.py).
        (method, url, headers, body), self._request = self._request, None
        client = self._client
        origin, target = split_url(url)
        fresh: trio.abc.Stream | None = None
        if client.http2 and origin.scheme == "https":
            outcome = await client._h2_pool(origin).request(method, target, headers, body)
            if outcome is not None and not isinstance(outcome, trio.abc.Stream):
                self._h2_response = outcome
                return outcome
            fresh = outcome
        outgoing = Outgoing(method, target, _host(origin), headers, body)
        del body  # held by `outgoing` alone while the answer is awaited
        self._connection, response = await client._open(origin, outgoing, fresh)
        return response

    async def __aexit__(self, *exc_info: object) -> None:
        if self._h2_response is not None:
            with trio.CancelScope(shield=True):
                await self._h2_response.aclose()
        elif self._connection is not None:
            await self._client._release(self._connection)


class HTTPClient:
    """Keep-alive HTTP client (HTTP/2 where an https origin offers it); one per process.

    With `http2` off, https origins are offered HTTP/1.1 only. `connect` opens a
    connection (see `OpenStream`)."""

    def __init__(self, *, connect_timeout: float = 15.0, read_timeout: float = 300.0,
                 pool_size: int = 256, http2: bool = True,
                 connect: OpenStream = open_stream) -> None:
        self.connect = connect
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.pool_size = pool_size
        self.http2 = http2
        self._idle: dict[Origin, list[_Connection]] = {}
        self._h2: dict[Origin, H2Pool] = {}

    def request(self, method: str, url: str, headers: Sequence[tuple[bytes, bytes]],
                body: bytes = b"") -> _Exchange:
        """`async with client.request(...) as response`: the response once its head is
        read; the connection goes back to the pool (or is closed) on the way out."""
        return _Exchange(self, (method, url, headers, body))

    def _h2_pool(self, origin: Origin) -> H2Pool:
        pool = self._h2.get(origin)
        if pool is None:
            from chatmock.net.h2pool import H2Pool  # h2 (~10 ms of import): on first use

            pool = self._h2[origin] = H2Pool(origin, self._connect_h2,
                                             connect_timeout=self.connect_timeout,
                                             read_timeout=self.read_timeout)
        return pool

    async def _connect_h2(self, origin: Origin) -> tuple[trio.abc.Stream, str]:
        stream = await self.connect(origin, self.connect_timeout, http2=True)
        return stream, negotiated_protocol(stream)

    async def _open(self, origin: Origin, outgoing: Outgoing,
                    fresh: trio.abc.Stream | None) -> tuple[_Connection, UpstreamResponse]:
        """Send on a pooled connection, or on a fresh one if the pooled one was stale."""
        if fresh is not None:
            connection, reused = _Connection(fresh, origin), False
        else:
            connection, reused = await self._checkout(origin)
        for attempt in (1, 2):
            try:
                return connection, await self._exchange(connection, outgoing)
            except _Stale:
                await trio.aclose_forcefully(connection.stream)
                if not reused or attempt == 2:
                    raise UpstreamError(f"{origin.authority} closed the connection "
                                        "without answering") from None
            except BaseException:
                await trio.aclose_forcefully(connection.stream)
                raise
            connection, reused = await self._connect(origin), False
        raise AssertionError("unreachable")

    async def _exchange(self, connection: _Connection, outgoing: Outgoing) -> UpstreamResponse:
        """Send the request, read the answer's head: by hand when both are of the common
        shape (`chatmock.net.h1wire`), else by h11, which then reads every byte so far."""
        connection.reusable = False
        event = outgoing.h11_event
        if event is not None:
            conn = connection.h11 = h11.Connection(h11.CLIENT)
            await _send(connection, outgoing.send_h11(conn, event))
            return await self._read_h11(connection, outgoing.method, received=False)
        assert outgoing.wire is not None
        await _send(connection, outgoing.wire)
        buf, head = await self._read_head(connection)
        if isinstance(head, ResponseHead):
            connection.h11 = None
            body = ChunkedBody(outgoing.method, head.head, buf[head.body_start:])
            return H1Response(connection, head.status, head.headers, body, self.read_timeout)
        conn = connection.h11 = h11.Connection(h11.CLIENT)
        outgoing.send_h11(conn, outgoing.event())  # as if h11 had sent it: the same state
        conn.receive_data(buf)
        if head is EOF:
            conn.receive_data(b"")  # the connection's end came first
        return await self._read_h11(connection, outgoing.method, received=True)

    async def _read_head(self, connection: _Connection) -> tuple[bytes, ResponseHead | Verdict]:
        """The bytes read until `parse_head` could tell, and its verdict (`EOF` at the
        connection's end)."""
        buf = b""
        while True:
            data = await _read_some(connection, self.read_timeout)
            if not data:
                if not buf:
                    raise _Stale
                return buf, EOF
            buf += data
            head = parse_head(buf)
            if head is not NEED_MORE:
                return buf, head

    async def _read_h11(self, connection: _Connection, method: bytes, *,
                        received: bool) -> UpstreamResponse:
        """The response whose head h11 reads on `connection.h11`."""
        head = await self._read_h11_head(connection, received)
        return H1Response.of_h11(connection, method, head, self.read_timeout)

    async def _read_h11_head(self, connection: _Connection, received: bool) -> h11.Response:
        conn = connection.h11
        assert conn is not None
        try:
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    data = await _read_some(connection, self.read_timeout)
                    if not data and not received:
                        raise _Stale
                    received = True
                    conn.receive_data(data)
                elif isinstance(event, h11.Response):
                    return event
                elif not isinstance(event, h11.InformationalResponse):
                    raise UpstreamError("the backend closed the connection without an answer")
        except h11.RemoteProtocolError as exc:
            raise UpstreamError(f"malformed answer from the backend: {exc}") from None

    async def _checkout(self, origin: Origin) -> tuple[_Connection, bool]:
        idle = self._idle.get(origin)
        now = trio.current_time()
        while idle:
            connection = idle.pop()
            if now - connection.idle_since < MAX_IDLE_SECONDS:
                return connection, True
            await trio.aclose_forcefully(connection.stream)
        return await self._connect(origin), False

    async def _connect(self, origin: Origin) -> _Connection:
        return _Connection(await self.connect(origin, self.connect_timeout), origin)

    async def _release(self, connection: _Connection) -> None:
        idle = self._idle.setdefault(connection.origin, [])
        if connection.reusable and len(idle) < self.pool_size:
            connection.h11, connection.reusable = None, False
            connection.idle_since = trio.current_time()
            idle.append(connection)
        else:
            await trio.aclose_forcefully(connection.stream)

    async def close_idle_forever(self) -> None:
        """Background task: close pooled connections too old to reuse, one wake-up every
        `SWEEP_SECONDS`; so an idle server holds no backend sockets after a minute or so."""
        while True:
            await trio.sleep(SWEEP_SECONDS)
            await self.close_expired()

    async def close_expired(self) -> None:
        now = trio.current_time()
        for idle in list(self._idle.values()):
            # Oldest first (`_release` appends): the expired ones are a prefix.
            fresh = next((i for i, c in enumerate(idle) if now - c.idle_since < MAX_IDLE_SECONDS),
                         len(idle))
            expired, idle[:fresh] = idle[:fresh], []
            for connection in expired:
                await trio.aclose_forcefully(connection.stream)

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                await trio.aclose_forcefully(connection.stream)
        self._idle.clear()
        for pool in self._h2.values():
            await pool.aclose()
        self._h2.clear()
