"""The pooled HTTP client over in-memory streams (its `connect` seam): keep-alive
reuse, the retry of a request a stale connection never answered, chunked bodies
read as they come, malformed answers, without a socket."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import h11
import pytest
import trio
import trio.testing

from chatmock.errors import UpstreamError
from chatmock.net.client import HTTPClient
from chatmock.net.transport import Origin

URL = "http://backend.test/v1/things"
Serve = Callable[[trio.abc.Stream], Awaitable[None]]


class MemoryNetwork:
    """Each connect hands the client one end of a fresh memory stream pair and runs
    `serve` on the other end in the test's nursery."""

    def __init__(self, nursery: trio.Nursery, serve: Serve) -> None:
        self.nursery = nursery
        self.serve = serve
        self.connects: list[Origin] = []

    async def __call__(self, origin: Origin, connect_timeout: float, *,
                       http2: bool = False) -> trio.abc.Stream:
        self.connects.append(origin)
        client, server = trio.testing.memory_stream_pair()
        self.nursery.start_soon(self.serve, server)
        return client


async def read_request(stream: trio.abc.Stream, conn: h11.Connection) -> h11.Request | None:
    """The next request's head (its body read and dropped); None when the client closed."""
    request: h11.Request | None = None
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(bytes(await stream.receive_some(65536)))
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.EndOfMessage):
            return request
        elif isinstance(event, h11.ConnectionClosed):
            return None


def keep_alive_server(chunks: list[bytes]) -> Serve:
    """Answers every request on the connection with a chunked body of `chunks`."""
    async def serve(stream: trio.abc.Stream) -> None:
        conn = h11.Connection(h11.SERVER)
        while await read_request(stream, conn) is not None:
            data = conn.send(h11.Response(status_code=200, headers=[
                (b"content-type", b"text/event-stream"), (b"transfer-encoding", b"chunked")]))
            await stream.send_all(data or b"")
            for chunk in chunks:
                await stream.send_all(conn.send(h11.Data(data=chunk)) or b"")
            await stream.send_all(conn.send(h11.EndOfMessage()) or b"")
            conn.start_next_cycle()
    return serve


async def fetch(client: HTTPClient) -> list[bytes]:
    async with client.request("POST", URL, [(b"content-type", b"application/json")],
                              b"{}") as response:
        assert response.status == 200
        return [chunk async for chunk in response.chunks()]


async def test_a_connection_is_reused_and_chunks_arrive_as_sent(nursery: trio.Nursery) -> None:
    events = [b"data: {\"a\":1}\n\n", b"data: {\"a\":2}\n\n", b"data: [DONE]\n\n"]
    network = MemoryNetwork(nursery, keep_alive_server(events))
    client = HTTPClient(connect=network)
    for _ in range(3):
        assert b"".join(await fetch(client)) == b"".join(events)
    assert network.connects == [Origin("http", "backend.test", 80)]
    await client.aclose()


async def test_a_pooled_connection_the_server_dropped_is_replaced(nursery: trio.Nursery) -> None:
    """The first connection answers once and closes without a word: the second request,
    sent on it from the pool, is never answered there and goes out once more on a
    fresh connection."""
    answered = keep_alive_server([b"data: 1\n\n"])

    async def one_answer_then_silence(stream: trio.abc.Stream) -> None:
        if len(network.connects) == 1:
            conn = h11.Connection(h11.SERVER)
            await read_request(stream, conn)
            await stream.send_all(conn.send(h11.Response(
                status_code=200, headers=[(b"content-length", b"2")])) or b"")
            await stream.send_all((conn.send(h11.Data(data=b"ok")) or b"")
                                  + (conn.send(h11.EndOfMessage()) or b""))
            await read_request(stream, h11.Connection(h11.SERVER))  # the next one ...
            await stream.aclose()  # ... is dropped unanswered
            return
        await answered(stream)

    network = MemoryNetwork(nursery, one_answer_then_silence)
    client = HTTPClient(connect=network)
    assert b"".join(await fetch(client)) == b"ok"
    assert b"".join(await fetch(client)) == b"data: 1\n\n"
    assert len(network.connects) == 2
    await client.aclose()


async def test_a_malformed_answer_is_an_upstream_error(nursery: trio.Nursery) -> None:
    async def garbage(stream: trio.abc.Stream) -> None:
        await read_request(stream, h11.Connection(h11.SERVER))
        await stream.send_all(b"HTTP/1.1 two hundred OK\r\n\r\n")

    client = HTTPClient(connect=MemoryNetwork(nursery, garbage))
    with pytest.raises(UpstreamError, match="malformed answer"):
        await fetch(client)
    await client.aclose()


async def test_a_fresh_connection_closed_unanswered_is_not_retried(
        nursery: trio.Nursery) -> None:
    """Only a reused connection may have gone stale in the pool; a new one that closes
    without answering is the backend's failure, reported once."""
    async def hang_up(stream: trio.abc.Stream) -> None:
        await read_request(stream, h11.Connection(h11.SERVER))
        await stream.aclose()

    network = MemoryNetwork(nursery, hang_up)
    client = HTTPClient(connect=network)
    with pytest.raises(UpstreamError, match="closed the connection without answering"):
        await fetch(client)
    assert len(network.connects) == 1
    await client.aclose()


def raw_server(answer: bytes) -> Serve:
    """Answers every request on the connection with the bytes `answer`, as they are."""
    async def serve(stream: trio.abc.Stream) -> None:
        conn = h11.Connection(h11.SERVER)
        while await read_request(stream, conn) is not None:
            await stream.send_all(answer)
            conn = h11.Connection(h11.SERVER)
    return serve


CHUNKED = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"


@pytest.mark.parametrize(("answer", "reused"), [
    # the backend's shape: parsed by hand, the plain last chunk ends it, kept alive
    (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + CHUNKED, True),
    # the same with a 100 Continue first, a folded line, a trailer: h11 reads them
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
     + CHUNKED, True),
    (b"HTTP/1.1 200 OK\r\nx-a: 1\r\n 2\r\ntransfer-encoding: chunked\r\n\r\n" + CHUNKED, True),
    (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + CHUNKED[:-2] + b"x-t: 1\r\n\r\n",
     True),
    (b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\nhello world", True),
    # closed after the answer: asked by the backend, HTTP/1.0, or bytes it did not frame
    (b"HTTP/1.1 200 OK\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n" + CHUNKED,
     False),
    (b"HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + CHUNKED, False),
    (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + CHUNKED + b"HTTP/1.1 200 OK\r\n",
     False),
    (b"HTTP/1.1 200 OK\r\ncontent-length: 11\r\n\r\nhello worldHTTP", False),
])
async def test_each_answer_is_read_whole_and_the_connection_kept_only_when_clean(
        nursery: trio.Nursery, answer: bytes, reused: bool) -> None:
    network = MemoryNetwork(nursery, raw_server(answer))
    client = HTTPClient(connect=network)
    for _ in range(2):
        assert b"".join(await fetch(client)) == b"hello world"
    assert len(network.connects) == (1 if reused else 2)
    await client.aclose()


async def test_a_request_with_a_connection_header_is_written_by_h11(
        nursery: trio.Nursery) -> None:
    """A caller's `connection: close` goes out as h11 writes it, and is honoured."""
    seen: list[list[tuple[bytes, bytes]]] = []

    async def serve(stream: trio.abc.Stream) -> None:
        request = await read_request(stream, h11.Connection(h11.SERVER))
        assert request is not None
        seen.append(list(request.headers))
        await stream.send_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + CHUNKED)

    network = MemoryNetwork(nursery, serve)
    client = HTTPClient(connect=network)
    for _ in range(2):
        async with client.request("POST", URL, [(b"connection", b"close")], b"{}") as response:
            assert await response.read_all() == b"hello world"
    assert len(network.connects) == 2
    assert (b"connection", b"close") in seen[0]
    await client.aclose()
