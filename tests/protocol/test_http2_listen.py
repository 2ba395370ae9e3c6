"""How a connection picks its protocol (chatmock.server.listen): the h2c preface or HTTP/1.1
on the plain port, ALPN behind TLS; and a WebSocket over HTTP/2 (RFC 8441)."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing
import trustme
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import CloseConnection, TextMessage

from chatmock.net.h2wire import PREFACE
from chatmock.server.exchange import ConnectionLimits, Request, Responder, WebSocketUpgrade
from chatmock.server.http2 import H2ServerConnection
from chatmock.server.lifecycle import Lifecycle
from chatmock.server.listen import open_listeners, serve, server_tls_context

from .h2client import H2Client
from .helpers import RawClient, serve_on_loopback


async def version_app(request: Request, out: Responder) -> None:
    if request.path == "/ws":
        assert isinstance(out, WebSocketUpgrade)
        socket = await out.upgrade_websocket(request, subprotocol="chat")
        while (message := await socket.receive()) is not None:
            await socket.send_text(f"echo {message!s}")
        await socket.close()
        return
    await out.respond(200, [(b"content-type", b"text/plain")],
                      f"{request.http_version} {request.header(b'host')}".encode())


Opened = list[trio.abc.Stream]


@pytest.fixture
async def opened() -> AsyncIterator[Opened]:
    """Client streams a test opened, closed at its end."""
    streams: Opened = []
    yield streams
    for stream in streams:
        await trio.aclose_forcefully(stream)


async def tcp(port: int, opened: Opened) -> trio.abc.Stream:
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    opened.append(stream)
    return stream


async def test_h2c_and_http11_share_the_plain_port(nursery: trio.Nursery, opened: Opened) -> None:
    port = await serve_on_loopback(nursery, version_app)
    h2 = H2Client(await tcp(port, opened))
    await h2.start(nursery)
    reply = await h2.request("GET", "/")
    assert reply.body == b"2 localhost"
    h1 = RawClient(await tcp(port, opened))
    assert (await h1.request("GET", "/")).body == b"1.1 localhost"


async def test_a_preface_arriving_in_pieces_is_recognised(nursery: trio.Nursery,
                                                          opened: Opened) -> None:
    port = await serve_on_loopback(nursery, version_app)
    stream = await tcp(port, opened)
    client = H2Client(stream)
    client.conn.initiate_connection()
    opening = client.conn.data_to_send()
    assert opening.startswith(PREFACE)
    for cut in (3, 10, 24):
        await stream.send_all(opening[:cut])
        opening = opening[cut:]
        await trio.sleep(0.01)
    await stream.send_all(opening)
    nursery.start_soon(client._reader)
    assert (await client.request("GET", "/")).body == b"2 localhost"


async def test_an_http11_request_starting_like_the_preface_is_http11(
        nursery: trio.Nursery, opened: Opened) -> None:
    port = await serve_on_loopback(nursery, version_app)
    stream = await tcp(port, opened)
    await stream.send_all(b"P")
    await trio.sleep(0.01)
    await stream.send_all(b"UT / HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\n\r\n")
    answer = await stream.receive_some(4096)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"1.1 a")


async def tls_server(nursery: trio.Nursery, tmp: object, ca: trustme.CA) -> int:
    certificate = ca.issue_cert("127.0.0.1")
    cert_file = f"{tmp}/cert.pem"
    key_file = f"{tmp}/key.pem"
    certificate.cert_chain_pems[0].write_to_path(cert_file)
    certificate.private_key_pem.write_to_path(key_file)
    listeners = await open_listeners("127.0.0.1", 0)
    port: int = await nursery.start(lambda task_status: serve(
        version_app, listeners, limits=ConnectionLimits(), max_connections=10,
        shutdown=trio.Event(), shutdown_timeout=0.1,
        tls=server_tls_context(cert_file, key_file), task_status=task_status))
    return port


async def open_tls(port: int, ca: trustme.CA, alpn: list[str] | None,
                   opened: Opened) -> trio.SSLStream[trio.abc.Stream]:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    if alpn:
        context.set_alpn_protocols(alpn)
    stream = trio.SSLStream(await tcp(port, opened), context, server_hostname="127.0.0.1")
    await stream.do_handshake()
    return stream


async def test_tls_with_alpn_serves_both_versions(nursery: trio.Nursery, tmp_path: object,
                                                  opened: Opened) -> None:
    ca = trustme.CA()
    port = await tls_server(nursery, tmp_path, ca)
    secured = await open_tls(port, ca, ["h2", "http/1.1"], opened)
    assert secured.selected_alpn_protocol() == "h2"
    h2 = H2Client(secured)
    await h2.start(nursery)
    assert (await h2.request("GET", "/")).body == b"2 localhost"
    for alpn in (["http/1.1"], None):
        h1 = RawClient(await open_tls(port, ca, alpn, opened))
        assert (await h1.request("GET", "/")).body == b"1.1 localhost"


async def test_a_failed_tls_handshake_leaves_the_server_serving(
        nursery: trio.Nursery, tmp_path: object, opened: Opened) -> None:
    ca = trustme.CA()
    port = await tls_server(nursery, tmp_path, ca)
    plain = await tcp(port, opened)
    await plain.send_all(b"GET / HTTP/1.1\r\nhost: a\r\n\r\n")
    assert await plain.receive_some(100) == b""
    h1 = RawClient(await open_tls(port, ca, None, opened))
    assert (await h1.request("GET", "/")).status == 200


async def test_websocket_over_an_extended_connect(nursery: trio.Nursery) -> None:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    nursery.start_soon(H2ServerConnection(server_stream, version_app, ConnectionLimits(),
                                          Lifecycle()).serve)
    client = H2Client(client_stream)
    await client.start(nursery)
    await client.wait_for(lambda: client.conn.remote_settings.enable_connect_protocol == 1)
    stream_id = client.open("CONNECT", "/ws", body=b"", extra_pseudo=[(b":protocol", b"websocket")],
                            headers=[(b"sec-websocket-version", b"13"),
                                     (b"sec-websocket-protocol", b"other, chat")])
    await client.flush()
    log = client.streams[stream_id]
    await client.wait_for(lambda: log.headers)
    assert log.status == 200 and log.header(b"sec-websocket-protocol") == b"chat"
    framing = Connection(ConnectionType.CLIENT)
    for text in ("one", "two"):
        client.conn.send_data(stream_id, framing.send(TextMessage(data=text)))
        await client.flush()
    client.conn.send_data(stream_id, framing.send(CloseConnection(code=1000)))
    await client.flush()
    await client.wait_for(lambda: log.ended)
    framing.receive_data(log.body)
    events = list(framing.events())
    assert [e.data for e in events if isinstance(e, TextMessage)] == ["echo one", "echo two"]
    assert any(isinstance(e, CloseConnection) for e in events)


async def test_a_plain_get_cannot_become_a_websocket_over_h2(nursery: trio.Nursery) -> None:
    client_stream, server_stream = trio.testing.memory_stream_pair()

    async def upgrading(request: Request, out: Responder) -> None:
        from chatmock.errors import ClientError

        assert isinstance(out, WebSocketUpgrade)
        try:
            await out.upgrade_websocket(request)
        except ClientError as exc:
            await out.respond(exc.status, [], exc.message.encode())

    nursery.start_soon(H2ServerConnection(server_stream, upgrading, ConnectionLimits(),
                                          Lifecycle()).serve)
    client = H2Client(client_stream)
    await client.start(nursery)
    reply = await client.request("GET", "/ws")
    assert reply.status == 426 and b"RFC 8441" in reply.body
