"""Dialect-neutral plumbing between a backend stream and a client.

`relay` streams: it pulls one upstream read, translates it, writes it, and
only then reads again, so the client's pace sets the backend's and nothing
piles up in between. `collect` feeds a whole answer to a collector for a
non-streamed reply. Both stop at the translator's terminal event; `drain`
then reads the little that is left so the backend connection can be pooled.
"""

from __future__ import annotations

from contextlib import aclosing
from typing import Any

import trio

from chatmock.dialects import request_body
from chatmock.dialects.events import UpstreamTranslator
from chatmock.dialects.machine import State
from chatmock.errors import UpstreamError
from chatmock.net.client import UpstreamResponse
from chatmock.server.exchange import Responder
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
    waiting_first = not exchange.first_byte  # a WebSocket's exchange relays many answers
    await out.start(200, headers)
    heartbeat = translator.heartbeat_seconds
    try:
        # `receive`, not `chunks`: an async generator's machinery per event is a
        # measurable share of a paced stream's cost.
        while (chunk := await upstream.receive(heartbeat)) is not None:
            if not chunk:
                await out.send(translator.heartbeat())
                continue
            data = translator.feed(chunk)
            if waiting_first and data:  # a local, not the record: cheaper per read
                exchange.mark_first_byte()
                waiting_first = False
            exchange.sent += len(data)
            if translator.state is State.DONE:
                exchange.note_outcome(translator.usage, translator.failure)
                await out.end(data)
                await drain(upstream)
                return
            if data:
                await out.send(data)
        tail = translator.finish()
    except UpstreamError as exc:
        tail = translator.upstream_failed(exc)
    exchange.note_outcome(translator.usage, translator.failure)
    await out.end(tail)


async def collect(upstream: UpstreamResponse, collector: UpstreamTranslator) -> None:
    """Feed the body to `collector` up to its terminal event (the caller drains the rest
    after answering, so that the connection's last read is off the critical path). The
    caller writes the answer right after: that is the exchange's first byte."""
    async with aclosing(upstream.chunks()) as chunks:
        async for chunk in chunks:
            collector.feed(chunk)
            if collector.state is State.DONE:
                break
    if collector.state is not State.DONE:
        collector.finish()
    exchange = exchanges.current_or_detached()
    exchange.note_outcome(collector.usage, collector.failure)
    exchange.mark_first_byte()


async def drain(upstream: UpstreamResponse) -> None:
    """Read the few bytes after the terminal event so the connection can be pooled."""
    with trio.move_on_after(DRAIN_AFTER_DONE_SECONDS):
        try:
            async with aclosing(upstream.chunks()) as chunks:
                async for _ in chunks:
                    pass
        except UpstreamError:
            pass
