"""The official `anthropic` package against `chatmock serve` and the fake backend."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any, Literal

import anthropic
import pydantic
import pytest

from .conftest import Process, last_upstream_body

PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63000100000500010d0a2db40000000049454e44ae426082")).decode()
WEATHER = {"name": "get_weather", "description": "Weather for a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                            "required": ["city"]}}
TOOL_PROMPT = 'weather please fake:tool=get_weather fake:args={"city":"Paris"}'


@pytest.fixture(scope="module")
def client(anthropic_client: anthropic.Anthropic) -> anthropic.Anthropic:
    return anthropic_client


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def test_messages_create(client: anthropic.Anthropic) -> None:
    message = client.messages.create(model="claude-sonnet-5", max_tokens=1000,
                                     messages=user("hi there"))
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello! You said: hi there"
    assert message.model == "claude-sonnet-5"
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens > 0


def test_stream_final_message(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model="claude-opus-4-8", max_tokens=1000,
                                messages=user("x fake:deltas=25")) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text.count("tok") == 25
    assert final.content[0].text == text  # type: ignore[union-attr]


def run_tool_loop(client: anthropic.Anthropic, stream: bool) -> None:
    def ask(messages: list[Any]) -> anthropic.types.Message:
        if stream:
            with client.messages.stream(model="claude-sonnet-5", max_tokens=1000,
                                        tools=[WEATHER], messages=messages) as s:  # type: ignore[list-item]
                return s.get_final_message()
        return client.messages.create(model="claude-sonnet-5", max_tokens=1000,
                                      tools=[WEATHER], messages=messages)  # type: ignore[list-item]

    first = ask(user(TOOL_PROMPT))
    assert first.stop_reason == "tool_use"
    call = next(block for block in first.content if block.type == "tool_use")
    assert call.name == "get_weather" and call.input == {"city": "Paris"}
    history = [*user(TOOL_PROMPT), {"role": "assistant", "content": first.content},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                             "content": "22C"}]}]
    second = ask(history)
    assert second.content[0].text == f"Tool {call.id} returned: 22C"  # type: ignore[union-attr]


def test_tool_round_trip(client: anthropic.Anthropic) -> None:
    run_tool_loop(client, stream=False)


def test_tool_round_trip_streamed(client: anthropic.Anthropic) -> None:
    run_tool_loop(client, stream=True)


def test_thinking_block_round_trip(client: anthropic.Anthropic, fake_upstream: Process) -> None:
    thinking: Any = {"type": "enabled", "budget_tokens": 8000}
    first = client.messages.create(model="claude-sonnet-5", max_tokens=16000,
                                   thinking=thinking, messages=user("think fake:reasoning"))
    block = first.content[0]
    assert block.type == "thinking" and block.thinking and block.signature
    client.messages.create(model="claude-sonnet-5", max_tokens=16000, thinking=thinking,
                           messages=[*user("think fake:reasoning"),
                                     {"role": "assistant", "content": first.content},
                                     *user("second thinking turn")])
    sent = last_upstream_body(fake_upstream, "second thinking turn")
    reasoning = [item for item in sent["input"] if item.get("type") == "reasoning"]
    assert block.signature.startswith("chatmock.1.")
    assert reasoning and block.signature.endswith("." + reasoning[0]["encrypted_content"])


@pytest.mark.parametrize("stream", [False, True])
def test_a_foreign_thinking_signature_is_dropped(client: anthropic.Anthropic,
                                                 fake_upstream: Process, stream: bool) -> None:
    """History begun on real Anthropic: its signed thinking never reaches the backend
    (which would refuse the whole request), and the turn still gets its answer."""
    marker = f"after a real anthropic turn {stream}"
    foreign = [{"type": "thinking", "thinking": "anthropic's own thoughts",
                "signature": "EqQBCkgIARABGAIiQL8anthropic+signature=="},
               {"type": "redacted_thinking", "data": "EmwKAhgBEgy3redacted"},
               {"type": "text", "text": "Earlier answer"}]
    messages: Any = [*user("first"), {"role": "assistant", "content": foreign}, *user(marker)]
    message: anthropic.types.Message
    if stream:
        with client.messages.stream(model="claude-sonnet-5", max_tokens=16000,
                                    messages=messages) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(model="claude-sonnet-5", max_tokens=16000,
                                         messages=messages)
    assert message.content[0].text == f"Hello! You said: {marker}"  # type: ignore[union-attr]
    sent = last_upstream_body(fake_upstream, marker)
    assert not [item for item in sent["input"] if item.get("type") == "reasoning"]
    assert "anthropic's own thoughts" not in json.dumps(sent)


def test_image_block(client: anthropic.Anthropic, fake_upstream: Process) -> None:
    client.messages.create(model="claude-sonnet-5", max_tokens=100, messages=[
        {"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": PNG}},
            {"type": "text", "text": "anthropic image check"}]}])
    sent = last_upstream_body(fake_upstream, "anthropic image check")
    assert sent["input"][-1]["content"][0] == {"type": "input_image",
                                               "image_url": f"data:image/png;base64,{PNG}"}


def test_system_as_blocks(client: anthropic.Anthropic, fake_upstream: Process) -> None:
    client.messages.create(model="claude-sonnet-5", max_tokens=100, messages=user("sys check"),
                           system=[{"type": "text", "text": "Be terse.",
                                    "cache_control": {"type": "ephemeral"}},
                                   {"type": "text", "text": "Answer in French."}])
    instructions = last_upstream_body(fake_upstream, "sys check")["instructions"]
    assert "Be terse." in instructions and "Answer in French." in instructions


def test_count_tokens(client: anthropic.Anthropic) -> None:
    small = client.messages.count_tokens(model="claude-sonnet-5", messages=user("hi"))
    large = client.messages.count_tokens(model="claude-sonnet-5", messages=user("hi " * 500),
                                         tools=[WEATHER])  # type: ignore[list-item]
    assert 0 < small.input_tokens < large.input_tokens


def test_models_list(client: anthropic.Anthropic) -> None:
    ids = [model.id for model in client.models.list()]
    assert "gpt-5.4" in ids
    assert client.models.retrieve("gpt-5.4").type == "model"


def test_429_is_a_rate_limit_error(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model="claude-sonnet-5", max_tokens=10,
                               messages=user("x fake:error=429"))
    assert caught.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]


def post(server: Process, path: str, body: dict[str, Any],
         headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(f"{server.url}{path}", data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request) as reply:
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.load(error)


def test_missing_anthropic_version_is_a_400(chatmock_server: Process) -> None:
    status, body = post(chatmock_server, "/v1/messages",
                        {"model": "claude-sonnet-5", "max_tokens": 10, "messages": user("x")},
                        {"x-api-key": "k"})
    assert status == 400 and body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"


def test_missing_max_tokens_is_a_400(chatmock_server: Process) -> None:
    status, body = post(chatmock_server, "/v1/messages?beta=true",
                        {"model": "claude-sonnet-5", "messages": user("x")},
                        {"x-api-key": "k", "anthropic-version": "2023-06-01"})
    assert status == 400 and "max_tokens" in body["error"]["message"]


class Reply(pydantic.BaseModel):
    said: str
    length: int
    mood: Literal["calm", "cheerful"]
    note: str | None = None


def test_structured_output_through_the_sdk_parse_helper(client: anthropic.Anthropic,
                                                        fake_upstream: Process) -> None:
    message = client.messages.parse(model="claude-sonnet-5", max_tokens=1000,
                                    messages=user("structured please"), output_format=Reply)
    parsed = message.parsed_output
    assert parsed is not None and parsed.said == "Hello! You said: structured please"
    assert parsed.length == len(parsed.said) and parsed.mood == "calm"
    sent = last_upstream_body(fake_upstream, "structured please")["text"]["format"]
    assert (sent["type"], sent["strict"]) == ("json_schema", False)
    assert set(sent["schema"]["properties"]) == {"said", "length", "mood", "note"}


def test_structured_output_streams_as_json_text(client: anthropic.Anthropic) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}},
              "required": ["answer"], "additionalProperties": False}
    with client.messages.stream(model="claude-sonnet-5", max_tokens=1000,
                                messages=user("streamed structure"),
                                output_config={"format": {"type": "json_schema",
                                                          "schema": schema}}) as stream:
        text = "".join(stream.text_stream)
    assert json.loads(text) == {"answer": "Hello! You said: streamed structure"}
