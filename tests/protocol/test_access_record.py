"""The access record of every route, streamed and whole: the router's `Exchange`, filled in
by the backend (model), the relay (first byte) and the translators (tokens), logged once."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from chatmock.logs import FIELDS

from .gateway import Gateway, running_gateway

MODEL = "gpt-5.4"


def chat(stream: bool) -> dict[str, Any]:
    return {"model": MODEL, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}


BODIES: dict[str, tuple[str, Any, dict[str, str]]] = {
    "chat": ("/v1/chat/completions", chat, {}),
    "completions": ("/v1/completions", lambda stream: {
        "model": MODEL, "stream": stream, "prompt": "hi"}, {}),
    "responses": ("/v1/responses", lambda stream: {
        "model": MODEL, "stream": stream, "input": "hi"}, {}),
    "messages": ("/v1/messages", lambda stream: {
        "model": "claude-sonnet-5", "max_tokens": 100, "stream": stream,
        "messages": [{"role": "user", "content": "hi"}]},
        {"anthropic-version": "2023-06-01", "x-api-key": "sk-ant-unused"}),
    "ollama-chat": ("/api/chat", chat, {}),
    "ollama-generate": ("/api/generate", lambda stream: {
        "model": MODEL, "stream": stream, "prompt": "hi"}, {}),
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with running_gateway(tmp_path_factory.mktemp("access-home")) as running:
        yield running


class AccessRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.fields: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        found = getattr(record, FIELDS, None)
        if record.name == "chatmock.access" and isinstance(found, dict):
            self.fields.append(found)


@pytest.fixture
def access() -> Iterator[AccessRecords]:
    logger = logging.getLogger("chatmock.access")
    handler, level = AccessRecords(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("route", list(BODIES))
def test_every_route_logs_model_tokens_and_first_byte(gateway: Gateway, access: AccessRecords,
                                                      route: str, stream: bool) -> None:
    path, build, headers = BODIES[route]
    reply = gateway.post(path, json.dumps(build(stream)).encode(), headers)
    assert reply.status == 200, reply.body
    deadline = time.monotonic() + 5  # the line is written as the exchange unwinds
    while not any(found["path"] == path for found in access.fields):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    [fields] = [found for found in access.fields if found["path"] == path]
    assert fields["status"] == 200 and fields["model"] == MODEL and fields["stream"] is stream
    assert fields["input_tokens"] > 0 and fields["output_tokens"] > 0
    assert 0 < fields["ttfb_ms"] <= fields["duration_ms"]
    assert "error" not in fields and not gateway.log.records
