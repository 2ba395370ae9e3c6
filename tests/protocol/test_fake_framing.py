"""The fake backend over real loopback writes one HTTP chunk per SSE event, as the real
backend does: read the raw chunked framing, not what an HTTP library makes of it.

Both fakes: the tests' (`chatmock.testing.fake_upstream`, on chatmock's own server,
in-process) and the bench's (`bench/fakeserver.py`, an epoll loop, as a process)."""

from __future__ import annotations

import itertools
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

from chatmock.server.exchange import Request
from chatmock.testing.credentials import codex_headers
from chatmock.testing.fake_upstream import FakeUpstreamApp

from .helpers import serve_on_loopback
from .test_relay import Recorder
from .test_upstream_client import body


@dataclass
class Chunk:
    data: bytes
    at: float
    """trio.current_time() when the chunk was complete."""


class RawChunkedReader:
    """Reads one response from a socket and undoes its chunked framing by hand."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buf = b""

    async def _fill(self) -> None:
        data = await self.stream.receive_some(65536)
        assert data, "connection closed before the response ended"
        self.buf += data

    async def _take_line(self) -> bytes:
        while b"\r\n" not in self.buf:
            await self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    async def head(self) -> list[bytes]:
        while b"\r\n\r\n" not in self.buf:
            await self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        return head.split(b"\r\n")

    async def chunks(self) -> list[Chunk]:
        found = []
        while size := int(await self._take_line(), 16):
            while len(self.buf) < size + 2:
                await self._fill()
            assert self.buf[size : size + 2] == b"\r\n"
            found.append(Chunk(self.buf[:size], trio.current_time()))
            self.buf = self.buf[size + 2 :]
        assert await self._take_line() == b""  # no trailers
        return found


BENCH_FAKE = Path(__file__).resolve().parents[2] / "bench" / "fakeserver.py"


@pytest.fixture(scope="module")
def bench_fake() -> Iterator[int]:
    """`bench/fakeserver.py` as a process; its port."""
    argv = [sys.executable, str(BENCH_FAKE), "--port", "0"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        line = process.stdout.readline()
        try:
            yield int(line.rsplit(":", 1)[1])
        finally:
            process.terminate()


@pytest.fixture(params=["testing", "bench"])
async def fake_port(request: pytest.FixtureRequest, nursery: trio.Nursery) -> int:
    if request.param == "bench":
        port: int = request.getfixturevalue("bench_fake")
        return port
    return await serve_on_loopback(nursery, FakeUpstreamApp())


async def stream_chunks(port: int, prompt: str) -> list[Chunk]:
    payload = body(prompt)
    headers = b"".join(b"%b: %b\r\n" % pair for pair in codex_headers().items())
    request = (b"POST /backend-api/codex/responses HTTP/1.1\r\nhost: t\r\n%b"
               b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%b"
               % (headers, len(payload), payload))
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(request)
        reader = RawChunkedReader(stream)
        head = await reader.head()
        assert head[0].startswith(b"HTTP/1.1 200 ")
        assert any(line.lower() == b"transfer-encoding: chunked" for line in head)
        return await reader.chunks()


def events_in(chunk: Chunk) -> int:
    return chunk.data.count(b"\n\n")


@pytest.mark.parametrize("prompt", ["x fake:deltas=120", "x fake:deltas=120 fake:burst=50"])
async def test_one_chunk_per_event(fake_port: int, prompt: str) -> None:
    chunks = await stream_chunks(fake_port, prompt)
    assert all(events_in(c) == 1 and c.data.startswith(b"event: ") for c in chunks)
    deltas = [c for c in chunks if b"event: response.output_text.delta\n" in c.data]
    assert len(deltas) == 120
    assert chunks[-1].data.startswith(b"event: response.completed\n")


async def test_coalesce_writes_a_burst_as_one_chunk(fake_port: int) -> None:
    chunks = await stream_chunks(fake_port, "x fake:deltas=120 fake:burst=50 fake:coalesce")
    counts = [events_in(c) for c in chunks]
    assert counts[:-1] == [50] * (len(counts) - 1) and 0 < counts[-1] <= 50
    assert sum(c.data.count(b"event: response.output_text.delta\n") for c in chunks) == 120


async def test_paced_events_arrive_one_chunk_at_a_time(
        nursery: trio.Nursery, autojump_clock: trio.abc.Clock) -> None:
    port = await serve_on_loopback(nursery, FakeUpstreamApp())
    chunks = await stream_chunks(port, "x fake:deltas=10 fake:delay_ms=20 fake:burst=2")
    assert all(events_in(c) == 1 for c in chunks)
    gaps = [round(b.at - a.at, 3) for a, b in itertools.pairwise(chunks)]
    assert gaps == [0.0 if index % 2 == 0 else 0.02 for index in range(len(gaps))]


async def test_bench_fake_paces_on_its_schedule(bench_fake: int) -> None:
    chunks = await stream_chunks(bench_fake, "x fake:deltas=6 fake:delay_ms=30")
    assert all(events_in(c) == 1 for c in chunks)
    assert chunks[-1].at - chunks[0].at >= 0.03 * (len(chunks) - 1) - 0.005


class SlowRecorder(Recorder):
    """A client write that takes 15 ms, as on a busy machine."""

    async def send(self, data: bytes) -> None:
        await trio.sleep(0.015)
        await super().send(data)


class BodyOf:
    def __init__(self, data: bytes) -> None:
        self.data = data

    async def read_body(self, limit: int) -> bytes:
        return self.data


async def test_pacing_keeps_its_schedule_when_writes_are_slow(
        autojump_clock: trio.abc.Clock) -> None:
    payload = body("x fake:deltas=6 fake:delay_ms=20")
    request = Request("POST", "/backend-api/codex/responses", "", codex_headers(),
                      BodyOf(payload), len(payload))
    out = SlowRecorder()
    started = trio.current_time()
    await FakeUpstreamApp()(request, out)
    times = [round(when - started, 3) for when, data in out.writes if data]
    # Event k is due at k * 20 ms; each write then takes 15 ms, so it lands at due + 15 ms
    # (the first ones, written back to back, queue behind each other).
    assert times[-1] == round(0.02 * (len(times) - 1) + 0.015, 3)
    assert all(b - a <= 0.02 + 1e-9 for a, b in itertools.pairwise(times[1:]))
