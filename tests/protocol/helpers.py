"""A minimal h11 client for driving chatmock's server over in-memory or TCP streams,
and ways to run that server in-process on a loopback port, plain or behind TLS."""

from __future__ import annotations

import itertools
import ssl
from dataclasses import dataclass, field
from typing import cast

import h11
import trio
import trustme

from chatmock.server.exchange import ConnectionLimits, Handler
from chatmock.server.http1 import H1Connection
from chatmock.server.lifecycle import Lifecycle
from chatmock.server.listen import open_listeners, serve


class Rounds:
    """Counts the scheduler's rounds: `run` is a task that runs once per round."""

    def __init__(self) -> None:
        self.count = 0

    async def run(self) -> None:
        while True:
            self.count += 1
            await trio.lowlevel.checkpoint()


async def serve_on_loopback(nursery: trio.Nursery, app: Handler,
                            limits: ConnectionLimits | None = None) -> int:
    """Run chatmock's server for `app` in `nursery` on 127.0.0.1; its port."""
    listeners = await open_listeners("127.0.0.1", 0)
    port: int = await nursery.start(lambda task_status: serve(
        app, listeners, limits=limits or ConnectionLimits(), max_connections=100,
        shutdown=trio.Event(), shutdown_timeout=0.1, task_status=task_status))
    return port


async def serve_tls_on_loopback(nursery: trio.Nursery, app: Handler,
                                certificate: trustme.LeafCert) -> int:
    """`app` behind TLS with `certificate` on 127.0.0.1; its port. Each connection
    reports a distinct client name (`tls-0`, `tls-1`, ...)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate.configure_cert(context)
    listeners = await trio.open_ssl_over_tcp_listeners(0, context, host="127.0.0.1")

    numbers = itertools.count()

    async def handle(stream: trio.SSLStream[trio.SocketStream]) -> None:
        name = f"tls-{next(numbers)}"
        await H1Connection(stream, app, ConnectionLimits(), Lifecycle(), client=name).serve()

    await nursery.start(trio.serve_listeners, handle, listeners)
    transport = cast(trio.SocketListener, listeners[0].transport_listener)
    return int(transport.socket.getsockname()[1])


@dataclass
class Reply:
    status: int
    headers: dict[bytes, bytes]
    body: bytes
    chunks: list[bytes] = field(default_factory=list)


class RawClient:
    """Sends requests with h11 on one stream; keeps the connection across requests."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.conn = h11.Connection(h11.CLIENT)

    async def send_head(self, method: str, target: str, headers: list[tuple[str, str]]) -> None:
        given = any(name.lower() == "host" for name, _ in headers)
        hdrs = headers if given else [("host", "localhost"), *headers]
        await self.stream.send_all(self.conn.send(h11.Request(method=method, target=target,
                                                              headers=hdrs)))

    async def send_body(self, data: bytes, *, end: bool = True) -> None:
        out = self.conn.send(h11.Data(data=data)) if data else b""
        if end:
            out += self.conn.send(h11.EndOfMessage())
        await self.stream.send_all(out)

    async def request(self, method: str, target: str, body: bytes = b"",
                      headers: list[tuple[str, str]] | None = None) -> Reply:
        hdrs = list(headers or [])
        if body and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in hdrs):
            hdrs.append(("content-length", str(len(body))))
        await self.send_head(method, target, hdrs)
        await self.send_body(body)
        return await self.read_reply()

    async def read_reply(self) -> Reply:
        head = await self._next(h11.Response)
        assert isinstance(head, h11.Response)
        chunks: list[bytes] = []
        while True:
            event = await self._next()
            if isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        return Reply(head.status_code, dict(head.headers), b"".join(chunks), chunks)

    async def _next(self, wanted: type | None = None) -> object:
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(bytes(await self.stream.receive_some(65536)))
                continue
            if wanted is None or isinstance(event, wanted):
                return event

    async def at_eof(self) -> bool:
        """True if the server closed the connection (reads b'')."""
        return await self.stream.receive_some(65536) == b""
