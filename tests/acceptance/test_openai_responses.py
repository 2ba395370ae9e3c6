"""`/v1/responses` with the official `openai` package: passthrough, chaining, Codex bodies."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from .conftest import Process, last_upstream_body, start_chatmock

WEATHER: Any = {"type": "function", "name": "get_weather", "description": "Weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
           "strict": False}
TOOL_PROMPT = 'weather please fake:tool=get_weather fake:args={"city":"Paris"}'


def client_for(server: Process) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0, timeout=20)


@pytest.fixture(scope="module")
def client(chatmock_server: Process) -> Iterator[openai.OpenAI]:
    with client_for(chatmock_server) as shared:
        yield shared


def test_create_non_stream(client: openai.OpenAI) -> None:
    response = client.responses.create(model="gpt-5.4", input="hi there")
    assert response.output_text == "Hello! You said: hi there"
    assert response.status == "completed"
    assert response.usage is not None and response.usage.output_tokens > 0


def test_create_stream_relays_the_backend_events(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model="gpt-5.4", input="x fake:deltas=12",
                                          stream=True))
    kinds = [event.type for event in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text.count("tok") == 12


def test_stream_helper_final_response(client: openai.OpenAI) -> None:
    with client.responses.stream(model="gpt-5.4", input="helper") as stream:
        final = stream.get_final_response()
    assert final.output_text == "Hello! You said: helper"


def test_cut_stream_ends_with_an_error_event(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model="gpt-5.4", input="x fake:cut", stream=True))
    assert events[-1].type == "error"


def test_failed_non_stream_is_a_502(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        client.responses.create(model="gpt-5.4", input="x fake:fail")
    assert caught.value.status_code == 502


def test_rejected_parameters_are_stripped_and_system_moves_to_instructions(
        client: openai.OpenAI, fake_upstream: Process) -> None:
    client.responses.create(model="gpt-5.4-high", max_output_tokens=50, temperature=0.2,
                            metadata={"k": "v"}, input=[
                                {"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "strip check"}])
    sent = last_upstream_body(fake_upstream, "strip check")
    assert sent["instructions"] == "Be brief."
    assert not {"max_output_tokens", "temperature", "metadata"} & sent.keys()
    assert sent["reasoning"]["effort"] == "high"
    assert sent["store"] is False and "reasoning.encrypted_content" in sent["include"]


def test_chat_shaped_tools_take_the_responses_shape(client: openai.OpenAI,
                                                   fake_upstream: Process) -> None:
    """The backend refuses `{"type":"function","function":{...}}` as `tool_choice`."""
    chat_tool: Any = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}
    chat_choice: Any = {"type": "function", "function": {"name": "get_weather"}}
    client.responses.create(model="gpt-5.4", input="chat shape check", tools=[chat_tool],
                            tool_choice=chat_choice)
    sent = last_upstream_body(fake_upstream, "chat shape check")
    assert sent["tool_choice"] == {"type": "function", "name": "get_weather"}
    assert sent["tools"][0]["name"] == "get_weather"


def test_codex_cli_body_survives(client: openai.OpenAI, fake_upstream: Process) -> None:
    namespace = {"type": "namespace", "name": "multi_agent_v1",
                 "tools": [{"type": "function", "name": "spawn", "parameters": {}}]}
    body: dict[str, Any] = {
        "model": "gpt-5.3-codex", "store": False, "stream": True,
        "input": [{"type": "message", "id": "msg_dev", "role": "developer",
                   "content": [{"type": "input_text", "text": "You are Codex."}]},
                  {"type": "message", "id": "msg_user", "role": "user",
                   "content": [{"type": "input_text", "text": "codex body check"}]}],
        "tools": [namespace, {"type": "web_search", "external_web_access": False}],
        "tool_choice": "auto", "parallel_tool_calls": True, "prompt_cache_key": "cache-1",
        "include": ["reasoning.encrypted_content"], "reasoning": {"summary": "auto"},
        "client_metadata": {"x-codex-turn-metadata": "{}"}}
    client.post("/responses", body=body, cast_to=object,
                options={"headers": {"session-id": "s-1", "originator": "codex_exec"}},
                stream=True, stream_cls=openai.Stream[object]).close()
    sent = last_upstream_body(fake_upstream, "codex body check")
    assert sent["tools"][0] == namespace
    assert sent["tools"][1]["external_web_access"] is False
    assert sent["input"][0]["role"] == "developer" and sent["input"][0]["id"] == "msg_dev"
    assert sent["prompt_cache_key"] == "cache-1"
    assert sent["client_metadata"]["x-codex-turn-metadata"] == "{}"
    assert sent["parallel_tool_calls"] is True


def test_fast_mode_reaches_the_backend(client: openai.OpenAI, fake_upstream: Process) -> None:
    client.responses.create(model="gpt-5.4", input="fast check", extra_body={"fast_mode": True})
    assert last_upstream_body(fake_upstream, "fast check")["service_tier"] == "priority"


def test_unknown_previous_response_id_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model="gpt-5.4", input="x", previous_response_id="resp_nope")
    assert "resp_nope" in caught.value.message


def three_turn_loop(turn: Callable[[dict[str, Any]], Any], fake: Process) -> None:
    """Tool call → tool result chained by previous_response_id → a follow-up."""
    first = turn({"input": TOOL_PROMPT, "tools": [WEATHER]})
    call = next(item for item in first.output if item.type == "function_call")
    assert json.loads(call.arguments) == {"city": "Paris"}
    second = turn({"previous_response_id": first.id, "tools": [WEATHER], "input": [
        {"type": "function_call_output", "call_id": call.call_id, "output": "22C"}]})
    assert second.output_text == f"Tool {call.call_id} returned: 22C"
    third = turn({"previous_response_id": second.id, "input": "thanks, chain check"})
    assert third.output_text == "Hello! You said: thanks, chain check"
    sent = last_upstream_body(fake, "thanks, chain check")
    kinds = [(item.get("type"), item.get("role")) for item in sent["input"]]
    assert kinds[0] == ("message", "user")
    assert ("function_call", None) in kinds and ("function_call_output", None) in kinds
    assert kinds[-2:] == [("message", "assistant"), ("message", "user")]


def test_tool_loop_chained_in_memory(tmp_path: Path, fake_upstream: Process) -> None:
    server = start_chatmock(tmp_path, fake_upstream, "--responses-store", "memory")
    try:
        with client_for(server) as client:
            three_turn_loop(lambda fields: client.responses.create(model="gpt-5.4", **fields),
                            fake_upstream)
    finally:
        server.stop()


def test_tool_loop_chained_across_restarts(tmp_path: Path, fake_upstream: Process) -> None:
    home = tmp_path / "home"

    def turn(fields: dict[str, Any]) -> Any:
        server = start_chatmock(tmp_path / f"run{len(list(tmp_path.iterdir()))}",
                                fake_upstream, home=home)
        try:
            with client_for(server) as client:
                return client.responses.create(model="gpt-5.4", **fields)
        finally:
            assert server.stop() == 0

    start_chatmock(tmp_path / "seed", None, home=home).stop()  # writes the credentials
    three_turn_loop(turn, fake_upstream)


def test_streamed_turns_chain_too(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model="gpt-5.4", input="streamed first",
                                          stream=True))
    first_id = events[-1].response.id  # type: ignore[union-attr]
    follow = client.responses.create(model="gpt-5.4", previous_response_id=first_id,
                                     input="streamed second")
    assert follow.output_text == "Hello! You said: streamed second"


def test_response_format_input_serves_responses_bodies_on_the_chat_route(
        tmp_path: Path, fake_upstream: Process) -> None:
    server = start_chatmock(tmp_path, fake_upstream, "--response-format", "input")
    try:
        with client_for(server) as client:
            reply = client.post("/chat/completions", cast_to=object,
                                body={"model": "gpt-5.4", "input": "routed by format"})
            chat = client.chat.completions.create(
                model="gpt-5.4", messages=[{"role": "user", "content": "still chat"}])
    finally:
        server.stop()
    assert isinstance(reply, dict) and reply["object"] == "response"
    assert reply["output"][0]["content"][0]["text"] == "Hello! You said: routed by format"
    assert chat.choices[0].message.content == "Hello! You said: still chat"
