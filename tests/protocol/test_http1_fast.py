"""The HTTP/1.1 server's by-hand path (server/h1fast.py) and its hand-overs to h11, over
in-memory streams: pipelined requests, bodies read or left unread, whole or still to
come, and answers h11 must frame itself, each read back by an h11 client."""

from __future__ import annotations

import h11
import trio
import trio.testing

from chatmock.server.exchange import ConnectionLimits, Request, Responder
from chatmock.server.http1 import H1Connection
from chatmock.server.lifecycle import Lifecycle


async def app(request: Request, out: Responder) -> None:
    if request.path == "/early":
        await out.respond(401, [(b"content-type", b"text/plain")], b"no")
    elif request.path == "/empty":
        await out.respond(204, [], b"")
    elif request.path == "/read-then-empty":
        await request.body()
        await out.respond(204, [], b"")
    elif request.path == "/stream":
        await out.start(200, [(b"content-type", b"text/plain")])
        await out.send(await request.body())
        await out.end(b"!")
    else:
        body = await request.body()
        await out.respond(200, [(b"x-method", request.method.encode())], body)


def post(path: str, body: bytes) -> bytes:
    return b"POST %s HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s" % (
        path.encode(), len(body), body)


class Replies:
    """Reads the server's answers in order, each with an h11 client of its own."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.left = b""

    async def next(self, method: bytes = b"POST") -> tuple[int, dict[bytes, bytes], bytes]:
        conn = h11.Connection(h11.CLIENT)
        conn.send(h11.Request(method=method, target="/", headers=[("host", "a")]))
        conn.send(h11.EndOfMessage())
        if self.left:
            conn.receive_data(self.left)
        status, headers, body = 0, {}, b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(bytes(await self.stream.receive_some(65536)))
            elif isinstance(event, h11.Response):
                status, headers = event.status_code, dict(event.headers)
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                self.left = conn.trailing_data[0]
                return status, headers, body


def serve(nursery: trio.Nursery) -> tuple[trio.abc.Stream, Replies]:
    client, server = trio.testing.memory_stream_pair()
    connection = H1Connection(server, app, ConnectionLimits(), Lifecycle())
    nursery.start_soon(connection.serve)
    return client, Replies(client)


async def test_pipelined_requests_are_answered_in_order(nursery: trio.Nursery) -> None:
    client, replies = serve(nursery)
    await client.send_all(post("/early", b"unread") + post("/echo", b"one")
                          + post("/stream", b"two") + post("/empty", b"")
                          + post("/echo", b"three"))
    assert (await replies.next())[::2] == (401, b"no")
    assert (await replies.next())[::2] == (200, b"one")
    status, headers, body = await replies.next()
    assert (status, headers[b"transfer-encoding"], body) == (200, b"chunked", b"two!")
    status, headers, body = await replies.next()
    assert (status, body, b"content-length" in headers) == (204, b"", True)
    assert (await replies.next())[::2] == (200, b"three")


async def test_a_body_still_to_come_is_read_by_h11(nursery: trio.Nursery) -> None:
    client, replies = serve(nursery)
    whole = post("/echo", b"split body")
    await client.send_all(whole[:-4])
    await trio.sleep(0.01)
    await client.send_all(whole[-4:] + post("/early", b"x" * 10)[:-3])
    assert (await replies.next())[::2] == (200, b"split body")
    assert (await replies.next())[::2] == (401, b"no")
    await client.send_all(b"xxx" + post("/echo", b"after"))  # the unread body's end
    assert (await replies.next())[::2] == (200, b"after")


async def test_a_head_in_pieces_and_an_unusual_one_go_to_h11(nursery: trio.Nursery) -> None:
    client, replies = serve(nursery)
    head = post("/echo", b"abc")
    for cut in (5, 20):
        await client.send_all(head[:cut])
        await trio.sleep(0.01)
        await client.send_all(head[cut:])
        assert (await replies.next())[::2] == (200, b"abc")
    await client.send_all(b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"2\r\nhi\r\n0\r\n\r\n" + post("/echo", b"back"))
    assert (await replies.next())[::2] == (200, b"hi")
    assert (await replies.next())[::2] == (200, b"back")


async def test_the_client_leaving_ends_the_connection(nursery: trio.Nursery) -> None:
    client, replies = serve(nursery)
    await client.send_all(post("/echo", b"last"))
    assert (await replies.next())[::2] == (200, b"last")
    await client.send_all(b"POST /echo HTT")
    await client.aclose()


async def test_an_early_answer_with_the_body_still_to_come(nursery: trio.Nursery) -> None:
    client, replies = serve(nursery)
    await client.send_all(post("/early", b"x" * 10)[:-3])
    assert (await replies.next())[::2] == (401, b"no")
    await client.send_all(b"xxx" + post("/read-then-empty", b"read") + post("/echo", b"next"))
    assert (await replies.next())[0] == 204
    assert (await replies.next())[::2] == (200, b"next")
    await client.send_all(post("/read-then-empty", b"read") + post("/echo", b"again"))
    assert (await replies.next())[0] == 204
    assert (await replies.next())[::2] == (200, b"again")
