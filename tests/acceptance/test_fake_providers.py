"""The provider fakes as processes, read by independent clients.

The official `openai` client parses each chat-completions flavor's stream (its
SSE framing, comment lines, choiceless usage chunks, a missing `[DONE]`), and
the Qwen fake serves a two-turn conversation to plain urllib, so that the
fakes' framing is checked by code that is not ours.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from chatmock.testing.fake_chat_flavors import FLAVORS, OPENROUTER_KEY, XAI_KEY
from chatmock.testing.fake_qwen import QWEN_TOKEN

from .conftest import Process, spawn

KEYS = {"xai": XAI_KEY, "openrouter": OPENROUTER_KEY}


@pytest.fixture(params=["xai", "openrouter", "llamacpp", "ollama"])
def chat_fake(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Process]]:
    flavor: str = request.param
    process = spawn(["-m", "chatmock.testing.fake_chat", "--flavor", flavor, "--port", "0"],
                    tmp_path / "fake.log")
    yield flavor, process
    process.stop()


def test_the_openai_client_reads_every_flavors_stream(chat_fake: tuple[str, Process]) -> None:
    flavor, process = chat_fake
    client = openai.OpenAI(base_url=process.url + FLAVORS[flavor].prefix,
                           api_key=KEYS.get(flavor, "unused"), max_retries=0)
    model = FLAVORS[flavor].models[0].id
    tools: Any = [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]
    stream = client.chat.completions.create(
        model=model, stream=True, stream_options={"include_usage": True}, tools=tools,
        messages=[{"role": "user", "content": 'hi fake:tool=lookup fake:args={"q":1}'}])
    text, arguments, usage = "", "", None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            for call in choice.delta.tool_calls or []:
                arguments += call.function.arguments or "" if call.function else ""
    assert text == "Hello! You said: hi"
    assert json.loads(arguments) == {"q": 1}
    assert usage is not None and usage.total_tokens > 0
    listed = client.models.list()
    assert model in {m.id for m in listed.data}


def test_the_openai_client_sees_provider_errors(tmp_path: Path) -> None:
    process = spawn(["-m", "chatmock.testing.fake_chat", "--flavor", "openrouter",
                     "--port", "0"], tmp_path / "fake.log")
    try:
        client = openai.OpenAI(base_url=process.url + "/api/v1", api_key=OPENROUTER_KEY,
                               max_retries=0)
        with pytest.raises(openai.RateLimitError) as info:
            client.chat.completions.create(
                model="openai/gpt-5", messages=[{"role": "user", "content": "fake:error=429"}])
        assert info.value.body["metadata"]["retry_after_seconds"] == 7  # type: ignore[index]
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=process.url + "/api/v1", api_key="sk-or-v1-wrong",
                          max_retries=0).models.retrieve("x")
    finally:
        process.stop()


def qwen_post(url: str, body: dict[str, Any]) -> bytes:
    headers = {"User-Agent": "Mozilla/5.0 Chrome/140.0", "bx-v": "2.5.36", "source": "web",
               "version": "0.2.83", "Authorization": f"Bearer {QWEN_TOKEN}",
               "Cookie": f"token={QWEN_TOKEN}", "Content-Type": "application/json"}
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as reply:
        data: bytes = reply.read()
    return data


def test_the_qwen_fake_serves_a_conversation(tmp_path: Path) -> None:
    process = spawn(["-m", "chatmock.testing.fake_qwen", "--port", "0"], tmp_path / "q.log")
    try:
        chat = json.loads(qwen_post(process.url + "/api/v2/chats/new",
                                    {"models": ["qwen3.7-plus"], "chat_type": "t2t"}))
        chat_id = chat["data"]["id"]
        parent = None
        for text in ("one", "two"):
            message = {"role": "user", "content": text,
                       "feature_config": {"output_schema": "phase"}}
            raw = qwen_post(f"{process.url}/api/v2/chat/completions?chat_id={chat_id}",
                            {"stream": True, "incremental_output": True, "chat_id": chat_id,
                             "model": "qwen3.7-plus", "parent_id": parent,
                             "messages": [message]})
            events = [json.loads(line[6:]) for line in raw.split(b"\n\n") if line]
            parent = events[0]["response.created"]["response_id"]
            answer = "".join(e["choices"][0]["delta"]["content"] for e in events[1:])
            assert answer == f"Hello! You said: {text}"
    finally:
        process.stop()
