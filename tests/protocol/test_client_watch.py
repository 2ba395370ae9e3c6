"""HTTP/1.1: a client that leaves cancels its route; pipelined requests are never lost.

On trio's autojump clock, a route that would wait 100 s is cancelled without any
time passing when its client closes. Each test runs over a kernel socket (a
socketpair: the watcher's socket path) and in memory (`memory_stream_pair`: its
`receive_some` path); over a real loopback socket, a reset (RST) does the same.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import h11
import pytest
import trio
import trio.testing

from chatmock.net.tcpstream import TCPStream
from chatmock.server.exchange import ConnectionLimits, Request, Responder
from chatmock.server.http1 import H1Connection
from chatmock.server.lifecycle import Lifecycle

from .helpers import RawClient, serve_on_loopback

LONG = 100.0


class Waiter:
    """Routes that wait on "the backend" (a sleep) and note how that ended."""

    def __init__(self) -> None:
        self.cancelled = trio.Event()
        self.gone_seen: list[bool] = []
        self.answered: list[str] = []

    async def __call__(self, request: Request, out: Responder) -> None:
        body = await request.body()
        seconds = float(request.query or LONG)
        try:
            await trio.sleep(seconds)
        except trio.Cancelled:
            self.gone_seen.append(out.client_gone)
            self.cancelled.set()
            raise
        self.answered.append(request.path)
        await out.respond(200, [], request.path.encode() + b" " + body)


Streams = tuple[trio.abc.HalfCloseableStream, trio.abc.HalfCloseableStream]


@pytest.fixture(params=["socket", "memory"])
def transport(request: pytest.FixtureRequest) -> Iterator[Streams]:
    """(client, server) streams: a socketpair under TCPStream, or in memory."""
    if request.param == "memory":
        yield trio.testing.memory_stream_pair()
        return
    ours, theirs = socket.socketpair()
    with ours, theirs:
        yield TCPStream(ours), TCPStream(theirs)


def serve(nursery: trio.Nursery, app: Waiter, transport: Streams,
          limits: ConnectionLimits | None = None) -> RawClient:
    client_stream, server_stream = transport
    connection = H1Connection(server_stream, app, limits or ConnectionLimits(), Lifecycle())
    nursery.start_soon(connection.serve)
    return RawClient(client_stream)


async def read_bodies(stream: trio.abc.Stream, count: int) -> list[bytes]:
    """The bodies of the next `count` responses, for requests sent as raw bytes."""
    buffered, bodies = b"", list[bytes]()
    while len(bodies) < count:
        conn = h11.Connection(h11.CLIENT)
        conn.send(h11.Request(method="GET", target="/", headers=[("host", "x")]))
        conn.send(h11.EndOfMessage())
        if buffered:
            conn.receive_data(buffered)  # (b"" would mean EOF)
        parts = []
        while not isinstance(event := conn.next_event(), h11.EndOfMessage):
            if event is h11.NEED_DATA:
                conn.receive_data(bytes(await stream.receive_some(65536)))
            elif isinstance(event, h11.Data):
                parts.append(bytes(event.data))
        bodies.append(b"".join(parts))
        buffered = conn.trailing_data[0]
    return bodies


async def test_leaving_after_the_body_cancels_the_route_at_once(
        nursery: trio.Nursery, transport: Streams,
        autojump_clock: trio.abc.Clock) -> None:
    app = Waiter()
    client = serve(nursery, app, transport)
    await client.send_head("POST", "/wait", [("content-length", "5")])
    await client.send_body(b"hello")
    await trio.sleep(1)
    left = trio.current_time()
    await client.stream.aclose()
    await app.cancelled.wait()
    assert trio.current_time() == left
    assert app.gone_seen == [True]
    assert app.answered == []


async def test_leaving_during_a_bodyless_request_cancels_the_route(
        nursery: trio.Nursery, transport: Streams,
        autojump_clock: trio.abc.Clock) -> None:
    app = Waiter()
    client = serve(nursery, app, transport)
    await client.send_head("GET", "/wait", [])
    await trio.sleep(1)
    left = trio.current_time()
    await client.stream.aclose()
    await app.cancelled.wait()
    assert trio.current_time() == left


async def test_a_chunked_body_is_read_whole_before_watching(
        nursery: trio.Nursery, transport: Streams,
        autojump_clock: trio.abc.Clock) -> None:
    app = Waiter()
    client = serve(nursery, app, transport)
    await client.send_head("POST", "/wait?2", [("transfer-encoding", "chunked")])
    await client.send_body(b"piece one ", end=False)
    await trio.sleep(1)
    await client.send_body(b"and two")
    reply = await client.read_reply()
    assert reply.body == b"/wait piece one and two"


async def test_pipelined_requests_in_one_write_are_all_answered(
        nursery: trio.Nursery, transport: Streams,
        autojump_clock: trio.abc.Clock) -> None:
    app = Waiter()
    client = serve(nursery, app, transport)
    raw = b"".join(b"POST /r%d?1 HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\nb%d" % (n, n)
                   for n in range(3))
    await client.stream.send_all(raw)
    assert await read_bodies(client.stream, 3) == [b"/r0 b0", b"/r1 b1", b"/r2 b2"]


async def test_a_request_pipelined_while_the_route_waits_is_kept(
        nursery: trio.Nursery, transport: Streams,
        autojump_clock: trio.abc.Clock) -> None:
    """The watcher reads the second request while the first route waits; h11 gets it."""
    app = Waiter()
    client = serve(nursery, app, transport)
    await client.stream.send_all(b"GET /first?5 HTTP/1.1\r\nhost: x\r\n\r\n")
    await trio.sleep(1)
    await client.stream.send_all(b"GET /second?1 HTTP/1.1\r\nhost: x\r\n\r\n")
    await trio.sleep(1)
    await client.stream.send_all(b"GET /third?1 HTTP/1.1\r\n")  # half a head, then the rest
    await trio.sleep(1)
    await client.stream.send_all(b"host: x\r\n\r\n")
    assert await read_bodies(client.stream, 3) == [b"/first ", b"/second ", b"/third "]


async def test_past_the_bound_pipelined_bytes_wait_in_the_stream(
        nursery: trio.Nursery, transport: Streams,
        autojump_clock: trio.abc.Clock) -> None:
    """More than max_header_bytes pipelined: watching stops, nothing is lost."""
    app = Waiter()
    client = serve(nursery, app, transport, ConnectionLimits(max_header_bytes=200))
    await client.stream.send_all(b"GET /first?5 HTTP/1.1\r\nhost: x\r\n\r\n")
    await trio.sleep(1)
    many = [b"GET /n%02d?0 HTTP/1.1\r\nhost: x\r\n\r\n" % n for n in range(40)]
    for request in many:
        await client.stream.send_all(request)
    bodies = await read_bodies(client.stream, 41)
    assert bodies == [b"/first "] + [b"/n%02d " % n for n in range(40)]


async def test_a_finished_exchange_stops_the_watch(
        nursery: trio.Nursery, transport: Streams,
        autojump_clock: trio.abc.Clock) -> None:
    """Between requests the connection is idle, not watched: a close there is no news."""
    app = Waiter()
    client = serve(nursery, app, transport)
    reply = await client.request("POST", "/quick?0", b"x")
    assert reply.body == b"/quick x"
    await client.stream.aclose()
    await trio.sleep(1)
    assert not app.cancelled.is_set()


async def test_a_reset_cancels_the_route(nursery: trio.Nursery) -> None:
    app = Waiter()
    port = await serve_on_loopback(nursery, app)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /wait HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\n\r\nz")
        await trio.sleep(0.2)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    left = trio.current_time()
    with trio.fail_after(5):
        await app.cancelled.wait()
    assert trio.current_time() - left < 1.0
    assert app.gone_seen == [True]
