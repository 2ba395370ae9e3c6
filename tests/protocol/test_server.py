"""chatmock.server.listen over real loopback sockets: what only a kernel socket can show."""

from __future__ import annotations

import socket

import trio

from chatmock.server.exchange import ClientGone, ConnectionLimits, Request, Responder

from .helpers import serve_on_loopback


class EndlessStream:
    """Streams until its client is gone, and notes how that ended."""

    def __init__(self) -> None:
        self.gone = trio.Event()

    async def __call__(self, request: Request, out: Responder) -> None:
        if request.path == "/ping":
            await out.respond(200, [], b"pong")
            return
        await out.start(200, [(b"content-type", b"text/plain")])
        try:
            while True:
                await out.send(b"z" * 65536)
        except ClientGone:
            self.gone.set()
            raise


async def test_a_client_that_stops_reading_is_dropped_after_the_write_timeout(
        nursery: trio.Nursery) -> None:
    app = EndlessStream()
    port = await serve_on_loopback(nursery, app, ConnectionLimits(write_timeout=0.3))
    stalled = socket.create_connection(("127.0.0.1", port))
    stalled.sendall(b"GET /stream HTTP/1.1\r\nhost: x\r\n\r\n")
    started = trio.current_time()
    with trio.fail_after(10):
        await app.gone.wait()
    assert trio.current_time() - started >= 0.3
    stalled.close()

    stream = await trio.open_tcp_stream("127.0.0.1", port)  # the server still answers
    await stream.send_all(b"GET /ping HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
    answer = b""
    with trio.fail_after(5):
        while chunk := await stream.receive_some():
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"pong")
    await stream.aclose()
