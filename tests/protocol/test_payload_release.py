"""An open stream does not keep the conversation it was asked with (issue 13).

An agent's request carries its whole conversation, often hundreds of KiB, and its answer
can stream for minutes. Once the backend has answered, nothing of the request is needed
any more (except by the Responses routes, which store the turn's input at its end), so
memory per open stream must not grow with the prompt. Each case asks twice, with a short
message and with a 2 MiB one, holds the answer open (the fake backend sends its first five
events, then waits) and counts, with tracemalloc, what chatmock holds meanwhile (the fake
backend's own copy is left out by its frames): the two must be about the same.
"""

from __future__ import annotations

import json
import threading
import time
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from .gateway import Gateway, Reply, running_gateway

MODEL = "gpt-5.4"
MESSAGE_BYTES = 2 * 1024 * 1024
HELD_MS = 1200  # the fake's wait after its first events: the window to measure in
# The long request may leave this much more while open: its ~500 body reads leave stale
# deadline entries in trio's heap (pruned lazily, shared by all). Its first read alone, kept
# for the connection's life, was 64 KiB.
GROWTH_LIMIT = 32 * 1024


def held_message(size: int) -> str:
    return f"fake:deltas=1 fake:burst=5 fake:delay_ms={HELD_MS} " + "x" * size


def _chat(stream: bool, text: str) -> dict[str, Any]:
    return {"model": MODEL, "stream": stream, "messages": [{"role": "user", "content": text}]}


ROUTES: dict[str, tuple[str, Any, dict[str, str]]] = {
    "chat": ("/v1/chat/completions", _chat, {}),
    "completions": ("/v1/completions", lambda stream, text: {
        "model": MODEL, "stream": stream, "prompt": text}, {}),
    "messages": ("/v1/messages", lambda stream, text: {
        "model": "claude-sonnet-5", "max_tokens": 100, "stream": stream,
        "messages": [{"role": "user", "content": text}]},
        {"anthropic-version": "2023-06-01", "x-api-key": "sk-ant-unused"}),
    "ollama-chat": ("/api/chat", _chat, {}),
    "ollama-generate": ("/api/generate", lambda stream, text: {
        "model": MODEL, "stream": stream, "prompt": text}, {}),
    "responses": ("/v1/responses", lambda stream, text: {
        "model": MODEL, "stream": stream, "input": text}, {}),
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with running_gateway(tmp_path_factory.mktemp("release-home")) as running:
        for path, body_of, headers in ROUTES.values():  # routes load on their first request
            warm = running.post(path, json.dumps(body_of(True, "hi")).encode(), headers)
            assert warm.status == 200, warm.body[:300]
        yield running


def _held_by_chatmock() -> int:
    """Bytes still allocated by chatmock: not by the fake backend (in this process too) nor
    by this test's client thread."""
    snapshot = tracemalloc.take_snapshot().filter_traces((
        tracemalloc.Filter(True, "*/chatmock/*", all_frames=True),
        tracemalloc.Filter(False, "*/chatmock/testing/*", all_frames=True),
        tracemalloc.Filter(False, __file__, all_frames=True),
    ))
    return sum(stat.size for stat in snapshot.statistics("filename"))


def _measure_while_open(gateway: Gateway, path: str, body: bytes,
                        headers: dict[str, str]) -> tuple[int, Reply]:
    replies: list[Reply] = []
    caller = threading.Thread(target=lambda: replies.append(gateway.post(path, body, headers)))
    streams = gateway.fake.fake.streams

    def open_streams() -> int:  # read anew each time (the fake's thread changes it)
        return streams.open

    deadline = time.monotonic() + 10
    while open_streams():  # the previous case's stream may still be ending in the fake
        assert time.monotonic() < deadline, "an earlier stream never ended"
        time.sleep(0.02)
    tracemalloc.start(64)
    try:
        caller.start()
        while open_streams() == 0:  # the backend has answered
            assert time.monotonic() < deadline, "the request never reached the backend"
            time.sleep(0.02)
        time.sleep(HELD_MS / 1000 / 4)  # chatmock relays the first events; the fake waits
        held = _held_by_chatmock()
    finally:
        tracemalloc.stop()
    caller.join(HELD_MS / 1000 + 30)
    assert replies, "the request did not finish"
    return held, replies[0]


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
@pytest.mark.parametrize("route", sorted(set(ROUTES) - {"responses"}))
def test_an_open_answer_keeps_nothing_of_the_prompt(gateway: Gateway, route: str,
                                                     stream: bool) -> None:
    short, long = (_held_while_open(gateway, route, stream, size) for size in (10, MESSAGE_BYTES))
    assert long - short < GROWTH_LIMIT, f"{long - short} more bytes held for the long request"


def test_the_responses_route_keeps_its_input_for_the_stored_turn(gateway: Gateway) -> None:
    """The one route that must keep it: the turn's input is stored at its end, so that a
    `previous_response_id` chains on it. The measure sees it (it is not blind)."""
    short, long = (_held_while_open(gateway, "responses", True, size)
                   for size in (10, MESSAGE_BYTES))
    assert long - short > MESSAGE_BYTES // 2


def _held_while_open(gateway: Gateway, route: str, stream: bool, size: int) -> int:
    path, body_of, headers = ROUTES[route]
    body = json.dumps(body_of(stream, held_message(size))).encode()
    held, reply = _measure_while_open(gateway, path, body, headers)
    assert reply.status == 200, reply.body[:300]
    return held
