"""chatmock.dialects.chat_upstream_request: Codex payloads → chat-completions requests.

The payloads come from the dialects' own request parsers, and every mapped
request is checked against the fake provider's rules (the rules the real
servers apply)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chatmock.catalog import Catalog
from chatmock.dialects.anthropic import parse_messages_request
from chatmock.dialects.chat import parse_chat_request
from chatmock.dialects.chat_upstream_request import (
    chat_request,
    nearest,
    pack_reasoning_details,
    unpack_reasoning_details,
)
from chatmock.dialects.ollama import OllamaRequest, parse_chat
from chatmock.dialects.options import Options
from chatmock.dialects.responses import parse_responses_request
from chatmock.dialects.signatures import account_tag, mint
from chatmock.errors import ClientError
from chatmock.testing.fake_chat_flavors import FLAVORS
from chatmock.testing.fake_chat_rules import validate_chat

JSON = dict[str, Any]
CATALOG = Catalog()
SETTINGS = Options()
PNG = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
       "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
WEATHER: JSON = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather by city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}
MODELS = {"xai": "grok-4.3", "openrouter": "openai/gpt-5", "vllm": "Qwen/Qwen3-8B",
          "ollama": "llama3.2-vision:11b"}


def accepted(body: JSON, flavor: str) -> JSON:
    """The fake server of `flavor` takes `body` (its rules are the real server's)."""
    validate_chat(FLAVORS[flavor], json.loads(json.dumps(body)))
    return body


def mapped(payload: JSON, flavor: str, **options: Any) -> JSON:
    body = chat_request(payload, model=options.pop("model", MODELS[flavor]),
                        flavor="openai" if flavor in ("vllm", "ollama") else flavor,
                        **options)
    return accepted(body, flavor)


def from_chat(body: JSON, **settings: Any) -> JSON:
    return parse_chat_request(body, CATALOG, Options(**settings)).payload


ACCOUNT = account_tag("acct-1")  # the thinking signatures chatmock minted for this account


def from_anthropic(body: JSON) -> JSON:
    headers = {b"anthropic-version": b"2023-06-01", b"x-api-key": b"k"}
    return parse_messages_request(body, headers, CATALOG, SETTINGS, ACCOUNT).payload


def from_responses(body: JSON) -> JSON:
    return parse_responses_request(body, CATALOG, SETTINGS).payload


def tool_conversation() -> list[JSON]:
    call = {"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
    return [{"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": "Let me check.", "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            {"role": "user", "content": [{"type": "text", "text": "And this?"},
                                         {"type": "image_url", "image_url": {"url": PNG}}]}]


@pytest.mark.parametrize("flavor", ["xai", "openrouter", "ollama"])
def test_a_chat_tool_round_trip_with_an_image(flavor: str) -> None:
    payload = from_chat({"model": "gpt-5.4", "messages": tool_conversation(),
                         "tools": [WEATHER]})
    body = mapped(payload, flavor)
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "tool",
                                                     "user"]
    system, question, turn, result, last = body["messages"]
    assert system == {"role": "system", "content": "Be brief."}
    assert question == {"role": "user", "content": "Weather in Paris?"}
    assert turn["content"] == "Let me check."
    assert turn["tool_calls"] == [{"id": "call_1", "type": "function", "function": {
        "name": "get_weather", "arguments": '{"city":"Paris"}'}}]
    assert result == {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
    assert last["content"] == [{"type": "text", "text": "And this?"},
                               {"type": "image_url", "image_url": {"url": PNG}}]
    assert body["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather by city",
        "parameters": WEATHER["function"]["parameters"]}}]
    assert body["tool_choice"] == "auto"
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


def test_reasoning_parameters_per_provider() -> None:
    payload = from_chat({"model": "gpt-5.4", "messages": [{"role": "user", "content": "hi"}],
                         "reasoning_effort": "high"})
    assert mapped(payload, "openrouter")["reasoning"] == {"effort": "high"}
    assert mapped(payload, "xai")["reasoning_effort"] == "high"
    assert "reasoning_effort" not in mapped(payload, "xai", model="grok-4")
    assert mapped(payload, "xai", model="grok-3-mini")["reasoning_effort"] == "high"
    assert mapped(payload, "vllm")["reasoning_effort"] == "high"
    medium = from_chat({"model": "gpt-5.4", "messages": [{"role": "user", "content": "hi"}]},
                       reasoning_summary="none")
    assert mapped(medium, "xai", model="grok-3-mini")["reasoning_effort"] == "low"
    assert mapped(medium, "openrouter")["reasoning"] == {"effort": "medium", "exclude": True}
    assert "reasoning_effort" not in mapped(medium, "vllm", efforts=())
    custom = chat_request(medium, model="grok-9", flavor="xai", efforts=("high", "bogus"))
    assert custom["reasoning_effort"] == "high"


@pytest.mark.parametrize("effort, allowed, expected", [
    ("medium", ("low", "high"), "low"), ("xhigh", ("low", "high"), "high"),
    ("ultra", ("none", "minimal", "low", "medium", "high", "xhigh"), "xhigh"),
    ("none", ("low", "medium", "high"), "low"), ("minimal", ("none", "low"), "none"),
])
def test_nearest_effort(effort: str, allowed: tuple[str, ...], expected: str) -> None:
    assert nearest(effort, allowed) == expected


def test_xai_reasoning_models_lose_penalties_and_stop() -> None:
    payload = from_chat({"model": "gpt-5.4", "messages": [{"role": "user", "content": "hi"}]})
    sampling = {"temperature": 0.2, "presence_penalty": 1.0, "stop": ["x"], "max_tokens": 50,
                "top_k": 3}
    body = mapped(payload, "xai", sampling=sampling)
    assert (body["temperature"], body["max_tokens"]) == (0.2, 50)
    assert not {"presence_penalty", "stop", "top_k"} & set(body)
    plain = mapped(payload, "xai", model="grok-4.20-0309-non-reasoning", sampling=sampling)
    assert plain["stop"] == ["x"] and plain["presence_penalty"] == 1.0


def test_structured_output_becomes_response_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    payload = from_chat({"model": "gpt-5.4", "messages": [{"role": "user", "content": "x"}],
                         "response_format": {"type": "json_schema", "json_schema": {
                             "name": "thing", "schema": schema, "strict": True}}})
    assert mapped(payload, "vllm")["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "thing", "schema": schema,
                                               "strict": True}}
    plain = from_chat({"model": "gpt-5.4", "messages": [{"role": "user", "content": "x"}],
                       "response_format": {"type": "json_object"}})
    assert mapped(plain, "vllm")["response_format"] == {"type": "json_object"}


def test_tool_choice_and_parallel_calls() -> None:
    payload = from_chat({"model": "gpt-5.4", "messages": [{"role": "user", "content": "x"}],
                         "tools": [WEATHER], "parallel_tool_calls": False,
                         "tool_choice": {"type": "function",
                                         "function": {"name": "get_weather"}}})
    body = mapped(payload, "xai")
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["parallel_tool_calls"] is False


def anthropic_tool_turns() -> JSON:
    return {"model": "claude-sonnet-4-5", "max_tokens": 100, "system": "Be kind.",
            "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
            "messages": [
                {"role": "user", "content": "Weather?"},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "I should look it up.",
                     "signature": mint(pack_reasoning_details([{"type": "reasoning.encrypted",
                                                                "data": "gAAA", "index": 0}]),
                                       ACCOUNT)},
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                     "input": {"city": "Oslo"}}]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "rain"},
                    {"type": "text", "text": "Thanks"}]}]}


def test_an_anthropic_tool_turn_keeps_openrouters_reasoning_details() -> None:
    payload = from_anthropic(anthropic_tool_turns())
    body = mapped(payload, "openrouter", model="moonshotai/kimi-k2-thinking")
    system, question, turn, result, thanks = body["messages"]
    assert system == {"role": "system", "content": "Be kind."}
    assert question == {"role": "user", "content": "Weather?"}
    assert turn["reasoning_details"] == [{"type": "reasoning.encrypted", "data": "gAAA",
                                          "index": 0}]
    assert turn["content"] == "Checking." and turn["tool_calls"][0]["id"] == "toolu_1"
    assert json.loads(turn["tool_calls"][0]["function"]["arguments"]) == {"city": "Oslo"}
    assert result == {"role": "tool", "tool_call_id": "toolu_1", "content": "rain"}
    assert thanks == {"role": "user", "content": "Thanks"}


def test_other_providers_get_no_reasoning_back() -> None:
    body = mapped(from_anthropic(anthropic_tool_turns()), "xai")
    assert not any("reasoning_details" in m for m in body["messages"])


def test_reasoning_summaries_become_text_details_for_openrouter() -> None:
    payload = from_responses({"model": "gpt-5.4", "input": [
        {"type": "message", "role": "user", "content": "hi"},
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "thinking"}],
         "encrypted_content": "gAAAAB-codex-blob"},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "done"}],
        "tools": [{"type": "function", "name": "f", "parameters": {}}]})
    body = mapped(payload, "openrouter", model="moonshotai/kimi-k2-thinking")
    assert body["messages"][1]["reasoning_details"] == [
        {"type": "reasoning.text", "text": "thinking", "format": "unknown", "index": 0}]
    assert body["messages"][1]["content"] is None


def test_responses_input_string_web_search_and_output_parts() -> None:
    payload = from_responses({
        "model": "gpt-5.4", "instructions": "Sys", "tools": [{"type": "web_search"}],
        "input": [{"role": "developer", "content": "Dev note"},
                  {"type": "message", "role": "user", "content": [
                      {"type": "input_text", "text": "look"},
                      {"type": "input_image", "image_url": PNG, "detail": "low"}]},
                  {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                  {"type": "function_call_output", "call_id": "c1", "output": [
                      {"type": "input_text", "text": "a"}, {"type": "input_text", "text": "b"}]},
                  {"type": "web_search_call", "id": "ws_1", "status": "completed"}]})
    body = chat_request(payload, model="openai/gpt-5", flavor="openrouter")
    assert body["plugins"] == [{"id": "web"}] and "tools" not in body
    assert [m["role"] for m in body["messages"]] == ["system", "system", "user", "assistant",
                                                     "tool"]
    assert body["messages"][2]["content"][1] == {"type": "image_url", "image_url": {
        "url": PNG, "detail": "low"}}
    assert body["messages"][4]["content"] == "a\nb"
    with pytest.raises(ClientError, match="xai"):
        chat_request(payload, model="grok-4.3", flavor="xai")


def test_text_after_tool_calls_starts_a_new_assistant_message() -> None:
    payload = {"input": [
        {"type": "message", "role": "user", "content": "x"},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "message", "role": "assistant",
         "content": [{"type": "output_text", "text": "later"}]}]}
    messages = chat_request(payload, model="m", flavor="openai")["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", "x"), ("assistant", None), ("assistant", "later")]


def test_ollama_images_and_tools() -> None:
    parsed = parse_chat({"model": "llava", "tools": [WEATHER], "messages": [
        {"role": "user", "content": "what is it?", "images": [PNG.split(",", 1)[1]]}]},
        CATALOG, SETTINGS)
    assert isinstance(parsed, OllamaRequest)
    body = mapped(parsed.chat.payload, "ollama")
    content = body["messages"][0]["content"]
    assert content[0] == {"type": "text", "text": "what is it?"}
    assert content[1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert body["tools"][0]["function"]["name"] == "get_weather"


@pytest.mark.parametrize("payload, needle", [
    ({"input": [{"type": "message", "role": "user",
                 "content": [{"type": "input_file", "file_id": "f"}]}]}, "input_file"),
    ({"input": [{"type": "custom_tool_call", "call_id": "c", "name": "n", "input": "x"}]},
     "custom_tool_call"),
    ({"input": [{"type": "item_reference", "id": "x"}]}, "item_reference"),
    ({"input": [{"type": "function_call_output", "output": "x"}]}, "call_id"),
    ({"input": [{"type": "function_call", "call_id": "c"}]}, "call_id and name"),
    ({"input": [], "tools": [{"type": "custom", "name": "x"}]}, "custom"),
    ({"input": [], "tools": [{"type": "web_search"}]}, "web_search"),
    ({"input": [], "tools": [{"type": "function", "name": "f"}],
      "tool_choice": {"type": "allowed_tools"}}, "tool_choice"),
    ({"input": [{"type": "function_call_output", "call_id": "c",
                 "output": [{"type": "input_image", "image_url": PNG}]}]}, "text tool results"),
    ({"input": [{"type": "message", "role": "assistant",
                 "content": [{"type": "input_image", "image_url": PNG}]}]}, "assistant"),
    ({"input": ["text"]}, "must be an object"),
])
def test_what_cannot_be_expressed_is_a_400(payload: JSON, needle: str) -> None:
    with pytest.raises(ClientError, match=needle):
        chat_request(payload, model="m", flavor="xai")


def test_openrouter_takes_pdf_files() -> None:
    pdf = {"type": "input_file", "filename": "a.pdf",
           "file_data": "data:application/pdf;base64,JVBER"}
    payload = {"input": [{"type": "message", "role": "user", "content": [pdf]}]}
    body = chat_request(payload, model="openai/gpt-5", flavor="openrouter")
    assert body["messages"][0]["content"] == [{"type": "file", "file": {
        "filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBER"}}]


def test_reasoning_details_pack_and_unpack() -> None:
    details = [{"type": "reasoning.text", "text": "é \"q\"", "index": 0}]
    packed = pack_reasoning_details(details)
    assert unpack_reasoning_details(packed) == details
    assert unpack_reasoning_details("gAAAA") is None
    assert unpack_reasoning_details(packed[:-3] + "!!!") is None
    assert unpack_reasoning_details(None) is None
