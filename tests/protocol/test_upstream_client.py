"""The pooled upstream client against the fake backend served in-process over TCP and TLS."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import trio
import trustme

from chatmock.errors import UpstreamError
from chatmock.net.client import HTTPClient
from chatmock.server.exchange import ConnectionLimits, Request, Responder
from chatmock.testing.credentials import codex_headers
from chatmock.testing.fake_upstream import FakeUpstreamApp

from .helpers import serve_on_loopback, serve_tls_on_loopback

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


async def start(nursery: trio.Nursery, app: object, limits: ConnectionLimits | None = None) -> str:
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
