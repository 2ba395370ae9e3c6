"""HTTP/1.1 edge cases, byte for byte: framing conflicts (request smuggling) and total time
limits on the request head and body (in memory, on trio's autojump clock)."""

from __future__ import annotations

import trio
import trio.testing

from chatmock.errors import ClientError
from chatmock.server.exchange import ConnectionLimits, Request, Responder
from chatmock.server.http1 import H1Connection
from chatmock.server.lifecycle import Lifecycle


class Echo:
    """Answers every request with its path and body; notes the paths it saw."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, request: Request, out: Responder) -> None:
        self.paths.append(request.path)
        try:
            body = await request.body()
        except ClientError as exc:
            await out.respond(exc.status, [], exc.message.encode())
            return
        await out.respond(200, [], request.path.encode() + b" " + body)


def connect(nursery: trio.Nursery, app: Echo,
            limits: ConnectionLimits | None = None) -> trio.StapledStream[
                trio.testing.MemorySendStream, trio.testing.MemoryReceiveStream]:
    client, server = trio.testing.memory_stream_pair()
    nursery.start_soon(H1Connection(server, app, limits or ConnectionLimits(), Lifecycle()).serve)
    return client


async def until_closed(stream: trio.abc.Stream) -> bytes:
    """What the server writes until it closes (a connection left open fails the test)."""
    received = b""
    with trio.fail_after(5):
        while chunk := await stream.receive_some():
            received += chunk
    return received


async def until(stream: trio.abc.Stream, ending: bytes, seconds: float = 200) -> bytes:
    """What the server writes until it wrote `ending` (on the test's clock)."""
    received = b""
    with trio.fail_after(seconds):
        while not received.endswith(ending):
            chunk = await stream.receive_some()
            assert chunk, f"closed after {received!r}"
            received += chunk
    return received


SMUGGLED = b"GET /smuggled HTTP/1.1\r\nhost: x\r\n\r\n"


async def test_transfer_encoding_wins_and_the_connection_closes(nursery: trio.Nursery) -> None:
    """A front end that frames by Content-Length would see one request with a 45-byte body;
    chatmock frames by Transfer-Encoding, answers the first, and never reads the rest."""
    app = Echo()
    client = connect(nursery, app)
    chunked = b"3\r\nabc\r\n0\r\n\r\n"
    await client.send_all(b"POST /first HTTP/1.1\r\nhost: x\r\n"
                          b"content-length: %d\r\ntransfer-encoding: chunked\r\n\r\n"
                          % (len(chunked) + len(SMUGGLED)) + chunked + SMUGGLED)
    received = await until_closed(client)
    assert received.startswith(b"HTTP/1.1 200 ")
    assert b"\r\nconnection: close\r\n" in received.lower()
    assert received.endswith(b"\r\n\r\n/first abc")
    assert received.count(b"HTTP/1.1") == 1
    assert app.paths == ["/first"]


async def test_a_content_length_beyond_the_limit_does_not_frame_a_chunked_body(
        nursery: trio.Nursery) -> None:
    app = Echo()
    client = connect(nursery, app, ConnectionLimits(max_body_bytes=100))
    await client.send_all(b"POST /big HTTP/1.1\r\nhost: x\r\ncontent-length: 999999\r\n"
                          b"transfer-encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n" + SMUGGLED)
    received = await until_closed(client)
    assert received.startswith(b"HTTP/1.1 200 ") and received.endswith(b"/big ok")
    assert app.paths == ["/big"]


async def test_a_request_whose_route_ignores_the_body_still_closes(
        nursery: trio.Nursery) -> None:
    """The route answers without reading: the rest is never parsed as requests."""
    async def early(request: Request, out: Responder) -> None:
        await out.respond(401, [], b"no")

    client, server = trio.testing.memory_stream_pair()
    nursery.start_soon(H1Connection(server, early, ConnectionLimits(), Lifecycle()).serve)
    await client.send_all(b"POST /x HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\n"
                          b"transfer-encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED * 3)
    received = await until_closed(client)
    assert received.count(b"HTTP/1.1 ") == 1 and received.startswith(b"HTTP/1.1 401 ")


async def test_a_lone_content_length_keeps_the_connection(nursery: trio.Nursery) -> None:
    app = Echo()
    client = connect(nursery, app)
    await client.send_all(b"POST /a HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\nhi"
                          b"GET /b HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
    received = await until_closed(client)
    assert received.count(b"HTTP/1.1 200 ") == 2
    assert app.paths == ["/a", "/b"]


async def trickle(stream: trio.abc.Stream, data: bytes, seconds_per_byte: float) -> None:
    for index in range(len(data)):
        await stream.send_all(data[index:index + 1])
        await trio.sleep(seconds_per_byte)


async def test_a_body_trickled_byte_by_byte_is_cut_after_the_body_timeout(
        nursery: trio.Nursery, autojump_clock: trio.abc.Clock) -> None:
    app = Echo()
    client = connect(nursery, app, ConnectionLimits(body_timeout=60, header_timeout=30))
    await client.send_all(b"POST /slow HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n")
    started = trio.current_time()
    nursery.start_soon(trickle, client, b"x" * 1000, 1.0)
    received = await until(client, b"request body not received in time")
    assert received.startswith(b"HTTP/1.1 408 ")
    assert b"\r\nconnection: close\r\n" in received.lower()
    assert 60 <= trio.current_time() - started < 61


async def test_a_body_that_stops_coming_is_cut_after_the_header_timeout(
        nursery: trio.Nursery, autojump_clock: trio.abc.Clock) -> None:
    # Each read of the body waits at most the header timeout, as each read of a head does.
    app = Echo()
    client = connect(nursery, app, ConnectionLimits(body_timeout=60, header_timeout=5))
    await client.send_all(b"POST /stalled HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nhalf")
    started = trio.current_time()
    received = await until(client, b"request body not received in time")
    assert received.startswith(b"HTTP/1.1 408 ")
    assert 5 <= trio.current_time() - started < 6


async def test_a_client_that_leaves_mid_body_is_let_go(nursery: trio.Nursery) -> None:
    app = Echo()
    client = connect(nursery, app)
    await client.send_all(b"POST /gone HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nhalf")
    await client.send_stream.aclose()
    assert await until_closed(client) == b""
    assert app.paths == ["/gone"]


async def test_a_body_in_pieces_then_a_pipelined_request(nursery: trio.Nursery) -> None:
    app = Echo()
    client = connect(nursery, app)
    await client.send_all(b"POST /a HTTP/1.1\r\nhost: x\r\ncontent-length: 6\r\n\r\nab")
    await trio.sleep(0.01)
    await client.send_all(b"cd")
    await trio.sleep(0.01)
    await client.send_all(b"efGET /b HTTP/1.1\r\nhost: x\r\n\r\n")
    received = await until(client, b"/b ")
    assert received.count(b"HTTP/1.1 200 ") == 2
    assert b"/a abcdef" in received
    assert app.paths == ["/a", "/b"]


async def test_a_chunked_body_trickled_in_small_chunks_is_cut_too(
        nursery: trio.Nursery, autojump_clock: trio.abc.Clock) -> None:
    app = Echo()
    client = connect(nursery, app, ConnectionLimits(body_timeout=20))
    await client.send_all(b"POST /slow HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n")
    started = trio.current_time()
    nursery.start_soon(trickle, client, b"1\r\nx\r\n" * 100, 0.5)
    received = await until(client, b"request body not received in time")
    assert received.startswith(b"HTTP/1.1 408 ")
    assert 20 <= trio.current_time() - started < 21


async def test_a_head_trickled_byte_by_byte_is_cut_after_the_header_timeout(
        nursery: trio.Nursery, autojump_clock: trio.abc.Clock) -> None:
    app = Echo()
    client = connect(nursery, app, ConnectionLimits(header_timeout=5))
    head = b"GET /slow HTTP/1.1\r\nhost: x\r\nx-padding: " + b"p" * 100 + b"\r\n\r\n"
    started = trio.current_time()
    nursery.start_soon(trickle, client, head, 1.0)
    received = await until(client, b'"type":"invalid_request_error"}}')
    assert received.startswith(b"HTTP/1.1 408 ")
    assert b"request head not received in time" in received
    assert 4 <= trio.current_time() - started < 6
    assert app.paths == []


async def test_a_body_that_arrives_in_time_is_read(
        nursery: trio.Nursery, autojump_clock: trio.abc.Clock) -> None:
    app = Echo()
    client = connect(nursery, app, ConnectionLimits(body_timeout=60))
    await client.send_all(b"POST /ok HTTP/1.1\r\nhost: x\r\ncontent-length: 50\r\n\r\n")
    await trickle(client, b"y" * 50, 1.0)
    received = await until(client, b"y" * 50)
    assert received.startswith(b"HTTP/1.1 200 ")
