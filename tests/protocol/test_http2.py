"""The HTTP/2 server (chatmock.server.http2) over in-memory streams, driven by an h2 client."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest
import trio
import trio.testing

from chatmock.app import build_app
from chatmock.config import Settings
from chatmock.dialects.errors import Dialect
from chatmock.net.h2wire import NO_ERROR, REFUSED_STREAM
from chatmock.routes import TABLE
from chatmock.server.exchange import ClientGone, ConnectionLimits, Request, Responder
from chatmock.server.http2 import H2ServerConnection
from chatmock.server.lifecycle import Lifecycle
from chatmock.server.router import Endpoint, Router

from .h2client import H2Client

PIECE = b"x" * 1000


class App:
    """Routes for the tests; records how each stream's route ended."""

    def __init__(self) -> None:
        self.release = trio.Event()
        self.cancelled: list[str] = []
        self.finished: list[str] = []
        self.sent: dict[str, int] = {}

    async def __call__(self, request: Request, out: Responder) -> None:
        name = request.query or request.path
        try:
            await self._route(request, out, name)
        except trio.Cancelled:
            self.cancelled.append(name)
            raise
        self.finished.append(name)

    async def _route(self, request: Request, out: Responder, name: str) -> None:
        if request.path == "/echo":
            body = await request.body()
            await out.respond(200, [(b"x-method", request.method.encode()),
                                    (b"x-version", request.http_version.encode())], body)
        elif request.path == "/stream":
            await out.start(200, [(b"content-type", b"text/plain")])
            for _ in range(int(request.header(b"x-pieces") or 20)):
                await out.send(PIECE)
                self.sent[name] = self.sent.get(name, 0) + len(PIECE)
            await out.end(b"end")
        elif request.path == "/wait":
            await self.release.wait()
            await out.respond(200, [], b"released")
        elif request.path == "/nothing":
            return
        else:
            await out.respond(404, [], b"")


async def connect(nursery: trio.Nursery, app: object, *, limits: ConnectionLimits | None = None,
                  lifecycle: Lifecycle | None = None, **options: object) -> H2Client:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    server = H2ServerConnection(server_stream, app, limits or ConnectionLimits(),  # type: ignore[arg-type]
                                lifecycle or Lifecycle(), "test")
    nursery.start_soon(server.serve)
    client = H2Client(client_stream, **options)  # type: ignore[arg-type]
    await client.start(nursery)
    return client


async def test_a_request_and_its_answer(nursery: trio.Nursery) -> None:
    client = await connect(nursery, App())
    reply = await client.request("POST", "/echo", b"hello over h2",
                                 [(b"content-type", b"text/plain")])
    assert reply.status == 200 and reply.body == b"hello over h2"
    assert reply.header(b"x-version") == b"2" and reply.header(b"x-method") == b"POST"
    assert reply.header(b"content-length") == b"13" and reply.header(b"date")


async def test_a_streamed_answer_arrives_piece_by_piece(nursery: trio.Nursery) -> None:
    client = await connect(nursery, App())
    reply = await client.request("GET", "/stream")
    assert reply.status == 200 and reply.header(b"content-length") is None
    assert reply.body == PIECE * 20 + b"end"


async def test_head_gets_the_head_only(nursery: trio.Nursery) -> None:
    client = await connect(nursery, App())
    assert (await client.request("HEAD", "/echo")).body == b""
    reply = await client.request("HEAD", "/stream")
    assert reply.status == 200 and reply.body == b"" and reply.ended


async def test_a_route_without_an_answer_is_a_500(nursery: trio.Nursery) -> None:
    client = await connect(nursery, App())
    reply = await client.request("GET", "/nothing")
    assert reply.status == 500 and b"no response" in reply.body


async def test_streams_run_concurrently_on_one_connection(nursery: trio.Nursery) -> None:
    app = App()
    client = await connect(nursery, app)
    waiting = [client.open("GET", "/wait", headers=[]) for _ in range(5)]
    quick = client.open("POST", "/echo", body=b"quick")
    await client.flush()
    assert (await client.wait(quick)).body == b"quick"
    assert not any(client.streams[sid].done for sid in waiting)
    app.release.set()
    for sid in waiting:
        assert (await client.wait(sid)).body == b"released"


async def test_a_reset_cancels_that_stream_only(nursery: trio.Nursery) -> None:
    app = App()
    client = await connect(nursery, app)
    gone = client.open("GET", "/wait?gone")
    kept = client.open("GET", "/wait?kept")
    await client.flush()
    await trio.testing.wait_all_tasks_blocked()
    client.conn.reset_stream(gone, 8)
    await client.flush()
    await trio.testing.wait_all_tasks_blocked()
    assert app.cancelled == ["gone"]
    app.release.set()
    assert (await client.wait(kept)).body == b"released"
    assert (await client.request("POST", "/echo", b"still")).body == b"still"


async def test_router_logs_client_gone_for_a_reset_stream(
        nursery: trio.Nursery, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The upstream request of a reset stream is abandoned: its route is cancelled."""
    app = build_app(Settings(model_sync=False), env={"CHATGPT_LOCAL_HOME": str(tmp_path)})
    blocked = trio.Event()

    async def hanging(_app: object, request: Request, out: Responder) -> None:
        blocked.set()
        await trio.sleep_forever()

    hang = Endpoint({"GET": hanging}, Dialect.OPENAI)
    router = Router(app, dataclasses.replace(TABLE, exact={**TABLE.exact, "/hang": hang}))
    client = await connect(nursery, router)
    sid = client.open("GET", "/hang")
    await client.flush()
    await blocked.wait()
    with caplog.at_level(logging.INFO, "chatmock.access"):
        client.conn.reset_stream(sid, 8)
        await client.flush()
        await trio.testing.wait_all_tasks_blocked()
    assert any('"GET /hang" - ' in r.message and "(client gone)" in r.message
               for r in caplog.records)


async def test_a_slow_reader_holds_back_its_own_stream_only(nursery: trio.Nursery) -> None:
    """The route sends no more than the stream's window (plus one frame) ahead of a
    client that does not acknowledge; the other stream, and the route once the
    client acknowledges, carry on."""
    app = App()
    client = await connect(nursery, app, auto_ack=False, connection_window=10_000_000)
    slow = client.open("GET", "/stream?slow", headers=[(b"x-pieces", b"200")])
    await client.flush()
    await trio.testing.wait_all_tasks_blocked()
    assert 65535 - 1000 <= app.sent["slow"] <= 65535 + 16384
    stalled_at = app.sent["slow"]
    client.auto_ack = True
    fast = client.open("GET", "/stream?fast", headers=[(b"x-pieces", b"100")])
    await client.flush()
    assert (await client.wait(fast)).body == PIECE * 100 + b"end"
    assert app.sent["slow"] == stalled_at
    await client.ack(slow, len(client.streams[slow].body))
    assert (await client.wait(slow)).body == PIECE * 200 + b"end"


async def test_streams_beyond_the_limit_are_refused(nursery: trio.Nursery) -> None:
    app = App()
    """Even those a client opened before it could see the server's SETTINGS: one by one,
    with REFUSED_STREAM, and the connection stays."""
    client = await connect(nursery, app, limits=ConnectionLimits(max_streams=3))
    held = [client.open("GET", f"/wait?{n}") for n in range(3)]
    refused = client.open("GET", "/wait?refused")
    await client.flush()
    assert (await client.wait(refused)).reset == REFUSED_STREAM
    app.release.set()
    for sid in held:
        assert (await client.wait(sid)).body == b"released"
    assert client.conn.remote_settings.max_concurrent_streams == 3
    assert (await client.request("POST", "/echo", b"more")).body == b"more"


async def test_a_stream_ended_both_ways_stops_counting_while_its_route_runs(
        nursery: trio.Nursery) -> None:
    """A route may work on after its answer (draining its backend, logging): the client
    saw the stream end, so its next streams are not refused."""
    lingering = trio.Event()

    async def answer_then_linger(request: Request, out: Responder) -> None:
        await out.respond(200, [], b"done")
        await lingering.wait()

    client = await connect(nursery, answer_then_linger, limits=ConnectionLimits(max_streams=2))
    await client.wait_for(lambda: client.conn.remote_settings.max_concurrent_streams == 2)
    for _ in range(3):
        first, second = client.open("GET", "/"), client.open("GET", "/")
        await client.flush()
        assert (await client.wait(first)).body == (await client.wait(second)).body == b"done"
    lingering.set()


async def test_ping_is_answered(nursery: trio.Nursery) -> None:
    client = await connect(nursery, App())
    client.conn.ping(b"12345678")
    await client.flush()
    await client.wait_for(lambda: any(type(e).__name__ == "PingAckReceived"
                                      for e in client.events))


async def test_drain_finishes_open_streams_refuses_new_ones_then_closes(
        nursery: trio.Nursery) -> None:
    app = App()
    lifecycle = Lifecycle()
    client = await connect(nursery, app, lifecycle=lifecycle)
    open_one = client.open("GET", "/wait")
    await client.flush()
    await trio.testing.wait_all_tasks_blocked()
    lifecycle.begin_drain()
    await trio.testing.wait_all_tasks_blocked()
    late = client.open("GET", "/echo")
    await client.flush()
    assert (await client.wait(late)).reset == REFUSED_STREAM
    assert client.goaway() is None  # h2-library clients would end the open stream at one
    app.release.set()
    assert (await client.wait(open_one)).body == b"released"
    with trio.fail_after(5):
        await client.closed.wait()
    goaway = client.goaway()
    assert goaway is not None and goaway.error_code == NO_ERROR
    assert goaway.last_stream_id == open_one


async def test_drain_closes_an_idle_connection_at_once(nursery: trio.Nursery) -> None:
    lifecycle = Lifecycle()
    client = await connect(nursery, App(), lifecycle=lifecycle)
    assert (await client.request("POST", "/echo", b"x")).status == 200
    await trio.testing.wait_all_tasks_blocked()
    lifecycle.begin_drain()
    with trio.fail_after(5):
        await client.closed.wait()
    assert client.goaway() is not None


async def test_an_idle_connection_is_closed_after_the_idle_timeout(
        nursery: trio.Nursery, autojump_clock: trio.abc.Clock) -> None:
    client = await connect(nursery, App(), limits=ConnectionLimits(idle_timeout=10))
    assert (await client.request("POST", "/echo", b"x")).status == 200
    started = trio.current_time()
    await client.closed.wait()
    assert 10 <= trio.current_time() - started <= 11
    goaway = client.goaway()
    assert goaway is not None and goaway.error_code == NO_ERROR


async def test_losing_the_connection_cancels_every_route(nursery: trio.Nursery) -> None:
    app = App()
    client = await connect(nursery, app)
    for n in range(3):
        client.open("GET", f"/wait?{n}")
    await client.flush()
    await trio.testing.wait_all_tasks_blocked()
    await client.stream.aclose()
    await trio.testing.wait_all_tasks_blocked()
    assert sorted(app.cancelled) == ["0", "1", "2"]


async def test_body_limit_and_slow_body(nursery: trio.Nursery,
                                        autojump_clock: trio.abc.Clock) -> None:
    async def reader(request: Request, out: Responder) -> None:
        from chatmock.errors import ClientError

        try:
            body = await request.body()
        except ClientError as exc:
            await out.respond(exc.status, [], exc.message.encode())
            return
        await out.respond(200, [], b"%d" % len(body))

    client = await connect(nursery, reader,
                           limits=ConnectionLimits(max_body_bytes=100_000, header_timeout=5))
    assert (await client.request("POST", "/", b"y" * 200_000)).status == 413
    big = client.open("POST", "/", body=None, headers=[(b"content-length", b"300000")])
    await client.flush()
    assert (await client.wait(big)).status == 413
    assert (await client.request("POST", "/", b"z" * 90_000)).body == b"90000"
    slow = client.open("POST", "/", body=b"")
    await client.send_body(slow, b"part", end=False)
    assert (await client.wait(slow)).status == 408


async def test_client_gone_reaches_a_streaming_route(nursery: trio.Nursery) -> None:
    """A route blocked on a full window learns of the reset as ClientGone or cancellation."""
    ended = trio.Event()

    async def endless(request: Request, out: Responder) -> None:
        await out.start(200, [])
        try:
            while True:
                await out.send(PIECE)
        except (ClientGone, trio.Cancelled):
            ended.set()
            raise

    client = await connect(nursery, endless, auto_ack=False)
    sid = client.open("GET", "/")
    await client.flush()
    await trio.testing.wait_all_tasks_blocked()
    client.conn.reset_stream(sid, 8)
    await client.flush()
    with trio.fail_after(5):
        await ended.wait()
