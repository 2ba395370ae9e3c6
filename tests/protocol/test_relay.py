"""The streaming relay: pacing, heartbeats while the backend is silent, client departure."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Sequence

import pytest
import trio

from chatmock.dialects.chat_stream import KEEP_ALIVE, ChatStreamTranslator
from chatmock.net.client import HTTPClient
from chatmock.routes.relay import SSE_HEADERS, relay
from chatmock.server.exchange import ClientGone
from chatmock.testing.fake_upstream import FakeUpstreamApp

from .test_upstream_client import HEADERS, body, start


class Recorder:
    """A Responder that keeps what was written, with the time of each write."""

    def __init__(self, fail_after_writes: int | None = None) -> None:
        self.extra_headers: list[tuple[bytes, bytes]] = []
        self.status = 0
        self.started = False
        self.finished = False
        self.client_gone = False
        self.writes: list[tuple[float, bytes]] = []
        self.fail_after_writes = fail_after_writes

    async def respond(self, status: int, headers: Sequence[tuple[bytes, bytes]],
                      body: bytes) -> None:
        raise AssertionError("a stream must not answer in one piece")

    async def start(self, status: int, headers: Sequence[tuple[bytes, bytes]]) -> None:
        self.started, self.status = True, status

    async def send(self, data: bytes) -> None:
        if self.fail_after_writes is not None and len(self.writes) >= self.fail_after_writes:
            raise ClientGone("gone")
        self.writes.append((trio.current_time(), data))

    async def end(self, data: bytes = b"") -> None:
        self.writes.append((trio.current_time(), data))
        self.finished = True


@pytest.fixture
async def client() -> AsyncIterator[HTTPClient]:
    pooled = HTTPClient(read_timeout=300)
    yield pooled
    await pooled.aclose()


def translator() -> ChatStreamTranslator:
    return ChatStreamTranslator(model="m", created=1, compat="think-tags", include_usage=False)


async def test_silent_backend_gets_heartbeats_and_the_stream_completes(
        nursery: trio.Nursery, client: HTTPClient, autojump_clock: trio.abc.Clock) -> None:
    url = await start(nursery, FakeUpstreamApp())
    out = Recorder()
    prompt = "x fake:deltas=4 fake:burst=3 fake:delay_ms=50000"
    async with client.request("POST", url, HEADERS, body(prompt)) as upstream:
        await relay(upstream, translator(), out, SSE_HEADERS)
    data = [piece for _, piece in out.writes]
    beats = [when for when, piece in out.writes if piece == KEEP_ALIVE]
    assert len(beats) >= 3
    times = [when for when, _ in out.writes]
    period = ChatStreamTranslator.heartbeat_seconds
    assert max(b - a for a, b in itertools.pairwise(times)) <= period + 0.01
    joined = b"".join(data)
    assert joined.count(b'"content":"tok') == 4
    assert joined.endswith(b"data: [DONE]\n\n")
    assert out.finished


async def test_a_departed_client_stops_the_backend_read(
        nursery: trio.Nursery, client: HTTPClient, autojump_clock: trio.abc.Clock) -> None:
    url = await start(nursery, FakeUpstreamApp())
    out = Recorder(fail_after_writes=1)
    started = trio.current_time()
    with pytest.raises(ClientGone):
        async with client.request("POST", url, HEADERS,
                                  body("x fake:deltas=4 fake:delay_ms=600000")) as upstream:
            await relay(upstream, translator(), out, SSE_HEADERS)
    assert trio.current_time() - started <= ChatStreamTranslator.heartbeat_seconds + 1


async def test_anthropic_streams_ping_every_ten_seconds_of_silence(
        nursery: trio.Nursery, client: HTTPClient, autojump_clock: trio.abc.Clock) -> None:
    from chatmock.dialects.anthropic_stream import PING, MessagesStreamTranslator

    url = await start(nursery, FakeUpstreamApp())
    out = Recorder()
    prompt = "x fake:deltas=4 fake:burst=3 fake:delay_ms=35000"
    translator = MessagesStreamTranslator(model="claude-sonnet-5", thinking=False,
                                          input_tokens=3)
    async with client.request("POST", url, HEADERS, body(prompt)) as upstream:
        await relay(upstream, translator, out, SSE_HEADERS)
    times = [when for when, _ in out.writes]
    assert max(b - a for a, b in itertools.pairwise(times)) <= 10.01
    assert sum(piece == PING for _, piece in out.writes) >= 3
    assert out.writes[-1][1].endswith(b'{"type":"message_stop"}\n\n')
