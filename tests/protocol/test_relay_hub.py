"""The relay hub (`chatmock.net.relayhub`) against the task's own loop, over real sockets.

A raw backend writes a Codex event stream, one HTTP chunk per event, cut into reads
at random points; chatmock's HTTP/1.1 server relays it through a dialect's
translator to a raw client. With the hub on, the client must get exactly the body
it gets with the hub off, for every dialect and every split, and the hub must have
carried the stream. Then the hand-backs: a client that leaves, a backend that
resets, a client that does not read, a silent backend (heartbeats, read timeout),
and streams parked in the hub when the server drains.
"""

from __future__ import annotations

import random
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from dataclasses import dataclass, field

import h11
import pytest
import trio

from chatmock.dialects.anthropic_stream import MessagesStreamTranslator
from chatmock.dialects.chat_stream import KEEP_ALIVE, ChatStreamTranslator
from chatmock.dialects.completions import CompletionStreamTranslator
from chatmock.dialects.events import UpstreamTranslator
from chatmock.dialects.ollama_stream import OllamaStreamTranslator
from chatmock.dialects.responses_stream import ResponsesObserver
from chatmock.net import relayhub
from chatmock.net.client import HTTPClient
from chatmock.routes.relay import SSE_HEADERS, relay
from chatmock.server.exchange import ConnectionLimits, Request, Responder
from chatmock.server.h1responder import H1Responder
from chatmock.server.listen import open_listeners, serve
from chatmock.testing.fake_events import ResponseSeed, parse_scenario, plan_items, sse_chunks

from .helpers import serve_on_loopback

TRANSLATORS: dict[str, Callable[[], UpstreamTranslator]] = {
    "chat": lambda: ChatStreamTranslator(model="m", created=1, compat="think-tags",
                                         include_usage=True),
    "responses": lambda: ResponsesObserver(relay=True),
    "anthropic": lambda: MessagesStreamTranslator(model="m", thinking=True, input_tokens=3),
    "ollama": lambda: OllamaStreamTranslator(model="m", created_at="2026-01-01T00:00:00Z",
                                             think=True, compat="think-tags", started=0,
                                             clock=lambda: 0),
    "completions": lambda: CompletionStreamTranslator(model="m", created=1,
                                                      include_usage=True),
}


def event_stream(prompt: str) -> list[bytes]:
    """The fake backend's events for `prompt`, one HTTP chunk each, as the real one
    frames them."""
    scenario = parse_scenario(prompt)
    counter = iter(range(1, 1000))
    seed = ResponseSeed("resp_1", 1, "gpt-5", 3, {}, plan_items(scenario, lambda: next(counter)))
    return [b"%x\r\n%b\r\n" % (len(data), data) for _, data in sse_chunks(scenario, seed)]


def cut(wire: bytes, rng: random.Random, pieces: int) -> list[bytes]:
    points = sorted(rng.sample(range(1, len(wire)), min(pieces, len(wire) - 1)))
    return [wire[a:b] for a, b in zip([0, *points], [*points, len(wire)], strict=True)]


HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


@dataclass
class Backend:
    """A raw backend: answers every request with `pieces`, a pause between them; then
    `ending` (the last chunk, or a reset, or silence)."""

    pieces: list[bytes] = field(default_factory=list)
    pause: float = 0.002
    ending: str = "last-chunk"
    port: int = 0

    async def handle(self, stream: trio.SocketStream) -> None:
        # A client that leaves mid-stream (a drain, a cancelled relay) resets the
        # socket under a write; a backend shrugs that off.
        with suppress(trio.BrokenResourceError):
            await self._answer(stream)

    async def _answer(self, stream: trio.SocketStream) -> None:
        buffered = b""
        while b"\r\n\r\n" not in buffered:
            buffered += await stream.receive_some(65536)
        await stream.send_all(HEAD)
        for piece in self.pieces:
            await trio.sleep(self.pause)
            await stream.send_all(piece)
        if self.ending == "last-chunk":
            await stream.send_all(b"0\r\n\r\n")
            await trio.sleep(0.5)
        elif self.ending == "reset":
            stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        else:
            await trio.sleep_forever()
        await stream.aclose()


@pytest.fixture
async def upstream_client() -> AsyncIterator[HTTPClient]:
    pooled = HTTPClient(read_timeout=300, http2=False)
    yield pooled
    await pooled.aclose()


@dataclass
class Relaying:
    """chatmock's HTTP/1.1 server whose one route relays `backend` through `dialect`."""

    client: HTTPClient
    backend: Backend
    dialect: str = "chat"
    outcomes: list[BaseException | None] = field(default_factory=list)

    async def app(self, request: Request, out: Responder) -> None:
        url = f"http://127.0.0.1:{self.backend.port}/stream"
        try:
            async with self.client.request("POST", url, [(b"content-type", b"application/json")],
                                           b"{}") as upstream:
                await relay(upstream, TRANSLATORS[self.dialect](), out, SSE_HEADERS)
        except BaseException as exc:
            self.outcomes.append(exc)
            raise
        self.outcomes.append(None)


async def start(nursery: trio.Nursery, relaying: Relaying) -> int:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    relaying.backend.port = listeners[0].socket.getsockname()[1]
    nursery.start_soon(trio.serve_listeners, relaying.backend.handle, listeners)
    return await serve_on_loopback(nursery, relaying.app)


async def fetch(port: int, *, read_pause: float = 0.0, stop_after: int | None = None,
                linger: float = 0.0) -> bytes:
    """The body of one streamed answer, read with h11; `stop_after` reads, then leave;
    `linger` seconds connected after the body (a client that leaves cancels the rest)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    conn = h11.Connection(h11.CLIENT)
    await stream.send_all(conn.send(h11.Request(method="POST", target="/", headers=[
        (b"host", b"x"), (b"content-length", b"0")])) + conn.send(h11.EndOfMessage()))
    body: list[bytes] = []
    reads = 0
    async with stream:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                if stop_after is not None and reads >= stop_after:
                    return b"".join(body)
                await trio.sleep(read_pause)
                conn.receive_data(await stream.receive_some(65536))
                reads += 1
            elif isinstance(event, h11.Data):
                body.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                await trio.sleep(linger)
                return b"".join(body)


class Steps:
    """Counts the hub's steps (how many reads it carried)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = relayhub.Parked.__init__

        def counting(parked: relayhub.Parked, fd: int, step: relayhub.Step) -> None:
            def counted() -> object:
                self.count += 1
                return step()

            original(parked, fd, counted)

        monkeypatch.setattr(relayhub.Parked, "__init__", counting)


async def relayed_body(client: HTTPClient, backend: Backend, dialect: str) -> bytes:
    async with trio.open_nursery() as nursery:
        port = await start(nursery, Relaying(client, backend, dialect))
        body = await fetch(port)
        nursery.cancel_scope.cancel()
    return body


PROMPTS = ("hello fake:deltas=25", "think fake:reasoning=4 fake:deltas=6",
           "call fake:tool=lookup fake:args={\"q\":1}", "x fake:deltas=5 fake:cut")


@pytest.mark.parametrize("linger_ms", ["0", "5"])
@pytest.mark.parametrize("dialect", sorted(TRANSLATORS))
async def test_the_hub_relays_exactly_what_the_task_relays(
        dialect: str, linger_ms: str, upstream_client: HTTPClient,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the linger every split is a read of its own (over a hundred steps); with
    it (the default, longer than the backend's pauses) several splits come in one read,
    and every stream the hub relayed was stepped at least once."""
    monkeypatch.setenv(relayhub.LINGER_SWITCH, linger_ms)
    steps = Steps(monkeypatch)
    rng = random.Random(dialect)
    for prompt in PROMPTS:
        wire = b"".join(event_stream(prompt))
        for _ in range(3):
            backend = Backend(cut(wire, rng, rng.randint(1, 60)), pause=0.001)
            monkeypatch.setenv(relayhub.ENV_SWITCH, "0")
            before = steps.count
            by_task = await relayed_body(upstream_client, backend, dialect)
            assert steps.count == before
            monkeypatch.setenv(relayhub.ENV_SWITCH, "1")
            by_hub = await relayed_body(upstream_client, backend, dialect)
            assert by_hub == by_task, prompt
            assert by_task
    if linger_ms == "0":
        assert steps.count > 100
    else:
        assert steps.count >= 3 * len(PROMPTS)


def events(count: int) -> list[bytes]:
    return event_stream(f"x fake:deltas={count}")


async def test_a_client_that_leaves_cancels_its_parked_stream(
        upstream_client: HTTPClient, monkeypatch: pytest.MonkeyPatch) -> None:
    steps = Steps(monkeypatch)
    relaying = Relaying(upstream_client, Backend(events(400), pause=0.005))
    async with trio.open_nursery() as nursery:
        port = await start(nursery, relaying)
        got = await fetch(port, stop_after=10)
        with trio.fail_after(5):
            while not relaying.outcomes:
                await trio.sleep(0.01)
        hub = relayhub.hub()
        assert hub is not None and hub.parked == 0
        nursery.cancel_scope.cancel()
    assert got and steps.count >= 5
    assert isinstance(relaying.outcomes[0], trio.Cancelled)


async def test_a_backend_reset_ends_the_stream_as_a_cut_one(
        upstream_client: HTTPClient, monkeypatch: pytest.MonkeyPatch) -> None:
    answers = []
    for switch in ("0", "1"):
        monkeypatch.setenv(relayhub.ENV_SWITCH, switch)
        backend = Backend(events(30)[:12], ending="reset")
        answers.append(await relayed_body(upstream_client, backend, "chat"))
    assert answers[0] == answers[1]
    assert b"before the response was complete" in answers[1]


async def test_a_client_that_reads_slowly_gets_everything(
        upstream_client: HTTPClient, monkeypatch: pytest.MonkeyPatch) -> None:
    big = [b"%x\r\n%b\r\n" % (len(e), e) for e in (_delta_event(i, "y" * 3000)
                                                   for i in range(200))]
    backend = Backend([b"".join(big[:100]), b"".join(big[100:])], pause=0.001)
    wire_events = b"".join(event_stream("x fake:deltas=1"))
    backend.pieces.append(wire_events)
    monkeypatch.setenv(relayhub.ENV_SWITCH, "0")
    by_task = await relayed_body(upstream_client, backend, "responses")
    monkeypatch.setenv(relayhub.ENV_SWITCH, "1")
    monkeypatch.setenv(relayhub.LINGER_SWITCH, "0")  # writes as fast as events come
    rests: list[int] = []
    original = H1Responder.send_rest

    async def counted(out: H1Responder, rest: bytes) -> None:
        rests.append(len(rest))
        await original(out, rest)

    monkeypatch.setattr(H1Responder, "send_rest", counted)
    async with trio.open_nursery() as nursery:
        port = await start(nursery, Relaying(upstream_client, backend, "responses"))
        by_hub = await fetch(port, read_pause=0.002)
        nursery.cancel_scope.cancel()
    assert by_hub == by_task
    assert rests  # the client's socket filled up: the task finished those writes
    assert len(by_hub) > 600_000


async def test_a_pass_lingers_so_that_one_wake_up_steps_the_events_that_came_meanwhile(
        upstream_client: HTTPClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Events 2 ms apart, a 25 ms linger: the hub makes a pass per linger, not per event,
    and relays exactly what the stream's own task relays."""
    monkeypatch.setenv(relayhub.ENV_SWITCH, "0")
    by_task = await relayed_body(upstream_client, Backend(events(40), pause=0.002), "chat")
    monkeypatch.setenv(relayhub.ENV_SWITCH, "1")
    monkeypatch.setenv(relayhub.LINGER_SWITCH, "25")
    started = trio.current_time()
    by_hub = await relayed_body(upstream_client, Backend(events(40), pause=0.002), "chat")
    seconds = trio.current_time() - started
    hub = relayhub.hub()
    assert by_hub == by_task
    assert hub is not None and hub.stepped >= 1  # the hub carried the stream
    assert hub.wakes <= seconds / 0.025 + 3, (hub.wakes, hub.stepped, seconds)


def test_the_linger_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for text, seconds in (("0", 0.0), ("2", 0.002), ("-1", 0.0), ("soon", 0.005)):
        monkeypatch.setenv(relayhub.LINGER_SWITCH, text)
        assert relayhub.linger_seconds() == seconds
    monkeypatch.delenv(relayhub.LINGER_SWITCH)
    assert relayhub.linger_seconds() == 0.005


def _delta_event(index: int, text: str) -> bytes:
    data = b'{"type":"response.output_text.delta","item_id":"msg_1","output_index":0,' \
        b'"content_index":0,"delta":"%b","sequence_number":%d}' % (text.encode(), index)
    return b"event: response.output_text.delta\ndata: " + data + b"\n\n"


@pytest.mark.parametrize("switch", ["0", "1"])
async def test_a_silent_backend_gets_heartbeats_then_the_read_timeout(
        switch: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(relayhub.ENV_SWITCH, switch)
    monkeypatch.setattr(ChatStreamTranslator, "heartbeat_seconds", 0.1)
    pooled = HTTPClient(read_timeout=0.45, http2=False)
    backend = Backend(events(40)[:6], ending="silence")
    body = await relayed_body(pooled, backend, "chat")
    await pooled.aclose()
    assert body.count(KEEP_ALIVE) == 4
    assert b"sent nothing for 0.45 s" in body


async def test_a_drain_ends_streams_parked_in_the_hub(upstream_client: HTTPClient) -> None:
    relaying = Relaying(upstream_client, Backend(events(400), pause=0.01))
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        relaying.backend.port = listeners[0].socket.getsockname()[1]
        nursery.start_soon(trio.serve_listeners, relaying.backend.handle, listeners)
        ours = await open_listeners("127.0.0.1", 0)
        port: int = await nursery.start(lambda task_status: serve(
            relaying.app, ours, limits=ConnectionLimits(), max_connections=100,
            shutdown=shutdown, shutdown_timeout=0.2, task_status=task_status))
        async def cut_short() -> None:
            # The drain cuts the stream: the client sees a body cut short, or (when the
            # close catches its unread bytes) a reset.
            with suppress(h11.RemoteProtocolError, trio.BrokenResourceError):
                await fetch(port)

        for _ in range(5):
            nursery.start_soon(cut_short)
        await trio.sleep(0.3)
        hub = relayhub.hub()
        assert hub is not None and hub.parked == 5
        shutdown.set()
        with trio.fail_after(3):
            while len(relaying.outcomes) < 5:
                await trio.sleep(0.01)
        assert hub.parked == 0
        nursery.cancel_scope.cancel()
    assert all(isinstance(outcome, trio.Cancelled) for outcome in relaying.outcomes)


async def test_the_timer_hands_back_each_stay_at_its_deadline_and_forgets_stale_ones(
        autojump_clock: trio.abc.Clock) -> None:
    """Deadlines in one heap, one timer: every stay ends at its own deadline (never
    before, in order), a stay that its stream left early leaves no wake-up behind, and
    the heap of deadlines stays bounded however often the streams park again."""
    hub = relayhub.RelayHub()
    pairs = [socket.socketpair() for _ in range(4)]
    woken: list[tuple[int, float]] = []
    largest_heap = 0

    async def stays(number: int, sock: socket.socket) -> None:
        nonlocal largest_heap
        entry = relayhub.Parked(sock.fileno(), lambda: None)
        for _ in range(50):  # left early: a stale deadline each
            with trio.move_on_after(0.01):
                await hub.park(entry, trio.current_time() + 5)
            largest_heap = max(largest_heap, len(hub._deadlines))
        for _ in range(3):
            deadline = trio.current_time() + 0.5 * (number + 1)
            assert await hub.park(entry, deadline) is None
            assert trio.current_time() >= deadline
            woken.append((number, trio.current_time()))

    async with trio.open_nursery() as nursery:
        for number, (sock, _) in enumerate(pairs):
            nursery.start_soon(stays, number, sock)
    assert [number for number, _ in woken].count(0) == 3 and len(woken) == 12
    assert woken == sorted(woken, key=lambda pair: pair[1])
    assert largest_heap <= 2 * len(pairs) + 64 + 1
    assert hub.parked == 0
    for pair in pairs:
        for sock in pair:
            sock.close()


@dataclass
class CountingBackend(Backend):
    """Counts its connections; the last chunk comes a while after the terminal event."""

    connections: int = 0

    async def handle(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        while True:
            buffered = b""
            while b"\r\n\r\n" not in buffered:
                data = await stream.receive_some(65536)
                if not data:
                    return
                buffered += data
            await stream.send_all(HEAD)
            for piece in self.pieces:
                await stream.send_all(piece)
            await trio.sleep(0.05)
            await stream.send_all(b"0\r\n\r\n")


async def test_the_body_after_the_terminal_event_is_drained_and_the_connection_pooled(
        upstream_client: HTTPClient) -> None:
    backend = CountingBackend(event_stream("hello fake:deltas=5"))
    relaying = Relaying(upstream_client, backend)
    async with trio.open_nursery() as nursery:
        port = await start(nursery, relaying)
        # The drain waits for the last chunk after the client got its end: the client
        # stays (one that leaves cancels the exchange, drain and all).
        first = await fetch(port, linger=0.2)
        second = await fetch(port)
        nursery.cancel_scope.cancel()
    assert first == second and first.endswith(b"data: [DONE]\n\n")
    assert backend.connections == 1
