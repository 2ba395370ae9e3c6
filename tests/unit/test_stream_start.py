"""Reading a Codex stream's start ahead for a usage limit (chatmock/upstream/stream_start.py)."""

from __future__ import annotations

import json

import pytest
import trio

from chatmock.net.response import UpstreamResponse
from chatmock.upstream.stream_start import read_start, usage_limit


class Reads(UpstreamResponse):
    """A response whose body comes in the given reads (b"": the backend stays silent)."""

    def __init__(self, *reads: bytes) -> None:
        super().__init__(200, [], 60.0)
        self.reads = list(reads)
        self.asked = 0

    async def receive(self, heartbeat: float | None = None) -> bytes | None:
        self.asked += 1
        if not self.reads:
            self.complete = True
            return None
        return self.reads.pop(0)


def event(kind: str, **fields: object) -> bytes:
    return b"data: %s\n\n" % json.dumps({"type": kind, **fields}).encode()


CREATED = event("response.created", response={"id": "resp_1"})
DELTA = event("response.output_text.delta", delta="Hi")
LIMIT = {"type": "usage_limit_reached", "code": "usage_limit_reached", "resets_in_seconds": 9}


async def drain(response: UpstreamResponse) -> bytes:
    return b"".join([data async for data in response.chunks()])


def test_the_start_is_held_until_the_first_answering_event_then_given_back_whole() -> None:
    async def main() -> None:
        inner = Reads(CREATED[:7], CREATED[7:] + event("response.in_progress"), DELTA, b"tail")
        held, refusal = await read_start(inner)
        assert refusal is None and inner.asked == 3  # the tail was not read ahead
        assert await drain(held) == CREATED + event("response.in_progress") + DELTA + b"tail"
        assert held.complete

    trio.run(main)


@pytest.mark.parametrize("shape", [
    event("response.failed", response={"status": "failed", "error": LIMIT}),
    event("error", status=429, error=LIMIT, headers={"x-codex-primary-used-percent": "100"}),
    event("response.failed", response={"error": {"code": "usage_not_included"}}),
])
def test_a_usage_limit_as_the_first_event_is_found(shape: bytes) -> None:
    async def main() -> None:
        _, refusal = await read_start(Reads(CREATED, shape, DELTA))
        assert refusal is not None and refusal["error"]

    trio.run(main)


@pytest.mark.parametrize("shape", [
    event("error", code="rate_limit_exceeded", message="try again in 7.5s"),
    event("response.failed", response={"error": {"code": "server_error"}}),
    event("response.output_text.delta", delta=json.dumps(LIMIT)),
])
def test_other_failures_and_answers_are_not_usage_limits(shape: bytes) -> None:
    assert usage_limit(json.loads(shape[6:])) is None


def test_a_limit_after_the_answer_began_is_not_looked_for() -> None:
    async def main() -> None:
        limit = event("response.failed", response={"error": LIMIT})
        held, refusal = await read_start(Reads(CREATED + DELTA + limit))
        assert refusal is None
        assert await drain(held) == CREATED + DELTA + limit

    trio.run(main)


def test_silence_after_the_preamble_stops_reading_ahead() -> None:
    async def main() -> None:
        inner = Reads(CREATED, b"", DELTA)
        held, refusal = await read_start(inner)
        assert refusal is None and inner.asked == 2
        assert await drain(held) == CREATED + DELTA

    trio.run(main)
