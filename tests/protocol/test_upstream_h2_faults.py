"""The HTTP/2 upstream client (chatmock.net.h2pool, h2client) against backends that fail:
GOAWAY, refused and reset streams, lost connections, unanswered PINGs; and its flow control.

Most backends here are scripted on the h2 package (independent of chatmock's server); the
back-pressure test runs chatmock's own server over a lockstep stream."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import h2.config
import h2.connection
import h2.events
import pytest
import trio
import trio.lowlevel
import trio.testing
from hyperframe.frame import GoAwayFrame

from chatmock.errors import UpstreamError
from chatmock.net.h2client import MAX_IDLE_SECONDS, STREAM_WINDOW, TICK_SECONDS
from chatmock.net.h2pool import H2Pool
from chatmock.net.h2wire import REFUSED_STREAM
from chatmock.net.transport import Origin
from chatmock.server.exchange import ConnectionLimits, Request, Responder
from chatmock.server.http2 import H2ServerConnection
from chatmock.server.lifecycle import Lifecycle

from .h2client import send_windowed

ORIGIN = Origin("https", "backend.test", 443)
Behaviour = Callable[["Scripted", int], Awaitable[None]]


class Scripted:
    """One server connection on the h2 package; each request runs `behaviour`."""

    def __init__(self, stream: trio.abc.Stream, behaviour: Behaviour,
                 nursery: trio.Nursery) -> None:
        self.stream = stream
        self.behaviour = behaviour
        self.nursery = nursery
        self.conn: Any = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None))
        self.events: list[Any] = []
        self.deaf = False
        self.changed = trio.Event()
        self._lock = trio.StrictFIFOLock()

    async def run(self) -> None:
        self.conn.initiate_connection()
        await self.flush()
        try:
            while not self.deaf and (data := await self.stream.receive_some(65536)):
                for event in self.conn.receive_data(data):
                    self.events.append(event)
                    if isinstance(event, h2.events.RequestReceived):
                        self.nursery.start_soon(self.behaviour, self, event.stream_id)
                await self.flush()
                self.changed.set()
                self.changed = trio.Event()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return
        if self.deaf:
            await trio.sleep_forever()

    async def flush(self, extra: bytes = b"") -> None:
        async with self._lock:
            data = self.conn.data_to_send() + extra
            if data:
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await self.stream.send_all(data)

    async def head(self, stream_id: int, *, end: bool = False) -> None:
        self.conn.send_headers(stream_id, [(b":status", b"200")], end_stream=end)
        await self.flush()

    async def data(self, stream_id: int, data: bytes, *, end: bool = False) -> None:
        await send_windowed(self, stream_id, data, end=end)

    def count(self, kind: type) -> int:
        return sum(isinstance(event, kind) for event in self.events)


class Backend:
    """Opens connections for the pool; the k-th is served by the k-th behaviour (the last
    one for all beyond)."""

    def __init__(self, nursery: trio.Nursery, *behaviours: Behaviour) -> None:
        self.nursery = nursery
        self.behaviours = behaviours
        self.servers: list[Scripted] = []

    async def connect(self, origin: Origin) -> tuple[trio.abc.Stream, str]:
        client, server = trio.testing.memory_stream_pair()
        behaviour = self.behaviours[min(len(self.servers), len(self.behaviours) - 1)]
        scripted = Scripted(server, behaviour, self.nursery)
        self.servers.append(scripted)
        self.nursery.start_soon(scripted.run)
        return client, "h2"

    def pool(self, read_timeout: float = 300.0) -> H2Pool:
        return H2Pool(ORIGIN, self.connect, connect_timeout=5, read_timeout=read_timeout)


def goaway(last_stream_id: int) -> bytes:
    """A GOAWAY frame built by hyperframe (the scripted server's h2 would close its state)."""
    return GoAwayFrame(0, last_stream_id=last_stream_id, error_code=0).serialize()


async def answer(server: Scripted, stream_id: int) -> None:
    await server.head(stream_id)
    await server.data(stream_id, b"answered", end=True)


async def request(pool: H2Pool) -> bytes:
    response = await pool.request("POST", "/r", [(b"content-type", b"text/plain")], b"body")
    assert not isinstance(response, trio.abc.Stream) and response is not None
    try:
        return await response.read_all()
    finally:
        await response.aclose()


async def test_a_goaway_before_the_answer_is_retried_on_a_fresh_connection(
        nursery: trio.Nursery) -> None:
    async def going_away(server: Scripted, stream_id: int) -> None:
        await server.flush(goaway(0))
        await server.stream.aclose()

    backend = Backend(nursery, going_away, answer)
    pool = backend.pool()
    assert await request(pool) == b"answered"
    assert len(backend.servers) == 2
    await pool.aclose()


async def test_a_refused_stream_is_retried(nursery: trio.Nursery) -> None:
    async def refusing(server: Scripted, stream_id: int) -> None:
        server.conn.reset_stream(stream_id, REFUSED_STREAM)
        await server.flush()

    backend = Backend(nursery, refusing, answer)
    assert await request(backend.pool()) == b"answered"


async def test_a_stream_reset_before_any_byte_for_another_reason_is_an_error(
        nursery: trio.Nursery) -> None:
    async def failing(server: Scripted, stream_id: int) -> None:
        server.conn.reset_stream(stream_id, 2)
        await server.flush()

    backend = Backend(nursery, failing)
    with pytest.raises(UpstreamError):
        await request(backend.pool())
    assert len(backend.servers) == 1


async def test_a_lost_connection_cuts_the_answering_stream_and_retries_the_other(
        nursery: trio.Nursery) -> None:
    second_arrived = trio.Event()

    async def half_then_die(server: Scripted, stream_id: int) -> None:
        if stream_id == 1:
            await server.head(stream_id)
            await server.data(stream_id, b"partial")
            return
        second_arrived.set()
        await server.stream.aclose()

    backend = Backend(nursery, half_then_die, answer)
    pool = backend.pool()
    first = await pool.request("POST", "/r", [], b"one")
    assert not isinstance(first, trio.abc.Stream) and first is not None
    retried: list[bytes] = []

    async def second() -> None:
        retried.append(await request(pool))

    nursery.start_soon(second)
    await second_arrived.wait()
    assert await first.read_all() == b"partial" and not first.complete  # cut, as over HTTP/1.1
    await first.aclose()
    await trio.testing.wait_all_tasks_blocked()
    assert retried == [b"answered"]


async def test_a_graceful_goaway_lets_the_stream_finish(nursery: trio.Nursery) -> None:
    async def finishing_then_leaving(server: Scripted, stream_id: int) -> None:
        await server.head(stream_id)
        await server.flush(goaway(stream_id))
        await server.data(stream_id, b"finished after GOAWAY", end=True)

    backend = Backend(nursery, finishing_then_leaving, answer)
    pool = backend.pool()
    assert await request(pool) == b"finished after GOAWAY"
    assert await request(pool) == b"answered"
    assert len(backend.servers) == 2


async def test_an_unanswered_ping_fails_the_connection(
        nursery: trio.Nursery, autojump_clock: trio.abc.Clock) -> None:
    async def deaf(server: Scripted, stream_id: int) -> None:
        server.deaf = True

    backend = Backend(nursery, deaf, answer)
    started = trio.current_time()
    assert await request(backend.pool(read_timeout=300)) == b"answered"
    assert 30 < trio.current_time() - started < 90  # a PING, not the read timeout
    assert len(backend.servers) == 2


async def test_an_idle_connection_is_closed_and_the_next_request_opens_one(
        nursery: trio.Nursery, autojump_clock: trio.abc.Clock) -> None:
    backend = Backend(nursery, answer)
    pool = backend.pool()
    assert await request(pool) == b"answered"
    await trio.sleep(MAX_IDLE_SECONDS + 2 * TICK_SECONDS)
    assert backend.servers[0].count(h2.events.ConnectionTerminated) == 1  # our GOAWAY
    assert not pool.connections or pool.connections[0].closed
    assert await request(pool) == b"answered"
    assert len(backend.servers) == 2


async def test_window_updates_are_batched(nursery: trio.Nursery) -> None:
    async def many_frames(server: Scripted, stream_id: int) -> None:
        await server.head(stream_id)
        for _ in range(128):
            await server.data(stream_id, b"z" * 1024)
            await trio.lowlevel.checkpoint()
        await server.data(stream_id, b"", end=True)

    backend = Backend(nursery, many_frames)
    assert len(await request(backend.pool())) == 128 * 1024
    assert backend.servers[0].count(h2.events.DataReceived) == 1  # the request body
    assert backend.servers[0].count(h2.events.WindowUpdated) <= 4


async def test_a_slow_consumer_holds_back_its_own_stream_only(nursery: trio.Nursery) -> None:
    """Against chatmock's server over a lockstep stream (no buffer between the sides): the
    backend sends a stream whose consumer does not read no more than one stream window
    (plus a frame) ahead, while another stream on the same connection runs to the end."""
    sent: dict[str, int] = {}

    async def endless(request: Request, out: Responder) -> None:
        await out.start(200, [])
        for _ in range(int(request.query) if request.query else 10**6):
            await out.send(b"e" * 1000)
            sent[request.path] = sent.get(request.path, 0) + 1000
        await out.end()

    async def connect(origin: Origin) -> tuple[trio.abc.Stream, str]:
        client, server = trio.testing.lockstep_stream_pair()
        nursery.start_soon(H2ServerConnection(server, endless, ConnectionLimits(),
                                              Lifecycle()).serve)
        return client, "h2"

    pool = H2Pool(ORIGIN, connect, connect_timeout=5, read_timeout=30)
    slow = await pool.request("GET", "/slow", [], b"")
    assert not isinstance(slow, trio.abc.Stream) and slow is not None
    await trio.testing.wait_all_tasks_blocked()
    assert STREAM_WINDOW - 1000 <= sent["/slow"] <= STREAM_WINDOW + 16384
    fast = await pool.request("GET", "/fast?500", [], b"")
    assert not isinstance(fast, trio.abc.Stream) and fast is not None
    assert len(await fast.read_all()) == 500_000
    await fast.aclose()
    held = sent["/slow"]
    chunks = slow.chunks()
    taken = 0
    while taken < 4 * STREAM_WINDOW:
        taken += len(await chunks.__anext__())
    await chunks.aclose()
    assert sent["/slow"] > held
    await slow.aclose()
    assert len(pool.connections) == 1
    await pool.aclose()
