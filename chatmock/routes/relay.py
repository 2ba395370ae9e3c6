"""Dialect-neutral plumbing between a backend stream and a client.

`relay` streams: it pulls one upstream read, translates it, writes it, and
only then reads again, so the client's pace sets the backend's and nothing
piles up in between. `collect` feeds a whole answer to a collector for a
non-streamed reply. Both stop at the translator's terminal event; `drain`
then reads the little that is left so the backend connection can be pooled.
"""

from __future__ import annotations

from functools import partial
from typing import Any, cast

import trio

from chatmock.dialects import request_body
from chatmock.dialects.events import UpstreamTranslator
from chatmock.dialects.machine import State
from chatmock.errors import UpstreamError
from chatmock.net import relayhub
from chatmock.net.response import HubReadable, UpstreamResponse
from chatmock.server.exchange import DirectSend, Responder
from chatmock.state import exchanges

SSE_HEADERS = ((b"content-type", b"text/event-stream; charset=utf-8"),
               (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no"))
DRAIN_AFTER_DONE_SECONDS = 1.0


def parse_json(body: bytes) -> Any:
    """A request's JSON body, made safe (`chatmock.dialects.request_body`: lone
    surrogates replaced, depth limited); raw control characters inside strings are
    tolerated."""
    return request_body.parse_json(body)


async def relay(upstream: UpstreamResponse, translator: UpstreamTranslator, out: Responder,
                headers: tuple[tuple[bytes, bytes], ...]) -> None:
    """Pull a read, translate it, write it, repeat: the client's pace sets the backend's.
    The exchange's record (`state/exchanges.py`) counts what is written."""
    exchange = exchanges.current_or_detached()
    exchange.streaming = True
    await out.start(200, headers)
    pump = _Pump(upstream, translator, out, exchange)
    try:
        tail = await pump.run()
    except UpstreamError as exc:
        tail = translator.upstream_failed(exc)
    if tail is None:
        return  # ended at the terminal event
    exchange.note_outcome(translator.usage, translator.failure)
    await out.end(tail)


_END, _WRITE, _READ = 0, 1, 2  # what the hub hands back (`_Pump.step`)


class _Pump:
    """One relayed stream: the task's loop (`run`), and the step the relay hub runs
    for it while it is parked there (`chatmock.net.relayhub`).

    After each write the stream is parked in the hub when both ends allow it (plain
    TCP, HTTP/1.1, `CHATMOCK_RELAY_HUB` not off); the hub hands it back to this task
    for anything that must wait: the terminal event (end and drain), a client write
    that would block, the body's end or a broken body, a heartbeat or the read
    timeout. What is read, translated, written and recorded is the same either way."""

    __slots__ = ("exchange", "heartbeat", "hub", "out", "translator", "upstream",
                 "waiting_first")

    def __init__(self, upstream: UpstreamResponse, translator: UpstreamTranslator,
                 out: Responder, exchange: exchanges.Exchange) -> None:
        self.upstream, self.translator, self.out = upstream, translator, out
        self.exchange = exchange
        self.heartbeat = translator.heartbeat_seconds
        self.waiting_first = not exchange.first_byte  # a WebSocket's exchange relays many
        self.hub = relayhub.hub() if isinstance(out, DirectSend) else None

    async def run(self) -> bytes | None:
        """Relay to the end: the tail to end the response with, or None when it was
        ended (and drained) at the terminal event. The hub gets the stream whenever the
        task has written all it read (from the start when the head came alone)."""
        upstream, translator, out = self.upstream, self.translator, self.out
        while True:
            if self.hub is not None and not upstream.held and await self.parked(self.hub):
                return None
            # `receive`, not `chunks`: an async generator's machinery per event is a
            # measurable share of a paced stream's cost.
            chunk = await upstream.receive(self.heartbeat)
            if chunk is None:
                return translator.finish()
            if not chunk:
                await out.send(translator.heartbeat())
                continue
            data = self.feed(chunk)
            if translator.state is State.DONE:
                await self.end(data)
                return None
            if data:
                await out.send(data)

    def feed(self, chunk: bytes) -> bytes:
        """Translate one read and count what will be written."""
        data = self.translator.feed(chunk)
        if self.waiting_first and data:  # a local, not the record: cheaper per read
            self.exchange.mark_first_byte()
            self.waiting_first = False
        self.exchange.sent += len(data)
        return data

    async def end(self, data: bytes) -> None:
        self.exchange.note_outcome(self.translator.usage, self.translator.failure)
        await self.out.end(data)
        await drain(self.upstream)

    async def parked(self, hub: relayhub.RelayHub) -> bool:
        """Let the hub carry the stream while it can; True once it was ended here at
        the terminal event, False when the task's loop goes on (or the hub cannot).

        One frame for the whole stay (each open stream keeps its await chain): the hub
        hands back what its step returned, or None when the deadline passed, which is a
        heartbeat if the hub stepped nothing meanwhile (the task path's timed-out wait),
        else a deadline its steps had pushed on."""
        upstream, out = self.upstream, self.out
        assert isinstance(out, DirectSend)
        backend = upstream.hub_socket() if isinstance(upstream, HubReadable) else None
        if backend is None or out.direct_socket() is None:
            self.hub = None  # TLS, HTTP/2, HTTP/1.0...: the task's loop, to the end
            return False
        assert isinstance(upstream, HubReadable)
        entry = relayhub.Parked(backend.fileno(), partial(self.step, out, upstream))
        while not upstream.ended:
            since = entry.active_at
            wait = upstream.silence_left(self.heartbeat)
            handed = await hub.park(entry, since + wait)
            if handed is None:
                if entry.active_at == since:  # nothing came
                    upstream.note_silence(wait)
                    entry.active_at = trio.current_time()
                    await out.send(self.translator.heartbeat())
                continue
            kind, data = cast("tuple[int, bytes]", handed)  # what `step` returns
            if kind == _END:
                await self.end(data)
                return True
            if kind == _READ:
                break
            await out.send_rest(data)
        return False

    def step(self, out: DirectSend, body: HubReadable) -> tuple[int, bytes] | None:
        """The hub's step (on its task, never awaiting): a read, translated and written;
        None to stay parked, else what the task must do. `body` is `self.upstream`."""
        upstream = self.upstream
        chunk = body.receive_nowait()
        if chunk:
            data = self.feed(chunk)
            if self.translator.state is State.DONE:
                return _END, data
            if data:
                rest = out.send_nowait(data)
                if rest:
                    return _WRITE, rest
        if upstream.ended:
            return _READ, b""
        return None


async def collect(upstream: UpstreamResponse, collector: UpstreamTranslator) -> None:
    """Feed the body to `collector` up to its terminal event (the caller drains the rest
    after answering, so that the connection's last read is off the critical path). The
    caller writes the answer right after: that is the exchange's first byte."""
    while (chunk := await upstream.receive()) is not None:
        collector.feed(chunk)
        if collector.state is State.DONE:
            break
    if collector.state is not State.DONE:
        collector.finish()
    exchange = exchanges.current_or_detached()
    exchange.note_outcome(collector.usage, collector.failure)
    exchange.mark_first_byte()


async def drain(upstream: UpstreamResponse) -> None:
    """Read the few bytes after the terminal event so the connection can be pooled
    (nothing to wait for when they came with it: no timer then)."""
    if upstream.ended and not upstream.held:
        return
    with trio.CancelScope(deadline=trio.current_time() + DRAIN_AFTER_DONE_SECONDS):
        try:
            while await upstream.receive() is not None:
                pass
        except UpstreamError:
            pass
