"""The WebSocket's answer through the shared `relay`: `EventFrames` (dialects/responses_frames.py)
writes frames, `FrameSocket` (routes/responses_ws.py) sends them, one text frame per event."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, cast

from chatmock.dialects.responses_frames import EventFrames, framed, frames_of
from chatmock.dialects.responses_stream import ResponsesObserver
from chatmock.errors import UpstreamError
from chatmock.net.response import UpstreamResponse
from chatmock.routes.relay import relay
from chatmock.routes.responses_ws import FrameSocket
from chatmock.state import exchanges

USAGE = {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}


def event(kind: str, **fields: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **fields})}\n\n".encode()


CREATED = event("response.created", response={"id": "resp_1", "status": "in_progress"})
DELTA = event("response.output_text.delta", delta="Hel")
COMPLETED = event("response.completed",
                  response={"id": "resp_1", "status": "completed", "output": [], "usage": USAGE})


class Reads:
    """An upstream stream that replays its reads, then ends (or raises an error read)."""

    def __init__(self, *reads: bytes | UpstreamError) -> None:
        self.reads = list(reads)

    async def receive(self, heartbeat: float | None = None) -> bytes | None:
        if not self.reads:
            return None
        read = self.reads.pop(0)
        if isinstance(read, UpstreamError):
            raise read
        return read

    async def chunks(self, heartbeat: float | None = None) -> AsyncIterator[bytes]:
        while (read := await self.receive(heartbeat)) is not None:
            yield read

    @property
    def ended(self) -> bool:
        """Every read replayed (what `relay.drain` asks before it waits for more)."""
        return not self.reads

    held = False


class Socket:
    """A MessageSocket that keeps the text frames sent."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def receive(self) -> str | bytes | None:
        return None

    async def send_text(self, text: str) -> None:
        self.sent.append(text)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        pass

    def responding(self) -> AbstractAsyncContextManager[None]:
        return _nothing()


@asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield


async def answer(*reads: bytes | UpstreamError,
                 translator: EventFrames | None = None) -> list[dict[str, Any]]:
    socket = Socket()
    await relay(cast(UpstreamResponse, Reads(*reads)), translator or EventFrames({}),
                FrameSocket(socket), ())
    return [json.loads(text) for text in socket.sent]


async def test_each_event_is_one_frame_up_to_the_backends_terminal_one() -> None:
    succeeded: list[str] = []

    def on_success(observer: ResponsesObserver) -> None:
        succeeded.append(observer.response_id)

    frames = await answer(CREATED + DELTA, COMPLETED, event("response.created"),
                          translator=EventFrames({}, on_success))
    assert [frame["type"] for frame in frames] == [
        "response.created", "response.output_text.delta", "response.completed"]
    assert frames[1]["delta"] == "Hel" and succeeded == ["resp_1"]


async def test_an_upstream_broken_mid_answer_is_one_error_frame_with_its_status() -> None:
    frames = await answer(CREATED, DELTA, UpstreamError("the backend sent nothing for 1 s",
                                                        status=504))
    assert [frame["type"] for frame in frames] == [
        "response.created", "response.output_text.delta", "error"]
    assert frames[-1] == {"type": "error", "status_code": 504, "error": {
        "message": "the backend sent nothing for 1 s", "code": "upstream_error"}}
    coded = await answer(CREATED, UpstreamError("reset", status=503, code="overloaded"))
    assert coded[-1]["status_code"] == 503 and coded[-1]["error"]["code"] == "overloaded"


async def test_a_body_that_ends_early_is_one_502_error_frame() -> None:
    frames = await answer(CREATED + DELTA[:20])
    assert [frame["type"] for frame in frames] == ["response.created", "error"]
    assert frames[-1]["status_code"] == 502
    assert frames[-1]["error"]["code"] == "upstream_truncated"


async def test_the_backends_failure_is_relayed_without_a_frame_of_ours() -> None:
    failed = event("response.failed", response={"id": "resp_1", "error": {
        "message": "no", "code": "server_error"}})
    frames = await answer(CREATED, failed)
    assert [frame["type"] for frame in frames] == ["response.created", "response.failed"]


def test_a_raw_separator_in_an_event_stays_inside_its_one_frame() -> None:
    data = framed(b'{"a": "x\x1ey"}') + framed(b"{}")
    assert frames_of(data) == ['{"a": "x\\u001ey"}', "{}"]
    assert frames_of(b"") == []  # a heartbeat: no frame


async def test_a_sockets_exchange_adds_up_its_answers() -> None:
    record = exchanges.Exchange(1, "GET", "/v1/responses")
    token = exchanges.enter(record)
    try:
        await answer(CREATED, COMPLETED)
        first_byte = record.first_byte
        await answer(CREATED, COMPLETED)
    finally:
        exchanges.leave(token)
    assert record.streaming and record.first_byte == first_byte > 0
    assert (record.input_tokens, record.output_tokens) == (14, 6)
    # what the frames carry, and one separator byte per frame
    frames = [framed(sse.partition(b"data: ")[2].rstrip(b"\n")) for sse in (CREATED, COMPLETED)]
    assert record.sent == 2 * sum(len(frame) for frame in frames)
