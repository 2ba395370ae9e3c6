"""The WebSocket adapter (chatmock.server.websocket) behind the HTTP/1.1 upgrade, in memory.

A wsproto client talks to a real `H1Connection` over `memory_stream_pair`;
the app upgrades and echoes, so every test goes through the same handshake,
leftover-bytes hand-over and close path as the server.
"""

from __future__ import annotations

import contextlib

import trio
import trio.testing
from wsproto import ConnectionType, WSConnection
from wsproto.connection import Connection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Pong,
    TextMessage,
)
from wsproto.events import Request as Handshake
from wsproto.extensions import PerMessageDeflate

from chatmock.errors import ClientError
from chatmock.server.exchange import (
    ClientGone,
    ConnectionLimits,
    Request,
    Responder,
    WebSocketUpgrade,
)
from chatmock.server.http1 import H1Connection
from chatmock.server.lifecycle import Lifecycle
from chatmock.server.websocket import WebSocket

SMALL_LIMIT = 1000


class Client:
    """A wsproto client over one in-memory stream; `raw` keeps every byte received."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.raw = bytearray()

    async def connect(self, *, deflate: bool = False, target: str = "/ws") -> Event:
        extensions = [PerMessageDeflate()] if deflate else []
        await self.stream.send_all(self.ws.send(Handshake(host="test", target=target,
                                                          extensions=extensions)))
        return await self.next_event()

    async def send(self, event: Event) -> None:
        await self.stream.send_all(self.ws.send(event))

    async def next_event(self) -> Event:
        while True:
            for event in self.ws.events():
                return event
            data = bytes(await self.stream.receive_some(65536))
            self.raw += data
            self.ws.receive_data(data or None)

    async def text(self) -> str:
        parts: list[str] = []
        while True:
            event = await self.next_event()
            assert isinstance(event, TextMessage), event
            parts.append(event.data)
            if event.message_finished:
                return "".join(parts)


async def echo(request: Request, out: Responder) -> None:
    """Echoes text; 'slow' waits inside `responding()` until the body is cancelled or 5 s."""
    assert isinstance(out, WebSocketUpgrade)
    try:
        socket = await out.upgrade_websocket(request)
    except ClientError as exc:
        await out.respond(exc.status, list(exc.headers), exc.message.encode())
        return
    assert isinstance(socket, WebSocket)
    if request.query == "small":
        socket.max_message_bytes = SMALL_LIMIT
    while (message := await socket.receive()) is not None:
        if message == "slow":
            await _slow(socket)
        elif message == "bye":
            await socket.close(1000, "bye")
        else:
            await socket.send_text(message if isinstance(message, str)
                                   else f"bytes:{len(message)}")
    await socket.close()


async def _slow(socket: WebSocket) -> None:
    finished = False
    async with socket.responding():
        await trio.sleep(0.3)
        finished = True
    await socket.send_text("slow done" if finished else "slow cancelled")


def serve(nursery: trio.Nursery, lifecycle: Lifecycle | None = None) -> Client:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    connection = H1Connection(server_stream, echo, ConnectionLimits(), lifecycle or Lifecycle())
    nursery.start_soon(connection.serve)
    return Client(client_stream)


async def test_handshake_without_deflate_and_echo(nursery: trio.Nursery) -> None:
    client = serve(nursery)
    accepted = await client.connect()
    assert isinstance(accepted, AcceptConnection)
    assert accepted.extensions == []
    assert b"sec-websocket-extensions" not in bytes(client.raw).lower()
    await client.send(TextMessage(data="hello"))
    assert await client.text() == "hello"
    await client.send(BytesMessage(data=b"\x00\x01\x02"))
    assert await client.text() == "bytes:3"


async def test_handshake_with_permessage_deflate_compresses(nursery: trio.Nursery) -> None:
    client = serve(nursery)
    accepted = await client.connect(deflate=True)
    assert isinstance(accepted, AcceptConnection)
    assert [extension.name for extension in accepted.extensions] == ["permessage-deflate"]
    before = len(client.raw)
    text = "abc " * 50_000
    await client.send(TextMessage(data=text))
    assert await client.text() == text
    assert len(client.raw) - before < len(text) // 20  # the echo came compressed
    await client.send(TextMessage(data="again"))  # the context carries over between messages
    assert await client.text() == "again"


async def test_first_frame_sent_with_the_request_head(nursery: trio.Nursery) -> None:
    client = serve(nursery)
    head = client.ws.send(Handshake(host="test", target="/ws"))
    frame = Connection(ConnectionType.CLIENT).send(TextMessage(data="early"))
    await client.stream.send_all(head + frame)
    assert isinstance(await client.next_event(), AcceptConnection)
    assert await client.text() == "early"


async def test_fragmented_messages_are_joined(nursery: trio.Nursery) -> None:
    client = serve(nursery)
    await client.connect()
    await client.send(TextMessage(data="frag", message_finished=False))
    await client.send(Ping(payload=b"between"))  # control frames may interleave
    await client.send(TextMessage(data="mented ", message_finished=False))
    await client.send(TextMessage(data="héllo", message_finished=True))
    pong = await client.next_event()
    assert isinstance(pong, Pong) and pong.payload == b"between"
    assert await client.text() == "fragmented héllo"
    await client.send(BytesMessage(data=b"ab", message_finished=False))
    await client.send(BytesMessage(data=b"cd", message_finished=True))
    assert await client.text() == "bytes:4"


async def test_ping_is_answered_while_idle_and_while_responding(nursery: trio.Nursery) -> None:
    client = serve(nursery)
    await client.connect()
    await client.send(Ping(payload=b"idle"))
    assert await client.next_event() == Pong(payload=b"idle")
    await client.send(TextMessage(data="slow"))
    await client.send(Ping(payload=b"busy"))
    assert await client.next_event() == Pong(payload=b"busy")  # before the answer
    assert await client.text() == "slow done"


async def test_message_sent_while_responding_is_kept(nursery: trio.Nursery) -> None:
    client = serve(nursery)
    await client.connect()
    await client.send(TextMessage(data="slow"))
    await client.send(TextMessage(data="next"))
    assert await client.text() == "slow done"
    assert await client.text() == "next"


async def test_client_close_handshake(nursery: trio.Nursery) -> None:
    client = serve(nursery)
    await client.connect()
    await client.send(CloseConnection(code=1000, reason="done"))
    reply = await client.next_event()
    assert isinstance(reply, CloseConnection) and reply.code == 1000
    await client.stream.aclose()


async def test_server_close_handshake(nursery: trio.Nursery) -> None:
    client = serve(nursery)
    await client.connect()
    await client.send(TextMessage(data="bye"))
    closing = await client.next_event()
    assert isinstance(closing, CloseConnection) and closing.reason == "bye"
    await client.send(closing.response())
    assert await client.stream.receive_some(65536) == b""  # then the server hangs up


async def test_close_while_responding_cancels_the_response(nursery: trio.Nursery) -> None:
    client = serve(nursery)
    await client.connect()
    await client.send(TextMessage(data="slow"))
    await client.send(CloseConnection(code=1001))
    reply = await client.next_event()
    assert isinstance(reply, CloseConnection) and reply.code == 1001
    assert await client.stream.receive_some(65536) == b""  # no "slow ..." text after it


async def test_oversized_message_closes_with_1009(nursery: trio.Nursery) -> None:
    client = serve(nursery)
    assert isinstance(await client.connect(target="/ws?small"), AcceptConnection)
    await client.send(TextMessage(data="x" * 600, message_finished=False))
    await client.send(TextMessage(data="x" * 600, message_finished=True))
    closing = await client.next_event()
    assert isinstance(closing, CloseConnection) and closing.code == 1009
    await client.send(closing.response())


async def test_drain_closes_an_idle_socket_with_1001(nursery: trio.Nursery) -> None:
    lifecycle = Lifecycle()
    client = serve(nursery, lifecycle)
    await client.connect()
    await client.send(TextMessage(data="warm"))
    assert await client.text() == "warm"
    lifecycle.begin_drain()
    closing = await client.next_event()
    assert isinstance(closing, CloseConnection) and closing.code == 1001
    await client.send(closing.response())


async def test_drain_lets_a_response_in_progress_finish(nursery: trio.Nursery) -> None:
    lifecycle = Lifecycle()
    client = serve(nursery, lifecycle)
    await client.connect()
    await client.send(TextMessage(data="slow"))
    await trio.sleep(0.05)
    lifecycle.begin_drain()
    assert await client.text() == "slow done"
    closing = await client.next_event()
    assert isinstance(closing, CloseConnection) and closing.code == 1001


async def test_bad_handshakes_are_refused_before_the_upgrade(nursery: trio.Nursery) -> None:
    cases = [
        ([(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade"),
          (b"Sec-WebSocket-Version", b"13")], 400),  # no Sec-WebSocket-Key
        ([(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade"),
          (b"Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="),
          (b"Sec-WebSocket-Version", b"8")], 426),
        ([(b"Connection", b"keep-alive")], 426),
    ]
    for headers, status in cases:
        client = serve(nursery)
        raw = b"GET /ws HTTP/1.1\r\nHost: test\r\n" + b"".join(
            name + b": " + value + b"\r\n" for name, value in headers) + b"\r\n"
        await client.stream.send_all(raw)
        data = await client.stream.receive_some(65536)
        assert data.startswith(b"HTTP/1.1 %d " % status), (headers, data)
        await client.stream.aclose()



class Responding:
    """Upgrades, then answers each message with a 100 s response inside `responding()`."""

    def __init__(self) -> None:
        self.outcome: list[str] = []
        self.done = trio.Event()

    async def __call__(self, request: Request, out: Responder) -> None:
        assert isinstance(out, WebSocketUpgrade)
        socket = await out.upgrade_websocket(request)
        try:
            while await socket.receive() is not None:
                async with socket.responding():
                    await trio.sleep(100)
                self.outcome.append("finished")
        except ClientGone:
            self.outcome.append(f"gone at {trio.current_time():g}")
        finally:
            self.done.set()


async def vanish_mid_response(nursery: trio.Nursery, *messages: str) -> list[str]:
    app = Responding()
    client_stream, server_stream = trio.testing.memory_stream_pair()
    nursery.start_soon(H1Connection(server_stream, app, ConnectionLimits(), Lifecycle()).serve)
    client = Client(client_stream)
    await client.connect()
    for message in messages:
        await client.send(TextMessage(data=message))
    await trio.sleep(1)
    await client_stream.aclose()  # no close frame: EOF (a reset reads the same)
    await app.done.wait()
    return app.outcome


async def test_a_peer_that_vanishes_mid_response_cancels_it(
        nursery: trio.Nursery, autojump_clock: trio.abc.Clock) -> None:
    assert await vanish_mid_response(nursery, "go") == ["gone at 1"]


async def test_a_peer_that_vanishes_with_a_message_waiting_cancels_the_response(
        nursery: trio.Nursery, autojump_clock: trio.abc.Clock) -> None:
    assert await vanish_mid_response(nursery, "go", "queued", "more") == ["gone at 1"]


async def test_a_frame_sent_before_a_slow_upgrade_is_kept(
        nursery: trio.Nursery, autojump_clock: trio.abc.Clock) -> None:
    """The HTTP/1.1 client watch reads it while the route thinks; the socket gets it."""
    async def slow_upgrade(request: Request, out: Responder) -> None:
        await trio.sleep(1)
        await echo(request, out)

    client_stream, server_stream = trio.testing.memory_stream_pair()
    nursery.start_soon(H1Connection(server_stream, slow_upgrade, ConnectionLimits(),
                                    Lifecycle()).serve)
    client = Client(client_stream)
    await client.stream.send_all(client.ws.send(Handshake(host="test", target="/ws")))
    await trio.sleep(0.5)
    await client.stream.send_all(Connection(ConnectionType.CLIENT).send(TextMessage(data="hi")))
    assert isinstance(await client.next_event(), AcceptConnection)
    assert await client.text() == "hi"


async def test_a_close_frame_that_comes_as_a_response_ends_is_answered(
        autojump_clock: trio.abc.Clock) -> None:
    """The soak's finding: a client that closes right after a response's last frame (here
    while the server still tidies up the backend exchange) must get its close reply; the
    end of the response cancels the reading task, and used to cancel the reply it was
    writing, so the peer saw the connection drop without a close frame."""
    incoming, arriving = trio.open_memory_channel[bytes](4)
    written: list[bytes] = []

    async def write(data: bytes) -> None:
        await trio.sleep(0.01)  # a write takes a moment on a busy machine
        written.append(data)

    socket = WebSocket(Connection(ConnectionType.SERVER), arriving.receive, write)
    peer = Connection(ConnectionType.CLIENT)
    with contextlib.suppress(ClientGone):  # the peer left; the route may hear of it
        async with socket.responding():
            await incoming.send(peer.send(CloseConnection(code=1000)))
            await trio.sleep(0.005)  # the response ends while the reply is being written
    peer.receive_data(b"".join(written))
    assert [type(event) for event in peer.events()] == [CloseConnection]
