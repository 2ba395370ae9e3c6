"""The official `openai` package against `chatmock serve` and the fake backend, over sockets."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from .conftest import UPSTREAM_H2, Process, last_upstream_body, start_chatmock

# 1x1 transparent PNG
PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63000100000500010d0a2db40000000049454e44ae426082")).decode()
WEATHER_TOOL: Any = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
TOOL_PROMPT = 'weather please fake:tool=get_weather fake:args={"city":"Paris"}'


def client_for(server: Process) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="sk-unused", max_retries=0,
                         timeout=20)


@pytest.fixture(scope="module")
def client(chatmock_server: Process) -> Iterator[openai.OpenAI]:
    with client_for(chatmock_server) as shared:
        yield shared


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def stream_text(stream: Iterator[Any]) -> tuple[str, list[Any]]:
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, chunks


def test_models_list(client: openai.OpenAI) -> None:
    ids = [model.id for model in client.models.list()]
    assert "gpt-5.4" in ids
    assert client.models.retrieve("gpt-5.4").id == "gpt-5.4"


def test_chat_non_stream(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="gpt-5.4", messages=user("hi there"))
    assert reply.choices[0].message.content == "Hello! You said: hi there"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    assert reply.model == "gpt-5.4"


def test_chat_stream_with_escapes(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="gpt-5.4", messages=user("x fake:deltas=30"),
                                            stream=True)
    text, chunks = stream_text(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert text.count("tok") == 30
    assert '"' in text and "\\" in text and "\n" in text and "é" in text
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and
                c.choices[0].finish_reason]
    assert finishes == ["stop"]


def hub_steps(server: Process) -> int:
    with urllib.request.urlopen(f"{server.url}/health", timeout=10) as answer:
        return int(json.load(answer)["relay_hub"]["stepped"])


def test_a_paced_stream_is_carried_by_the_relay_hub(client: openai.OpenAI,
                                                    chatmock_server: Process) -> None:
    before = hub_steps(chatmock_server)
    stream = client.chat.completions.create(
        model="gpt-5.4", messages=user("x fake:deltas=12 fake:delay_ms=20"), stream=True)
    text, chunks = stream_text(stream)
    assert text.count("tok") == 12
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    stepped = hub_steps(chatmock_server) - before
    if UPSTREAM_H2:  # a TLS backend stays on the task's own loop (net/relayhub.py)
        assert stepped == 0
    else:
        assert stepped >= 10


def test_stream_helper_builds_final_completion(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(model="gpt-5.4", messages=user("helper test")) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == "Hello! You said: helper test"
    assert final.choices[0].message.role == "assistant"


def test_include_usage_chunk_has_no_choices(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="gpt-5.4", messages=user("usage"),
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


def test_tool_round_trip_non_stream(client: openai.OpenAI, fake_upstream: Process) -> None:
    first = client.chat.completions.create(model="gpt-5.4", messages=user(TOOL_PROMPT),
                                           tools=[WEATHER_TOOL])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]
    history = [*user(TOOL_PROMPT), choice.message.model_dump(exclude_none=True),
               {"role": "tool", "tool_call_id": call.id, "content": "22C and sunny"}]
    second = client.chat.completions.create(model="gpt-5.4", messages=history,
                                            tools=[WEATHER_TOOL])
    assert second.choices[0].message.content == f"Tool {call.id} returned: 22C and sunny"
    sent = last_upstream_body(fake_upstream, "22C and sunny")
    kinds = [item["type"] for item in sent["input"]]
    assert kinds[-2:] == ["function_call", "function_call_output"]


def test_tool_round_trip_stream(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="gpt-5.4", messages=user(TOOL_PROMPT),
                                            tools=[WEATHER_TOOL],
                                            stream=True)
    calls: dict[int, dict[str, str]] = {}
    finishes = []
    for chunk in stream:
        delta = chunk.choices[0].delta
        for part in delta.tool_calls or []:
            entry = calls.setdefault(part.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] += part.id or ""
            entry["name"] += (part.function.name or "") if part.function else ""
            entry["arguments"] += (part.function.arguments or "") if part.function else ""
        if chunk.choices[0].finish_reason:
            finishes.append(chunk.choices[0].finish_reason)
    assert finishes == ["tool_calls"]
    assert list(calls) == [0]
    assert calls[0]["name"] == "get_weather"
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris"}
    history = [*user(TOOL_PROMPT),
               {"role": "assistant", "content": None, "tool_calls": [
                   {"id": calls[0]["id"], "type": "function",
                    "function": {"name": "get_weather", "arguments": calls[0]["arguments"]}}]},
               {"role": "tool", "tool_call_id": calls[0]["id"], "content": "rainy"}]
    text, _ = stream_text(client.chat.completions.create(
        model="gpt-5.4", messages=history, stream=True))
    assert text == f"Tool {calls[0]['id']} returned: rainy"


def test_image_part_reaches_the_backend(client: openai.OpenAI, fake_upstream: Process) -> None:
    messages = [{"role": "user", "content": [
        {"type": "text", "text": "what is in this picture"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]}]
    reply = client.chat.completions.create(model="gpt-5.4", messages=messages)  # type: ignore[arg-type]
    assert "what is in this picture" in (reply.choices[0].message.content or "")
    sent = last_upstream_body(fake_upstream, "what is in this picture")
    parts = sent["input"][-1]["content"]
    assert parts[1] == {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"}


def test_system_prompt_becomes_instructions(client: openai.OpenAI,
                                            fake_upstream: Process) -> None:
    client.chat.completions.create(model="gpt-5.4-high", messages=[
        {"role": "system", "content": "Be terse."}, *user("system check")])
    sent = last_upstream_body(fake_upstream, "system check")
    assert sent["instructions"] == "Be terse."
    assert sent["reasoning"]["effort"] == "high"
    assert sent["store"] is False and sent["stream"] is True
    assert sent["prompt_cache_key"]


def test_think_tags_reasoning(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="gpt-5.4", messages=user("x fake:reasoning"))
    content = reply.choices[0].message.content or ""
    assert content.startswith("<think>") and "</think>Hello!" in content
    text, _ = stream_text(client.chat.completions.create(
        model="gpt-5.4", messages=user("y fake:reasoning"), stream=True))
    assert text.startswith("<think>") and "</think>Hello!" in text


@pytest.fixture(scope="module")
def o3_server(tmp_path_factory: pytest.TempPathFactory,
              fake_upstream: Process) -> Iterator[Process]:
    process = start_chatmock(tmp_path_factory.mktemp("o3"), fake_upstream,
                             "--reasoning-compat", "o3")
    yield process
    process.stop()


@pytest.fixture(scope="module")
def legacy_server(tmp_path_factory: pytest.TempPathFactory,
                  fake_upstream: Process) -> Iterator[Process]:
    process = start_chatmock(tmp_path_factory.mktemp("legacy"), fake_upstream,
                             "--reasoning-compat", "legacy")
    yield process
    process.stop()


def test_o3_reasoning(o3_server: Process) -> None:
    with client_for(o3_server) as client:
        check_o3(client)


def check_o3(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="gpt-5.4", messages=user("x fake:reasoning"))
    message = reply.choices[0].message
    assert message.content == "Hello! You said: x"
    assert "thought" in (message.model_extra or {})["reasoning"]["content"][0]["text"]
    chunks = list(client.chat.completions.create(model="gpt-5.4", stream=True,
                                                 messages=user("x fake:reasoning")))
    reasoning = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning", {"content": [{"text": ""}]})
        ["content"][0]["text"] for c in chunks if c.choices)
    assert "thought" in reasoning


def test_legacy_reasoning(legacy_server: Process) -> None:
    with client_for(legacy_server) as client:
        check_legacy(client)


def check_legacy(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="gpt-5.4", messages=user("x fake:reasoning"))
    extra = reply.choices[0].message.model_extra or {}
    assert "thought" in extra["reasoning_summary"]
    chunks = list(client.chat.completions.create(model="gpt-5.4", stream=True,
                                                 messages=user("x fake:reasoning")))
    summaries = [(c.choices[0].delta.model_extra or {}).get("reasoning_summary") for c in chunks
                 if c.choices]
    assert any(summaries)


def test_429_is_a_rate_limit_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="gpt-5.4", messages=user("x fake:error=429"))
    assert caught.value.response.headers["retry-after"] == "120"
    assert "usage limit" in caught.value.message


@pytest.mark.parametrize("status", [500, 503])
def test_5xx_is_a_server_error(client: openai.OpenAI, status: int) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="gpt-5.4", messages=user(f"x fake:error={status}"))
    assert caught.value.status_code == status
    assert "overloaded" in caught.value.message


def test_upstream_400_message_reaches_the_client(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="gpt-5.4", messages=user("x fake:error=400"))
    assert "Bad request from fake" in caught.value.message


def test_malformed_json_is_400(chatmock_server: Process) -> None:
    request = urllib.request.Request(f"{chatmock_server.url}/v1/chat/completions",
                                     data=b'{"model": "gpt-5.4", "messages": [',
                                     headers={"content-type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request)
    assert caught.value.code == 400
    assert "Invalid JSON" in json.load(caught.value)["error"]["message"]


def test_invalid_request_is_a_clear_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        bad: Any = [{"role": "tool", "content": "x"}]  # no tool_call_id
        client.chat.completions.create(model="gpt-5.4", messages=bad)
    assert "tool_call_id" in caught.value.message


@pytest.mark.parametrize("directive", ["fake:cut", "fake:fail", "fake:empty",
                                       "fake:error_event"])
def test_broken_stream_raises_instead_of_ending_quietly(client: openai.OpenAI,
                                                        directive: str) -> None:
    stream = client.chat.completions.create(model="gpt-5.4", messages=user(f"x {directive}"),
                                            stream=True)
    with pytest.raises(openai.APIError):
        list(stream)


@pytest.mark.parametrize("directive", ["fake:cut", "fake:fail"])
def test_broken_non_stream_is_a_502(client: openai.OpenAI, directive: str) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="gpt-5.4", messages=user(f"x {directive}"))
    assert caught.value.status_code == 502


def test_incomplete_answer_finishes_with_length(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="gpt-5.4", messages=user("x fake:incomplete"))
    assert reply.choices[0].finish_reason == "length"


def test_no_credentials_is_401(tmp_path: Path, fake_upstream: Process) -> None:
    server = start_chatmock(tmp_path, fake_upstream, credentials=False)
    try:
        with client_for(server) as client, pytest.raises(openai.AuthenticationError) as caught:
            client.chat.completions.create(model="gpt-5.4", messages=user("hi"))
        assert "chatmock login" in caught.value.message
    finally:
        assert server.stop() == 0
