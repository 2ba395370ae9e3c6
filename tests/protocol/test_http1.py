"""The HTTP/1.1 server (chatmock.server.http1) over in-memory streams."""

from __future__ import annotations

import trio
import trio.testing

from chatmock.errors import ClientError
from chatmock.server.exchange import ConnectionLimits, Request, Responder
from chatmock.server.http1 import H1Connection
from chatmock.server.lifecycle import Lifecycle

from .helpers import RawClient

STREAM_PIECES = 200
PIECE = b"x" * 1000


async def app(request: Request, out: Responder) -> None:
    try:
        if request.path == "/early":
            await out.respond(401, [(b"content-type", b"text/plain")], b"no")
        elif request.path == "/stream":
            await out.start(200, [(b"content-type", b"text/plain")])
            for _ in range(STREAM_PIECES):
                await out.send(PIECE)
            await out.end(b"end")
        elif request.path == "/nothing":
            return
        else:
            body = await request.body()
            await out.respond(200, [(b"x-method", request.method.encode())], body)
    except ClientError as exc:
        await out.respond(exc.status, [], exc.message.encode())


def serve(nursery: trio.Nursery, limits: ConnectionLimits | None = None,
          lifecycle: Lifecycle | None = None) -> RawClient:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    connection = H1Connection(server_stream, app, limits or ConnectionLimits(),
                              lifecycle or Lifecycle())
    nursery.start_soon(connection.serve)
    return RawClient(client_stream)


async def test_keep_alive_serves_many_requests_on_one_connection(nursery: trio.Nursery) -> None:
    client = serve(nursery)
    for number in range(3):
        reply = await client.request("POST", "/echo", f"body {number}".encode())
        assert reply.status == 200
        assert reply.body == f"body {number}".encode()


async def test_chunked_request_body_is_reassembled(nursery: trio.Nursery) -> None:
    client = serve(nursery)
    await client.send_head("POST", "/echo", [("transfer-encoding", "chunked")])
    for piece in (b"hello ", b"chunked ", b"world"):
        await client.send_body(piece, end=False)
    await client.send_body(b"")
    reply = await client.read_reply()
    assert reply.body == b"hello chunked world"


async def test_error_before_body_keeps_connection_usable(nursery: trio.Nursery) -> None:
    client = serve(nursery)
    reply = await client.request("POST", "/early", b"a body the route never read" * 100)
    assert reply.status == 401
    again = await client.request("POST", "/echo", b"second")
    assert (again.status, again.body) == (200, b"second")


async def test_declared_body_over_limit_gets_413_and_close(nursery: trio.Nursery) -> None:
    client = serve(nursery, ConnectionLimits(max_body_bytes=10))
    await client.send_head("POST", "/echo", [("content-length", "1000")])
    reply = await client.read_reply()
    assert reply.status == 413
    assert await client.at_eof()


async def test_chunked_body_over_limit_gets_413(nursery: trio.Nursery) -> None:
    client = serve(nursery, ConnectionLimits(max_body_bytes=10))
    await client.send_head("POST", "/echo", [("transfer-encoding", "chunked")])
    await client.send_body(b"y" * 50, end=False)
    reply = await client.read_reply()
    assert reply.status == 413


async def test_oversized_head_gets_431(nursery: trio.Nursery) -> None:
    client = serve(nursery, ConnectionLimits(max_header_bytes=1024))
    head = b"GET / HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 4096 + b"\r\n\r\n"
    await client.stream.send_all(head)
    reply = await client.read_reply()
    assert reply.status == 431
    assert b"error" in reply.body


async def test_garbage_gets_400_and_close(nursery: trio.Nursery) -> None:
    client = serve(nursery)
    await client.stream.send_all(b"NOT HTTP AT ALL\r\n\r\n")
    reply = await client.read_reply()
    assert reply.status == 400
    assert await client.at_eof()


async def test_slow_head_times_out_with_408(nursery: trio.Nursery,
                                            autojump_clock: trio.abc.Clock) -> None:
    client = serve(nursery, ConnectionLimits(header_timeout=5))
    await client.stream.send_all(b"GET / HTTP/1.1\r\nhost: x\r\n")
    reply = await client.read_reply()
    assert reply.status == 408


async def test_idle_connection_is_closed_after_idle_timeout(
        nursery: trio.Nursery, autojump_clock: trio.abc.Clock) -> None:
    client = serve(nursery, ConnectionLimits(idle_timeout=3))
    await client.request("GET", "/echo")
    started = trio.current_time()
    assert await client.at_eof()
    assert 3 <= trio.current_time() - started < 4


async def test_route_without_response_gets_500(nursery: trio.Nursery) -> None:
    client = serve(nursery)
    reply = await client.request("GET", "/nothing")
    assert reply.status == 500


async def test_head_request_has_length_but_no_body(nursery: trio.Nursery) -> None:
    client = serve(nursery)
    reply = await client.request("HEAD", "/echo")
    assert reply.status == 200
    assert reply.body == b""


async def test_streamed_response_is_chunked_and_complete(nursery: trio.Nursery) -> None:
    client = serve(nursery)
    reply = await client.request("GET", "/stream")
    assert reply.headers.get(b"transfer-encoding") == b"chunked"
    assert reply.body == PIECE * STREAM_PIECES + b"end"


async def raw_exchange(nursery: trio.Nursery, request: bytes) -> bytes:
    """Everything the server writes for `request` (sent whole) until it closes."""
    client_stream, server_stream = trio.testing.memory_stream_pair()
    nursery.start_soon(H1Connection(server_stream, app, ConnectionLimits(), Lifecycle()).serve)
    await client_stream.send_all(request)
    received = b""
    while chunk := await client_stream.receive_some():
        received += chunk
    return received


async def test_streamed_chunks_are_framed_byte_for_byte(nursery: trio.Nursery) -> None:
    raw = await raw_exchange(nursery, b"GET /stream HTTP/1.1\r\nhost: x\r\n"
                                      b"connection: close\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"\r\ntransfer-encoding: chunked" in head.lower()
    assert body == (b"3e8\r\n" + PIECE + b"\r\n") * STREAM_PIECES + b"3\r\nend\r\n0\r\n\r\n"


async def test_an_http10_client_gets_a_body_ended_by_the_close(nursery: trio.Nursery) -> None:
    raw = await raw_exchange(nursery, b"GET /stream HTTP/1.0\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head.lower()
    assert body == PIECE * STREAM_PIECES + b"end"


async def test_head_of_a_streamed_route_has_no_body(nursery: trio.Nursery) -> None:
    raw = await raw_exchange(nursery, b"HEAD /stream HTTP/1.1\r\nhost: x\r\n"
                                      b"connection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200") and raw.endswith(b"\r\n\r\n")


async def test_slow_reader_applies_backpressure(nursery: trio.Nursery) -> None:
    """With no buffer between the sides, the route cannot run ahead of the reader."""
    client_stream, server_stream = trio.testing.lockstep_stream_pair()
    sent: list[int] = []

    async def counting_app(request: Request, out: Responder) -> None:
        await out.start(200, [])
        for number in range(50):
            await out.send(PIECE)
            sent.append(number)
        await out.end()

    connection = H1Connection(server_stream, counting_app, ConnectionLimits(), Lifecycle())
    nursery.start_soon(connection.serve)
    client = RawClient(client_stream)
    await client.send_head("GET", "/", [])
    await client.send_body(b"")
    await client.stream.receive_some(100)
    await trio.testing.wait_all_tasks_blocked()
    assert len(sent) <= 2, "the server wrote ahead of a client that is not reading"


async def test_drain_closes_idle_connection(nursery: trio.Nursery) -> None:
    lifecycle = Lifecycle()
    client = serve(nursery, lifecycle=lifecycle)
    await client.request("GET", "/echo")
    await trio.testing.wait_all_tasks_blocked()
    lifecycle.begin_drain()
    assert await client.at_eof()


async def test_response_started_during_drain_says_connection_close(
        nursery: trio.Nursery) -> None:
    lifecycle = Lifecycle()
    release = trio.Event()

    async def waiting_app(request: Request, out: Responder) -> None:
        await release.wait()
        await out.respond(200, [], b"done")

    client_stream, server_stream = trio.testing.memory_stream_pair()
    connection = H1Connection(server_stream, waiting_app, ConnectionLimits(), lifecycle)
    nursery.start_soon(connection.serve)
    client = RawClient(client_stream)
    await client.send_head("GET", "/", [])
    await client.send_body(b"")
    await trio.testing.wait_all_tasks_blocked()
    lifecycle.begin_drain()
    release.set()
    reply = await client.read_reply()
    assert (reply.status, reply.body) == (200, b"done")
    assert reply.headers[b"connection"] == b"close"
    assert await client.at_eof()
