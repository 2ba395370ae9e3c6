"""The pooled upstream client against the fake backend served in-process over TCP and TLS."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator

import pytest
import trio
import trustme

from chatmock.errors import UpstreamError
from chatmock.net.client import MAX_IDLE_SECONDS, HTTPClient
from chatmock.net.transport import Origin, open_stream
from chatmock.server.exchange import ConnectionLimits, Handler, Request, Responder
from chatmock.testing.credentials import codex_headers
from chatmock.testing.fake_upstream import FakeUpstreamApp

from .helpers import Rounds, serve_on_loopback, serve_tls_on_loopback

HEADERS = [*codex_headers().items(), (b"content-type", b"application/json")]


def body(text: str) -> bytes:
    return json.dumps({"model": "gpt-5.4", "stream": True, "store": False, "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}]
    }).encode()


class Counting:
    """Wraps an app and counts the connections that reached it."""

    def __init__(self, app: FakeUpstreamApp) -> None:
        self.app = app
        self.clients: set[str] = set()

    async def __call__(self, request: Request, out: Responder) -> None:
        self.clients.add(request.client)
        await self.app(request, out)


async def start(nursery: trio.Nursery, app: Handler,
                limits: ConnectionLimits | None = None) -> str:
    port = await serve_on_loopback(nursery, app, limits)
    return f"http://127.0.0.1:{port}/backend-api/codex/responses"


@pytest.fixture
async def client() -> AsyncIterator[HTTPClient]:
    pooled = HTTPClient(connect_timeout=2, read_timeout=2)
    yield pooled
    await pooled.aclose()


async def test_connections_are_reused(nursery: trio.Nursery, client: HTTPClient) -> None:
    counting = Counting(FakeUpstreamApp())
    url = await start(nursery, counting)
    for _ in range(5):
        async with client.request("POST", url, HEADERS, body("hi")) as response:
            assert response.status == 200
            assert b"response.completed" in await response.read_all()
    assert len(counting.clients) == 1


async def test_stale_pooled_connection_is_retried(nursery: trio.Nursery, client: HTTPClient,
                                                  autojump_clock: trio.abc.Clock) -> None:
    counting = Counting(FakeUpstreamApp())
    url = await start(nursery, counting, ConnectionLimits(idle_timeout=1))
    async with client.request("POST", url, HEADERS, body("hi")) as response:
        await response.read_all()
    await trio.sleep(5)  # the server drops the idle connection meanwhile
    async with client.request("POST", url, HEADERS, body("again")) as response:
        assert response.status == 200
        assert b"again" in await response.read_all()
    assert len(counting.clients) == 2


async def test_cut_body_ends_the_chunks_early(nursery: trio.Nursery, client: HTTPClient) -> None:
    url = await start(nursery, FakeUpstreamApp())
    async with client.request("POST", url, HEADERS, body("x fake:cut")) as response:
        data = await response.read_all()
        assert not response.complete
    assert b"response.output_text.delta" in data
    assert b"response.completed" not in data


async def test_silent_backend_hits_the_read_timeout(nursery: trio.Nursery, client: HTTPClient,
                                                    autojump_clock: trio.abc.Clock) -> None:
    url = await start(nursery, FakeUpstreamApp())
    with pytest.raises(UpstreamError) as caught:
        async with client.request("POST", url, HEADERS, body("x fake:first_delay_ms=10000")):
            pass
    assert caught.value.status == 504


async def test_backend_silent_mid_body_hits_the_read_timeout(
        nursery: trio.Nursery, client: HTTPClient, autojump_clock: trio.abc.Clock) -> None:
    url = await start(nursery, FakeUpstreamApp())
    async with client.request("POST", url, HEADERS, body("x fake:delay_ms=10000")) as response:
        with pytest.raises(UpstreamError) as caught:
            await response.read_all()
    assert caught.value.status == 504


async def test_unreachable_backend_is_a_502(client: HTTPClient) -> None:
    listener = trio.socket.socket()
    await listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    with pytest.raises(UpstreamError) as caught:
        async with client.request("POST", f"http://127.0.0.1:{port}/x", HEADERS, b"{}"):
            pass
    assert caught.value.status == 502


async def test_https_backend_streams_over_one_reused_tls_connection(
        nursery: trio.Nursery, client: HTTPClient, trusted_ca: trustme.CA) -> None:
    counting = Counting(FakeUpstreamApp())
    port = await serve_tls_on_loopback(nursery, counting, trusted_ca.issue_cert("127.0.0.1"))
    url = f"https://127.0.0.1:{port}/backend-api/codex/responses"
    for turn in range(3):
        async with client.request("POST", url, HEADERS, body(f"tls {turn} fake:deltas=400")
                                  ) as response:
            data = await response.read_all()
        assert response.status == 200 and data.count(b"event: response.output_text.delta\n") == 400
        assert b"response.completed" in data
    assert len(counting.clients) == 1


async def test_https_backend_with_an_untrusted_certificate_is_a_clear_502(
        nursery: trio.Nursery, client: HTTPClient, trusted_ca: trustme.CA) -> None:
    stranger = trustme.CA().issue_cert("127.0.0.1")
    port = await serve_tls_on_loopback(nursery, Counting(FakeUpstreamApp()), stranger)
    with pytest.raises(UpstreamError) as caught:
        async with client.request("POST", f"https://127.0.0.1:{port}/x", HEADERS, b"{}"):
            pass
    assert caught.value.status == 502
    assert "certificate verify failed" in caught.value.message


async def test_an_abandoned_answer_closes_its_connection_and_the_fake_counts_it(
        nursery: trio.Nursery, client: HTTPClient) -> None:
    """Cancelled mid-body, the exchange's connection is closed (not pooled): the fake's
    server sees it go at once, during a silence that would last 100 s."""
    fake = FakeUpstreamApp()
    counting = Counting(fake)
    url = await start(nursery, counting)
    async with client.request("POST", url, HEADERS, body("a fake:deltas=2")) as upstream:
        await upstream.read_all()
    assert (fake.fake.streams.completed, fake.fake.streams.abandoned) == (1, 0)
    with trio.move_on_after(0.2):
        async with client.request("POST", url, HEADERS,
                                  body("b fake:deltas=2 fake:delay_ms=100000")) as upstream:
            await upstream.read_all()
    with trio.fail_after(2):
        while fake.fake.streams.abandoned == 0:
            await trio.sleep(0.01)
    assert fake.fake.streams.open == 0
    async with client.request("POST", url, HEADERS, body("c fake:deltas=2")) as upstream:
        await upstream.read_all()
    assert fake.fake.streams.completed == 2
    assert len(counting.clients) == 2  # the first connection was pooled, the second closed


async def test_idle_connections_too_old_to_reuse_are_closed(
        nursery: trio.Nursery, autojump_clock: trio.abc.Clock) -> None:
    """The soak's finding: after a burst the pool kept its peak of backend connections
    for good, although one idle for MAX_IDLE_SECONDS is never reused. The server's sweep
    closes them, so the backend sees every one of them end."""
    seen = {"open": 0, "closed": 0}
    all_in = trio.Event()

    async def keep_alive_server(stream: trio.SocketStream) -> None:
        seen["open"] += 1
        if seen["open"] == 3:
            all_in.set()
        buffered = b""
        while data := await stream.receive_some(65536):
            buffered += data
            while b"\r\n\r\n" in buffered:  # GETs: a head, no body
                _, buffered = buffered.split(b"\r\n\r\n", 1)
                await all_in.wait()  # three requests at once: three connections
                await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        seen["closed"] += 1

    listeners = await nursery.start(trio.serve_tcp, keep_alive_server, 0)
    url = f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}/x"
    client = HTTPClient()
    nursery.start_soon(client.close_idle_forever)

    async def fetch() -> None:
        async with client.request("GET", url, []) as response:
            assert await response.read_all() == b"ok"

    async with trio.open_nursery() as burst:
        for _ in range(3):
            burst.start_soon(fetch)
    await trio.sleep(MAX_IDLE_SECONDS - 1)
    assert seen == {"open": 3, "closed": 0}  # still fit for reuse
    await trio.sleep(MAX_IDLE_SECONDS)
    assert seen == {"open": 3, "closed": 3}
    await client.aclose()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_an_address_literal_is_connected_in_one_scheduler_round(host: str) -> None:
    """Under load every round lasts as long as all busy streams' work: trio's
    open_tcp_stream took about five of them per backend connection."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        listener = socket.create_server((host, 0), family=family)
    except OSError:
        pytest.skip(f"no {host} on this machine")
    rounds = Rounds()
    with listener:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(rounds.run)
            await trio.lowlevel.checkpoint()
            before = rounds.count
            stream = await open_stream(Origin("http", host, listener.getsockname()[1]), 2)
            assert rounds.count - before <= 2
            accepted, _ = listener.accept()
            with accepted:
                await stream.send_all(b"ping")
                assert accepted.recv(4) == b"ping"
            await stream.aclose()
            nursery.cancel_scope.cancel()


async def test_a_refused_address_literal_says_so() -> None:
    with socket.create_server(("127.0.0.1", 0)) as closed:
        port = closed.getsockname()[1]
    with pytest.raises(UpstreamError, match="refused") as caught:
        await open_stream(Origin("http", "127.0.0.1", port), 2)
    assert caught.value.status == 502
