"""The official `ollama` package against `chatmock serve`: /api/chat and /api/generate."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any

import ollama
import pytest

from .conftest import Process, last_upstream_body

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63000100000500010d0a2db40000000049454e44ae426082")
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
TOOL_PROMPT = 'weather please fake:tool=get_weather fake:args={"city":"Paris"}'


@pytest.fixture(scope="module")
def client(ollama_client: ollama.Client) -> ollama.Client:
    return ollama_client


def user(text: str, **extra: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text, **extra}]


def test_chat_non_stream(client: ollama.Client) -> None:
    reply = client.chat(model="gpt-5.4", messages=user("hi there"))
    assert reply.message.content == "Hello! You said: hi there"
    assert reply.done is True and reply.done_reason == "stop" and reply.model == "gpt-5.4"
    assert reply.eval_count and reply.prompt_eval_count and reply.total_duration


def test_chat_stream(client: ollama.Client) -> None:
    parts = list(client.chat(model="gpt-5.4:latest", messages=user("x fake:deltas=20"),
                             stream=True))
    text = "".join(part.message.content or "" for part in parts)
    assert text.count("tok") == 20 and "é" in text
    assert [p.done for p in parts].count(True) == 1 and parts[-1].done_reason == "stop"
    assert parts[-1].eval_duration and parts[-1].model == "gpt-5.4:latest"


def test_chat_with_image(client: ollama.Client, fake_upstream: Process) -> None:
    reply = client.chat(model="gpt-5.4", messages=[
        {"role": "user", "content": "what is in this image png", "images": [PNG]}])
    assert reply.message.content == "Hello! You said: what is in this image png"
    sent = last_upstream_body(fake_upstream, "what is in this image png")
    image = sent["input"][-1]["content"][-1]
    assert image == {"type": "input_image",
                     "image_url": "data:image/png;base64," + base64.b64encode(PNG).decode()}


def test_tools_non_stream_round_trip(client: ollama.Client, fake_upstream: Process) -> None:
    first = client.chat(model="gpt-5.4", messages=user(TOOL_PROMPT), tools=[WEATHER])
    calls = first.message.tool_calls or []
    assert len(calls) == 1 and calls[0].function.name == "get_weather"
    assert calls[0].function.arguments == {"city": "Paris"}
    history: list[Any] = [*user(TOOL_PROMPT), first.message,
               {"role": "tool", "content": "22C and sunny", "tool_name": "get_weather"}]
    second = client.chat(model="gpt-5.4", messages=history, tools=[WEATHER])
    assert second.message.content == "Tool ollama_call_0 returned: 22C and sunny"
    sent = last_upstream_body(fake_upstream, "22C and sunny")
    assert [item["type"] for item in sent["input"]][-2:] == ["function_call",
                                                             "function_call_output"]


def test_tools_stream_round_trip(client: ollama.Client) -> None:
    parts = list(client.chat(model="gpt-5.4", messages=user(TOOL_PROMPT), tools=[WEATHER],
                             stream=True))
    calls = [call for part in parts for call in part.message.tool_calls or []]
    assert [(c.function.name, dict(c.function.arguments)) for c in calls] == \
        [("get_weather", {"city": "Paris"})]
    history = [*user(TOOL_PROMPT),
               {"role": "assistant", "content": "", "tool_calls": [c.model_dump() for c in calls]},
               {"role": "tool", "content": "rainy", "tool_name": "get_weather"}]
    text = "".join(p.message.content or "" for p in client.chat(
        model="gpt-5.4", messages=history, tools=[WEATHER], stream=True))
    assert text == "Tool ollama_call_0 returned: rainy"


def test_think_on_and_off(client: ollama.Client, fake_upstream: Process) -> None:
    on = client.chat(model="gpt-5.4", messages=user("think on fake:reasoning"), think=True)
    assert on.message.thinking and on.message.thinking.startswith("**Step 1**")
    assert on.message.content == "Hello! You said: think on"
    streamed = list(client.chat(model="gpt-5.4", messages=user("think s fake:reasoning"),
                                think="high", stream=True))
    assert "".join(p.message.thinking or "" for p in streamed).startswith("**Step 1**")
    assert last_upstream_body(fake_upstream, "think s")["reasoning"]["effort"] == "high"
    off = client.chat(model="gpt-5.4", messages=user("think off fake:reasoning"), think=False)
    assert off.message.thinking is None and off.message.content == "Hello! You said: think off"
    reasoning = last_upstream_body(fake_upstream, "think off")["reasoning"]
    assert reasoning == {"effort": "none"}


def test_structured_output(client: ollama.Client, fake_upstream: Process) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    client.chat(model="gpt-5.4", messages=user("structured please"), format=schema)
    sent = last_upstream_body(fake_upstream, "structured please")
    assert sent["text"]["format"] == {"type": "json_schema", "name": "response",
                                      "schema": schema, "strict": False}


def test_generate_non_stream_and_stream(client: ollama.Client, fake_upstream: Process) -> None:
    reply = client.generate(model="gpt-5.4", prompt="gen prompt", system="be terse")
    assert reply.response == "Hello! You said: gen prompt" and reply.done is True
    assert reply.context == [] and reply.eval_count
    assert last_upstream_body(fake_upstream, "gen prompt")["instructions"] == "be terse"
    parts = list(client.generate(model="gpt-5.4", prompt="gen stream", stream=True))
    assert "".join(p.response or "" for p in parts) == "Hello! You said: gen stream"
    assert parts[-1].done and parts[-1].done_reason == "stop"


def test_generate_load_and_unload(client: ollama.Client) -> None:
    assert client.generate(model="gpt-5.4").done_reason == "load"
    assert client.generate(model="gpt-5.4", keep_alive=0).done_reason == "unload"


def test_upstream_error_keeps_status(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(model="gpt-5.4", messages=user("x fake:error=429"))
    assert caught.value.status_code == 429
    with pytest.raises(ollama.ResponseError) as streamed:
        list(client.chat(model="gpt-5.4", messages=user("x fake:error=429"), stream=True))
    assert streamed.value.status_code == 429


def test_cut_stream_raises_while_iterating(client: ollama.Client) -> None:
    seen: list[str] = []
    with pytest.raises(ollama.ResponseError):
        for part in client.chat(model="gpt-5.4", messages=user("x fake:cut"), stream=True):
            seen.append(part.message.content or "")
    assert seen and "".join(seen).startswith("Hello!")
    with pytest.raises(ollama.ResponseError) as whole:
        client.chat(model="gpt-5.4", messages=user("x fake:cut"))
    assert whole.value.status_code == 502


def test_validation_error_shape(chatmock_server: Process) -> None:
    request = urllib.request.Request(f"{chatmock_server.url}/api/chat", method="POST",
                                     data=json.dumps({"messages": user("x")}).encode(),
                                     headers={"content-type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request)
    with caught.value as error:
        assert error.code == 400
        assert json.loads(error.read()) == {"error": "model is required"}
