"""What an open stream keeps alive (issue 13: RSS per open stream): nothing of the
request once it has gone upstream. A stream lasts minutes and a swarm holds thousands,
and a Codex request body is a whole conversation's JSON."""

from __future__ import annotations

import sys
import tracemalloc

import pytest
import trio
import trio.testing

from chatmock.net.client import HTTPClient
from chatmock.server.exchange import Request
from tests.unit.test_client_in_memory import URL, MemoryNetwork, keep_alive_server


async def test_the_upstream_request_is_not_held_while_its_answer_streams(
        nursery: trio.Nursery) -> None:
    events = [b"data: {\"a\":1}\n\n", b"data: {\"a\":2}\n\n"]
    client = HTTPClient(connect=MemoryNetwork(nursery, keep_alive_server(events)))
    body = b"{\"input\":\"%b\"}" % (b"x" * 100_000)
    headers = [(b"content-type", b"application/json"), (b"authorization", b"Bearer t")]
    body_refs, headers_refs = sys.getrefcount(body), sys.getrefcount(headers)
    async with client.request("POST", URL, headers, body) as response:
        received = [await response.receive()]  # the answer streams ...
        assert sys.getrefcount(body) == body_refs  # ... and only this test holds these
        assert sys.getrefcount(headers) == headers_refs
        while (data := await response.receive()) is not None:
            received.append(data)
        assert b"".join(d or b"" for d in received) == b"".join(events)
    await client.aclose()


async def test_a_request_awaiting_its_answer_is_held_once(nursery: trio.Nursery) -> None:
    """Until its answer's head arrives the request must be kept (a stale pooled connection
    sends it again), but once: the bytes written by hand end with the body, which was held
    beside them (a swarm's 64 KiB prompts awaiting their answers, twice over)."""
    size = 4_000_000
    received = 0
    answer = trio.Event()

    async def slow_backend(stream: trio.abc.Stream) -> None:
        nonlocal received
        while received < size:  # the request's bytes, dropped as they come
            received += len(await stream.receive_some(65536))
        await answer.wait()
        await stream.send_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")

    async def post() -> None:
        body = b"{\"input\":\"%b\"}" % (b"x" * size)
        request = client.request("POST", URL, [(b"content-type", b"application/json")], body)
        del body  # the client's alone now, as in codex.py
        async with request as response:
            assert await response.read_all(10) == b"ok"

    client = HTTPClient(connect=MemoryNetwork(nursery, slow_backend))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        nursery.start_soon(post)
        await trio.testing.wait_all_tasks_blocked()
        assert received > size  # the whole request is out; its answer is awaited
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        answer.set()
    assert size < held < 1.5 * size
    await trio.testing.wait_all_tasks_blocked()
    await client.aclose()


class _Reader:
    def __init__(self) -> None:
        self.reads = 0

    async def read_body(self, limit: int) -> bytes:
        self.reads += 1
        return b"{\"model\":\"gpt-5\"}"


async def test_a_released_request_body_is_dropped_and_not_read_again() -> None:
    reader = _Reader()
    request = Request("POST", "/v1/chat/completions", "", {}, reader, 1024)
    body = await request.body()
    assert await request.body() is body and reader.reads == 1
    refs = sys.getrefcount(body)
    request.release_body()
    assert sys.getrefcount(body) == refs - 1
    with pytest.raises(RuntimeError, match="released"):
        await request.body()
    assert reader.reads == 1
