"""The upstream client over HTTP/2: chatmock's own server behind TLS+ALPN, the fake backend
behind it, real loopback sockets."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import trio
import trustme

from chatmock.errors import UpstreamError
from chatmock.net.client import HTTPClient
from chatmock.server.exchange import ConnectionLimits, Request, Responder
from chatmock.server.listen import open_listeners, serve, server_tls_context
from chatmock.testing.fake_upstream import FakeUpstreamApp

from .test_upstream_client import HEADERS, body


class Watching:
    """Wraps an app: which connection (peer address) and HTTP version each request used."""

    def __init__(self, app: object) -> None:
        self.app = app
        self.connections: set[str] = set()
        self.versions: Counter[str] = Counter()

    async def __call__(self, request: Request, out: Responder) -> None:
        self.connections.add(request.client)
        self.versions[request.http_version] += 1
        await self.app(request, out)  # type: ignore[operator]


async def start_tls(nursery: trio.Nursery, app: object, ca: trustme.CA, tmp: Path, *,
                    limits: ConnectionLimits | None = None, alpn: list[str] | None = None) -> str:
    certificate = ca.issue_cert("127.0.0.1")
    certificate.cert_chain_pems[0].write_to_path(str(tmp / "cert.pem"))
    certificate.private_key_pem.write_to_path(str(tmp / "key.pem"))
    context = server_tls_context(str(tmp / "cert.pem"), str(tmp / "key.pem"))
    if alpn is not None:
        context.set_alpn_protocols(alpn)
    listeners = await open_listeners("127.0.0.1", 0)
    port: int = await nursery.start(lambda task_status: serve(
        app, listeners, limits=limits or ConnectionLimits(), max_connections=1000,  # type: ignore[arg-type]
        shutdown=trio.Event(), shutdown_timeout=0.1, tls=context, task_status=task_status))
    return f"https://127.0.0.1:{port}/backend-api/codex/responses"


@pytest.fixture
async def client() -> HTTPClient:
    return HTTPClient(connect_timeout=5, read_timeout=30)


async def test_an_https_backend_gets_http2_on_one_connection(
        nursery: trio.Nursery, client: HTTPClient, trusted_ca: trustme.CA,
        tmp_path: Path) -> None:
    watching = Watching(FakeUpstreamApp())
    url = await start_tls(nursery, watching, trusted_ca, tmp_path)
    for turn in range(4):
        async with client.request("POST", url, HEADERS, body(f"h2 {turn} fake:deltas=300")
                                  ) as response:
            assert response.status == 200
            assert response.header(b"content-type").startswith("text/event-stream")
            data = await response.read_all()
        assert data.count(b"event: response.output_text.delta\n") == 300
        assert response.complete and b"response.completed" in data
    assert watching.versions == {"2": 4} and len(watching.connections) == 1
    await client.aclose()


async def test_concurrent_requests_fill_a_connection_before_opening_another(
        nursery: trio.Nursery, client: HTTPClient, trusted_ca: trustme.CA,
        tmp_path: Path) -> None:
    watching = Watching(FakeUpstreamApp())
    url = await start_tls(nursery, watching, trusted_ca, tmp_path,
                          limits=ConnectionLimits(max_streams=20))
    done: list[int] = []

    async def one(number: int) -> None:
        async with client.request("POST", url, HEADERS,
                                  body(f"n{number} fake:deltas=50 fake:delay_ms=5")) as response:
            data = await response.read_all()
        assert data.count(b"event: response.output_text.delta\n") == 50
        done.append(number)

    async with trio.open_nursery() as requests:
        for number in range(100):
            requests.start_soon(one, number)
    assert len(done) == 100
    assert watching.versions == {"2": 100}
    assert len(watching.connections) == 5  # 100 streams, 20 per connection
    await client.aclose()


async def test_many_busy_streams_on_one_connection_all_flow(
        nursery: trio.Nursery, trusted_ca: trustme.CA, tmp_path: Path) -> None:
    """64 streams of 1,000 deltas at once on one connection: no stream waits on a window
    update left unsent or a wake-up missed (each would stall it into the read timeout)."""
    watching = Watching(FakeUpstreamApp())
    url = await start_tls(nursery, watching, trusted_ca, tmp_path)
    client = HTTPClient(connect_timeout=5, read_timeout=10)
    done: list[int] = []

    async def one(number: int) -> None:
        for turn in range(2):
            prompt = f"busy {number}.{turn} fake:deltas=1000 fake:burst=50"
            async with client.request("POST", url, HEADERS, body(prompt)) as response:
                data = await response.read_all()
            assert data.count(b"event: response.output_text.delta\n") == 1000
            done.append(number)

    async with trio.open_nursery() as requests:
        for number in range(64):
            requests.start_soon(one, number)
    assert len(done) == 128 and len(watching.connections) == 1
    await client.aclose()


async def test_a_backend_choosing_http11_by_alpn_gets_http11(
        nursery: trio.Nursery, client: HTTPClient, trusted_ca: trustme.CA,
        tmp_path: Path) -> None:
    watching = Watching(FakeUpstreamApp())
    url = await start_tls(nursery, watching, trusted_ca, tmp_path, alpn=["http/1.1"])
    for turn in range(3):
        async with client.request("POST", url, HEADERS, body(f"h1 {turn}")) as response:
            assert b"response.completed" in await response.read_all()
    assert watching.versions == {"1.1": 3} and len(watching.connections) == 1
    await client.aclose()


async def test_http2_can_be_switched_off(nursery: trio.Nursery, trusted_ca: trustme.CA,
                                         tmp_path: Path) -> None:
    watching = Watching(FakeUpstreamApp())
    url = await start_tls(nursery, watching, trusted_ca, tmp_path)
    client = HTTPClient(connect_timeout=5, read_timeout=30, http2=False)
    async with client.request("POST", url, HEADERS, body("off")) as response:
        assert b"response.completed" in await response.read_all()
    assert watching.versions == {"1.1": 1}
    await client.aclose()


async def test_a_body_cut_mid_stream_ends_early_as_over_http11(
        nursery: trio.Nursery, client: HTTPClient, trusted_ca: trustme.CA,
        tmp_path: Path) -> None:
    """The fake's cut becomes a reset stream over HTTP/2; the caller sees what it sees over
    HTTP/1.1: the body ends without its terminal event, and `complete` is False."""
    url = await start_tls(nursery, FakeUpstreamApp(), trusted_ca, tmp_path)
    async with client.request("POST", url, HEADERS, body("x fake:cut")) as response:
        data = await response.read_all()
        assert not response.complete
    assert b"response.output_text.delta" in data and b"response.completed" not in data
    async with client.request("POST", url, HEADERS, body("after the cut")) as response:
        assert b"response.completed" in await response.read_all()
    await client.aclose()


async def test_error_answers_and_json_arrive_whole(
        nursery: trio.Nursery, client: HTTPClient, trusted_ca: trustme.CA,
        tmp_path: Path) -> None:
    url = await start_tls(nursery, FakeUpstreamApp(), trusted_ca, tmp_path)
    async with client.request("POST", url, HEADERS, b"{not json") as response:
        assert response.status == 400
        assert json.loads(await response.read_all())
    models = url.replace("/responses", "/models?client_version=1.0.0")
    async with client.request("GET", models, HEADERS) as response:
        assert response.status == 200 and json.loads(await response.read_all())["models"]
    await client.aclose()


async def test_a_silent_backend_hits_the_read_timeout(
        nursery: trio.Nursery, trusted_ca: trustme.CA, tmp_path: Path,
        autojump_clock: trio.abc.Clock) -> None:
    url = await start_tls(nursery, FakeUpstreamApp(), trusted_ca, tmp_path)
    client = HTTPClient(connect_timeout=5, read_timeout=2)
    with pytest.raises(UpstreamError) as caught:
        async with client.request("POST", url, HEADERS, body("x fake:first_delay_ms=10000")):
            pass
    assert caught.value.status == 504
    async with client.request("POST", url, HEADERS, body("x fake:delay_ms=10000")) as response:
        with pytest.raises(UpstreamError) as caught:
            await response.read_all()
    assert caught.value.status == 504
    await client.aclose()


async def test_an_untrusted_certificate_is_a_clear_502(
        nursery: trio.Nursery, client: HTTPClient, trusted_ca: trustme.CA,
        tmp_path: Path) -> None:
    url = await start_tls(nursery, FakeUpstreamApp(), trustme.CA(), tmp_path)
    with pytest.raises(UpstreamError) as caught:
        async with client.request("POST", url, HEADERS, b"{}"):
            pass
    assert caught.value.status == 502 and "certificate verify failed" in caught.value.message
    await client.aclose()

