"""chatmock.dialects.chat: Chat Completions request → Codex Responses payload."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chatmock.catalog import Catalog
from chatmock.dialects.chat import ChatRequest, parse_chat_request
from chatmock.dialects.common import MAX_RESPONSES_TOOLS_BYTES, REASONING_INCLUDE
from chatmock.dialects.options import Options
from chatmock.errors import ClientError

from .helpers import JSON, accepted_upstream, refused

CATALOG = Catalog()
PNG = "iVBORw0KGgo="
WEATHER_TOOL: JSON = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather by city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}


def chat(body: Any, **settings: Any) -> ChatRequest:
    return parse_chat_request(body, CATALOG, Options(**settings))


def payload(body: Any, **settings: Any) -> JSON:
    return chat(body, **settings).payload


def request(*messages: JSON, **fields: Any) -> JSON:
    return {"model": "gpt-5.4", "messages": list(messages) or [user("hi")], **fields}


def user(content: Any) -> JSON:
    return {"role": "user", "content": content}


def msg(role: str, text: str) -> JSON:
    kind = "output_text" if role == "assistant" else "input_text"
    return {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}


def rejected(body: Any, *fragments: str, code: str | None = None, param: str | None = None,
             **settings: Any) -> ClientError:
    return refused(lambda: chat(body, **settings), *fragments, code=code, param=param)



# -- the payload's fixed shape -------------------------------------------------------------


def test_minimal_request() -> None:
    parsed = chat(request())
    assert parsed.payload == {
        "model": "gpt-5.4", "input": [msg("user", "hi")], "tools": [], "tool_choice": "auto",
        "parallel_tool_calls": True, "store": False, "stream": True,
        "include": [REASONING_INCLUDE], "reasoning": {"effort": "medium", "summary": "auto"}}
    assert parsed.model == "gpt-5.4"
    assert parsed.stream is False and parsed.include_usage is False
    assert parsed.client_tools == [] and parsed.extra.tools == []
    accepted_upstream(parsed.payload)


def test_sampling_fields_are_dropped() -> None:
    sampled = payload(request(temperature=0.2, top_p=0.9, max_tokens=5, max_completion_tokens=5,
                              stop=["x"], seed=1, logprobs=True, user="u", metadata={"a": "b"},
                              store=True, n=1, frequency_penalty=0.1))
    assert sampled == payload(request())


def test_model_echo_and_resolution() -> None:
    parsed = chat(request(model="GPT5.4-HIGH"))
    assert parsed.model == "GPT5.4-HIGH"
    assert parsed.payload["model"] == "gpt-5.4"
    assert parsed.payload["reasoning"]["effort"] == "high"
    no_model = {"messages": [user("hi")]}
    assert chat(no_model).model == "gpt-5.4"
    assert chat(request(model="mystery-model")).payload["model"] == "mystery-model"
    assert chat(request(model="gpt-5.4"), debug_model="gpt-5.5").payload["model"] == "gpt-5.5"


def test_stream_flags() -> None:
    parsed = chat(request(stream=True, stream_options={"include_usage": True}))
    assert parsed.stream is True and parsed.include_usage is True
    for options in ({"include_usage": False}, {}, {"include_usage": None}, None):
        assert chat(request(stream=True, stream_options=options)).include_usage is False
    assert payload(request(stream=False))["stream"] is True  # upstream is always streamed
    assert chat(request(stream=None)).stream is False


@pytest.mark.parametrize(("fields", "param", "got"), [
    ({"stream": "false"}, "stream", "a string"),
    ({"stream": 1}, "stream", "an integer"),
    ({"stream_options": "yes"}, "stream_options", "a string"),
    ({"stream_options": {"include_usage": "yes"}}, "stream_options.include_usage", "a string"),
    ({"parallel_tool_calls": "no"}, "parallel_tool_calls", "a string"),
    ({"n": True}, "n", "a boolean"),
    ({"n": "2"}, "n", "a string"),
    ({"n": 1.5}, "n", "a number"),
    ({"response_format": "json"}, "response_format", "a string"),
    ({"response_format": ["json_object"]}, "response_format", "an array"),
    ({"response_format": {"type": "json_schema", "json_schema": "x"}},
     "response_format.json_schema", "a string"),
    ({"reasoning": "high"}, "reasoning", "a string"),
    ({"reasoning": {"effort": 5}}, "reasoning.effort", "an integer"),
    ({"reasoning_effort": ["high"]}, "reasoning_effort", "an array"),
    ({"verbosity": 1}, "verbosity", "an integer"),
    ({"fast_mode": 1}, "fast_mode", "an integer"),
    ({"service_tier": {}}, "service_tier", "an object"),
    ({"model": 5}, "model", "an integer"),
    ({"messages": "hi"}, "messages", "a string"),
    ({"tools": {"type": "function"}}, "tools", "an object"),
])
def test_wrong_types_are_openai_invalid_type_errors(fields: JSON, param: str, got: str) -> None:
    error = rejected(request(**fields), f"Invalid type for '{param}'", f"but got {got} instead",
                     code="invalid_type", param=param)
    assert error.error_type == "invalid_request_error"


def test_parallel_tool_calls() -> None:
    assert payload(request(parallel_tool_calls=False))["parallel_tool_calls"] is False
    assert payload(request(parallel_tool_calls=None))["parallel_tool_calls"] is True


# -- messages ------------------------------------------------------------------------------


def test_leading_system_messages_become_instructions() -> None:
    body = request({"role": "system", "content": "Be terse."},
                   {"role": "system", "content": [{"type": "text", "text": "No emoji."}]},
                   user("hi"), {"role": "system", "content": "Later rule."},
                   {"role": "developer", "content": "Dev note."})
    result = payload(body)
    assert result["instructions"] == "Be terse.\n\nNo emoji."
    assert result["input"] == [msg("user", "hi"), msg("developer", "Later rule."),
                               msg("developer", "Dev note.")]
    assert list(result)[:2] == ["model", "instructions"]
    accepted_upstream(result)


def test_system_after_developer_is_a_developer_message() -> None:
    result = payload(request({"role": "developer", "content": "D"},
                             {"role": "system", "content": "S"}, user("u")))
    assert "instructions" not in result
    assert result["input"] == [msg("developer", "D"), msg("developer", "S"), msg("user", "u")]


def test_empty_system_message_gives_no_instructions() -> None:
    result = payload(request({"role": "system", "content": ""}, user("u")))
    assert "instructions" not in result


def test_leading_system_may_hold_only_text() -> None:
    image = {"type": "image_url", "image_url": {"url": "https://x/y.png"}}
    rejected(request({"role": "system", "content": [image]}, user("u")), "messages[0].content")


def test_user_parts() -> None:
    content = [{"type": "text", "text": "Weather?"}, {"type": "text", "text": ""},
               {"type": "input_text", "text": "More"},
               {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}",
                                                   "detail": "high"}},
               {"type": "image_url", "image_url": "https://example.com/cat.png"},
               {"type": "input_image", "image_url": "https://example.com/dog.png"}]
    result = payload(request(user(content)))
    assert result["input"] == [{"type": "message", "role": "user", "content": [
        {"type": "input_text", "text": "Weather?"},
        {"type": "input_text", "text": "More"},
        {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"},
        {"type": "input_image", "image_url": "https://example.com/cat.png"},
        {"type": "input_image", "image_url": "https://example.com/dog.png"}]}]
    accepted_upstream(result)


@pytest.mark.parametrize(("url", "expected"), [
    ("data:image/png;base64,-_-__gE", "data:image/png;base64,+/+//gE="),  # base64url, unpadded
    ("data:image/png;base64,-_-__gE=", "data:image/png;base64,+/+//gE="),
    ("data:image/png;base64,%2B%2F%2B%2F%2FgE%3D", "data:image/png;base64,+/+//gE="),
    ("data:image/png;base64,+/+/\r\n/gE=", "data:image/png;base64,+/+//gE="),
    ("data:image/png;base64,+/+//gE=", "data:image/png;base64,+/+//gE="),
    ("data:image/png;base64,!!!!", "data:image/png;base64,!!!!"),  # undecodable: kept
    ("data:image/png,-_-__gE", "data:image/png,-_-__gE"),  # not base64: kept
    ("https://example.com/a-b_c.png", "https://example.com/a-b_c.png"),
])
def test_image_urls_are_normalised(url: str, expected: str) -> None:
    part = {"type": "image_url", "image_url": {"url": url}}
    result = payload(request(user([part])))
    assert result["input"][0]["content"] == [{"type": "input_image", "image_url": expected}]


def test_file_parts() -> None:
    part = {"type": "file", "file": {"file_data": "data:application/pdf;base64,AAAA",
                                     "filename": "a.pdf", "other": 1}}
    result = payload(request(user([part])))
    assert result["input"][0]["content"] == [{
        "type": "input_file", "file_data": "data:application/pdf;base64,AAAA",
        "filename": "a.pdf"}]
    rejected(request(user([{"type": "file", "file": {}}])), "messages[0].content[0].file")


def test_empty_user_messages_are_skipped() -> None:
    result = payload(request(user(""), user(None), user([{"type": "text", "text": ""}]),
                             user("hi")))
    assert result["input"] == [msg("user", "hi")]


def test_assistant_text_then_tool_calls_then_outputs() -> None:
    body = request(
        {"role": "system", "content": "Be terse."},
        user([{"type": "text", "text": "Weather?"},
              {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]),
        {"role": "assistant", "content": "Let me look.", "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
            {"id": "call_2", "function": {"name": "get_time", "arguments": {"tz": "CET"}}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "22C"},
        {"role": "tool", "tool_call_id": "call_2",
         "content": [{"type": "text", "text": "12:00"}, {"type": "text", "text": "CET"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "It is 22C."},
                                          {"type": "refusal", "refusal": "No more."}]},
        user("thanks"),
        tools=[WEATHER_TOOL])
    result = payload(body)
    assert result["instructions"] == "Be terse."
    assert result["input"] == [
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "Weather?"},
            {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"}]},
        msg("assistant", "Let me look."),
        {"type": "function_call", "call_id": "call_1", "name": "get_weather",
         "arguments": '{"city":"Paris"}'},
        {"type": "function_call", "call_id": "call_2", "name": "get_time",
         "arguments": '{"tz": "CET"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "22C"},
        {"type": "function_call_output", "call_id": "call_2", "output": "12:00\nCET"},
        {"type": "message", "role": "assistant", "content": [
            {"type": "output_text", "text": "It is 22C."},
            {"type": "output_text", "text": "No more."}]},
        msg("user", "thanks")]
    accepted_upstream(result)


def test_assistant_with_only_tool_calls_and_call_id_field() -> None:
    body = request(user("u"), {"role": "assistant", "content": None, "tool_calls": [
        {"call_id": "c9", "type": "function", "function": {"name": "f"}}]},
                   {"role": "tool", "tool_call_id": "c9", "content": {"ok": True}})
    assert payload(body)["input"][1:] == [
        {"type": "function_call", "call_id": "c9", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c9", "output": '{"ok": true}'}]


@pytest.mark.parametrize(("message", "param"), [
    ({"role": "tool", "content": "22C"}, "messages[1].tool_call_id"),
    ({"role": "tool", "tool_call_id": "", "content": "22C"}, "messages[1].tool_call_id"),
    ({"role": "tool", "tool_call_id": 5, "content": "22C"}, "messages[1].tool_call_id"),
    ({"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f"}}]},
     "messages[1].tool_calls[0].id"),
    ({"role": "assistant", "tool_calls": [{"id": "c", "function": {"arguments": "{}"}}]},
     "messages[1].tool_calls[0].function.name"),
    ({"role": "assistant", "tool_calls": [{"id": "c", "type": "mcp", "mcp": {"name": "f"}}]},
     "messages[1].tool_calls[0].type"),
    ({"role": "assistant", "tool_calls": [{"id": "c", "type": "custom", "custom": {}}]},
     "messages[1].tool_calls[0].custom.name"),
    ({"role": "assistant", "tool_calls": {"id": "c"}}, "messages[1].tool_calls"),
    ({"role": "function", "name": "f", "content": "x"}, "messages[1].role"),
    ({"role": "critic", "content": "x"}, "messages[1].role"),
    ({"content": "x"}, "messages[1].role"),
    (user([{"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]),
     "messages[1].content[0].type"),
    (user([{"type": "text", "text": "a"}, {"type": "video"}]), "messages[1].content[1].type"),
    (user([{"type": "text", "text": 5}]), "messages[1].content[0].text"),
    (user([{"type": "text"}]), "messages[1].content[0].text"),
    (user([{"text": "x"}]), "messages[1].content[0].type"),
    (user([{"type": "image_url", "image_url": {}}]), "messages[1].content[0].image_url.url"),
    (user([{"type": "image_url", "image_url": 5}]), "messages[1].content[0].image_url"),
    (user([{"type": "file", "file": {"file_id": 5}}]), "messages[1].content[0].file.file_id"),
    ({"role": "system", "content": [{"type": "text", "text": 5}]}, "messages[1].content[0].text"),
    ({"role": "assistant", "content": [{"type": "refusal", "refusal": 1}]},
     "messages[1].content[0].refusal"),
    ({"role": "assistant", "tool_calls": [{"id": "c", "function": "f"}]},
     "messages[1].tool_calls[0].function"),
    ({"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f",
                                                                  "arguments": 5}}]},
     "messages[1].tool_calls[0].function.arguments"),
    ({"role": "tool", "tool_call_id": "c", "content": [{"type": "text", "text": []}]},
     "messages[1].content[0].text"),
    (user(["bare string part"]), "messages[1].content[0]"),
    (user({"type": "text", "text": "x"}), "messages[1].content"),
    (user(5), "messages[1].content"),
    ("not an object", "messages[1]"),
])
def test_bad_messages_name_the_field(message: Any, param: str) -> None:
    rejected(request(user("first"), message), param=param)


@pytest.mark.parametrize("body", [[], "text", None, 5, [{"role": "user"}]])
def test_body_must_be_an_object(body: Any) -> None:
    rejected(body, "JSON object")


@pytest.mark.parametrize("body", [
    {"model": "gpt-5.4"},
    {"model": "gpt-5.4", "messages": []},
    {"model": "gpt-5.4", "messages": None},
    {"model": "gpt-5.4", "messages": "hi"},
    {"model": "gpt-5.4", "messages": {"role": "user", "content": "hi"}},
    {"model": "gpt-5.4", "prompt": ["not", "a", "string"]},
])
def test_messages_missing_or_empty(body: JSON) -> None:
    rejected(body, "messages", param="messages")


@pytest.mark.parametrize("field", ["prompt", "input"])
def test_string_prompt_or_input_instead_of_messages(field: str) -> None:
    assert payload({"model": "gpt-5.4", field: "hello"})["input"] == [msg("user", "hello")]


@pytest.mark.parametrize("n", [2, 5])
def test_n_other_than_one_is_refused(n: Any) -> None:
    rejected(request(n=n), "n > 1", code="unsupported_parameter", param="n")


def test_n_below_one_is_refused() -> None:
    rejected(request(n=0), "Expected a value >= 1, but got 0 instead",
             code="integer_below_min_value", param="n")


# -- tools and tool_choice -------------------------------------------------------------------


def test_chat_form_tools() -> None:
    tools = [WEATHER_TOOL,
             {"type": "function", "function": {"name": "bare"}},
             {"type": "function", "function": {"name": "strict", "strict": True}},
             {"function": {"name": "untyped"}}]
    parsed = chat(request(tools=tools))
    assert parsed.payload["tools"] == [
        {"type": "function", "name": "get_weather", "description": "Weather by city",
         "strict": False, "parameters": WEATHER_TOOL["function"]["parameters"]},
        {"type": "function", "name": "bare", "description": "", "strict": False,
         "parameters": {"type": "object", "properties": {}}},
        {"type": "function", "name": "strict", "description": "", "strict": True,
         "parameters": {"type": "object", "properties": {}}},
        {"type": "function", "name": "untyped", "description": "", "strict": False,
         "parameters": {"type": "object", "properties": {}}}]
    assert parsed.client_tools == parsed.payload["tools"]
    accepted_upstream(parsed.payload)


def test_responses_form_tools() -> None:
    tools = [{"type": "function", "name": "get_weather", "description": "d",
              "parameters": {"type": "object", "properties": {}}},
             {"type": "web_search"}, {"type": "web_search_preview", "search_context_size": "low"}]
    assert payload(request(tools=tools))["tools"] == [
        {"type": "function", "name": "get_weather", "description": "d", "strict": False,
         "parameters": {"type": "object", "properties": {}}},
        {"type": "web_search"}, {"type": "web_search_preview", "search_context_size": "low"}]


@pytest.mark.parametrize(("tools", "param"), [
    ({"type": "function"}, "tools"),
    ([{"type": "code_interpreter"}], "tools[0].type"),
    ([{"type": 5}], "tools[0].type"),
    ([WEATHER_TOOL, {"type": "function", "function": {"description": "no name"}}],
     "tools[1].function.name"),
    ([{"type": "function", "name": ""}], "tools[0].name"),
    ([{"type": "function", "function": "get_weather"}], "tools[0].function"),
    ([{"type": "function", "function": {"name": "f", "parameters": "not an object"}}],
     "tools[0].function.parameters"),
    ([{"type": "function", "function": {"name": "f", "strict": "yes"}}],
     "tools[0].function.strict"),
    ([{"type": "function", "name": "f", "description": 5}], "tools[0].description"),
    (["get_weather"], "tools[0]"),
])
def test_bad_tools(tools: Any, param: str) -> None:
    rejected(request(tools=tools), param=param)


@pytest.mark.parametrize(("choice", "expected"), [
    (None, "auto"),
    ("auto", "auto"),
    ("none", "none"),
    ("required", "required"),
    ({"type": "function", "function": {"name": "get_weather"}},
     {"type": "function", "name": "get_weather"}),
    ({"type": "function", "name": "get_weather"}, {"type": "function", "name": "get_weather"}),
    ({"type": "required"}, "required"),
    ({"type": "none"}, "none"),
])
def test_tool_choice(choice: Any, expected: Any) -> None:
    result = payload(request(tools=[WEATHER_TOOL], tool_choice=choice))
    assert result["tool_choice"] == expected
    accepted_upstream(result)


@pytest.mark.parametrize(("choice", "param"), [
    ("any", "tool_choice"), ({"type": "function"}, "tool_choice.name"),
    ({"type": "function", "function": {}}, "tool_choice.function.name"),
    ({"type": "function", "function": "f"}, "tool_choice.function"),
    ({"type": "tool"}, "tool_choice.type"), ({}, "tool_choice.type"),
    (5, "tool_choice"), ([], "tool_choice")])
def test_bad_tool_choice(choice: Any, param: str) -> None:
    rejected(request(tool_choice=choice), param=param)


# -- reasoning -------------------------------------------------------------------------------


def reasoning(body: JSON, **settings: Any) -> JSON:
    result = payload(body, **settings)["reasoning"]
    assert isinstance(result, dict)
    return result


def test_reasoning_object() -> None:
    assert reasoning(request(reasoning={"effort": "high", "summary": "detailed"})) == {
        "effort": "high", "summary": "detailed"}
    assert reasoning(request(reasoning={"effort": "HIGH", "summary": "Concise"})) == {
        "effort": "high", "summary": "concise"}


def test_reasoning_effort_field() -> None:
    assert reasoning(request(reasoning_effort="low"))["effort"] == "low"
    # The object wins over the field.
    assert reasoning(request(reasoning={"effort": "high"}, reasoning_effort="low")) == {
        "effort": "high", "summary": "auto"}


@pytest.mark.parametrize(("model", "effort"), [
    ("gpt-5.4-high", "high"), ("gpt-5.4_low", "low"), ("gpt-5.4:low", "low"),
    ("gpt-5.4:xhigh", "xhigh"), ("gpt-5.4-none", "none"), ("gpt5.4-high", "high"),
])
def test_effort_from_the_model_suffix(model: str, effort: str) -> None:
    result = payload(request(model=model))
    assert result["model"] == "gpt-5.4"
    assert result["reasoning"]["effort"] == effort


def test_body_effort_wins_over_suffix() -> None:
    assert reasoning(request(model="gpt-5.4-high", reasoning_effort="low"))["effort"] == "low"
    assert reasoning(request(model="gpt-5.4-high",
                             reasoning={"effort": "low"}))["effort"] == "low"


def test_invalid_effort_falls_back() -> None:
    # Unknown words and efforts the model does not allow fall through to the suffix...
    assert reasoning(request(model="gpt-5.4-high", reasoning_effort="turbo"))["effort"] == "high"
    # ...then to the server default...
    assert reasoning(request(reasoning_effort="minimal"), reasoning_effort="low")["effort"] == "low"
    assert reasoning(request(reasoning={"effort": "?"}),
                     reasoning_effort="high")["effort"] == "high"
    # ...then to medium when the default is not allowed either.
    assert reasoning(request(reasoning_effort="ultra"),
                     reasoning_effort="minimal")["effort"] == "medium"
    assert reasoning(request(model="gpt-5.6-sol-max"))["effort"] == "max"
    assert reasoning(request(model="gpt-5.4-mini", reasoning_effort="none"))["effort"] == "medium"


def test_summary() -> None:
    assert reasoning(request(reasoning={"summary": "none"})) == {"effort": "medium"}
    assert reasoning(request(), reasoning_summary="none") == {"effort": "medium"}
    assert reasoning(request(reasoning={"summary": "auto"}), reasoning_summary="none") == {
        "effort": "medium", "summary": "auto"}
    assert reasoning(request(reasoning={"summary": "bogus"}),
                     reasoning_summary="detailed")["summary"] == "detailed"
    assert reasoning(request(reasoning=None)) == {"effort": "medium", "summary": "auto"}


def test_reasoning_payload_is_accepted_upstream() -> None:
    accepted_upstream(payload(request(model="gpt-5.4-xhigh", reasoning={"summary": "none"})))


# -- response_format and verbosity --------------------------------------------------------------


def test_json_schema_response_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"],
              "additionalProperties": False}
    result = payload(request(response_format={"type": "json_schema", "json_schema": {
        "name": "thing", "schema": schema, "strict": True, "description": "A thing"}}))
    assert result["text"] == {"format": {"type": "json_schema", "name": "thing",
                                         "schema": schema, "strict": True,
                                         "description": "A thing"}}
    minimal = payload(request(response_format={"type": "json_schema", "json_schema": {
        "schema": schema}}))
    assert minimal["text"] == {"format": {"type": "json_schema", "name": "response",
                                          "schema": schema}}


def test_json_object_and_text_response_format() -> None:
    assert payload(request(response_format={"type": "json_object"}))["text"] == {
        "format": {"type": "json_object"}}
    assert "text" not in payload(request(response_format={"type": "text"}))
    assert "text" not in payload(request(response_format=None))


@pytest.mark.parametrize(("response_format", "param", "code"), [
    ({"type": "yaml"}, "response_format.type", "invalid_value"),
    ({"type": "json_schema"}, "response_format.json_schema", "missing_required_parameter"),
    ({"type": "json_schema", "json_schema": "x"}, "response_format.json_schema", "invalid_type"),
    ({"type": "json_schema", "json_schema": {"schema": []}},
     "response_format.json_schema.schema", "invalid_type"),
    ({"type": "json_schema", "json_schema": {"strict": "yes"}},
     "response_format.json_schema.strict", "invalid_type"),
    ("json", "response_format", "invalid_type")])
def test_bad_response_format(response_format: Any, param: str, code: str) -> None:
    rejected(request(response_format=response_format), code=code, param=param)


def test_verbosity() -> None:
    assert payload(request(verbosity="low"))["text"] == {"verbosity": "low"}
    assert payload(request(verbosity="high", response_format={"type": "json_object"}))[
        "text"] == {"format": {"type": "json_object"}, "verbosity": "high"}


# -- fast mode -------------------------------------------------------------------------------------


def tier(body: JSON, **settings: Any) -> Any:
    return payload(body, **settings).get("service_tier")


@pytest.mark.parametrize("fast", [True, "true", "yes", "1", "on"])
def test_fast_mode_asks_for_priority(fast: Any) -> None:
    assert tier(request(fast_mode=fast)) == "priority"


def test_fast_mode_sources() -> None:
    assert tier(request()) is None
    assert tier(request(), fast_mode=True) == "priority"
    assert tier(request(fast_mode=False), fast_mode=True) is None
    assert tier(request(fast_mode="off"), fast_mode=True) is None
    assert tier(request(service_tier="priority")) == "priority"
    assert tier(request(service_tier=" Flex ")) == "flex"
    assert tier(request(service_tier="flex", fast_mode=True)) == "priority"
    assert tier(request(service_tier="  ")) is None


def test_priority_on_an_unsupported_model() -> None:
    mini = "gpt-5.4-mini"
    rejected(request(model=mini, fast_mode=True), "Fast mode", mini)
    rejected(request(model=mini, service_tier="priority"), "Fast mode")
    # From the server setting it is quietly dropped instead.
    assert tier(request(model=mini), fast_mode=True) is None
    assert tier(request(model=mini, service_tier="flex")) == "flex"


def test_fast_payload_is_accepted_upstream() -> None:
    accepted_upstream(payload(request(fast_mode=True)))


# -- responses_tools and web search -------------------------------------------------------------


def test_responses_tools_are_added() -> None:
    parsed = chat(request(tools=[WEATHER_TOOL], responses_tools=[
        {"type": "web_search", "user_location": {"type": "approximate"}}, "skipped",
        {"type": "web_search_preview"}], responses_tool_choice="auto"))
    extra = [{"type": "web_search", "user_location": {"type": "approximate"}},
             {"type": "web_search_preview"}]
    assert parsed.extra.tools == extra
    assert parsed.extra.tool_choice == "auto"
    assert parsed.payload["tools"][1:] == extra
    assert [t["name"] for t in parsed.client_tools] == ["get_weather"]


def test_responses_tool_choice_replaces_tool_choice() -> None:
    result = payload(request(tools=[WEATHER_TOOL], tool_choice="required",
                             responses_tools=[{"type": "web_search"}],
                             responses_tool_choice="none"))
    assert result["tool_choice"] == "none"
    ignored = payload(request(tool_choice="required", responses_tool_choice="required"))
    assert ignored["tool_choice"] == "required"


@pytest.mark.parametrize("tools", [[{"type": "function", "name": "f"}], [{"type": None}],
                                   [{"no": "type"}], {"type": "web_search"},
                                   [{"type": ["web_search"]}], [{"type": {}}]])
def test_responses_tools_unsupported(tools: Any) -> None:
    rejected(request(responses_tools=tools), "responses_tools",
             code="RESPONSES_TOOL_UNSUPPORTED")


def test_responses_tools_too_large() -> None:
    big = [{"type": "web_search", "filters": {"allowed_domains": ["d" * 100] * 400}}]
    assert len(json.dumps(big)) > MAX_RESPONSES_TOOLS_BYTES
    rejected(request(responses_tools=big), "too large", code="RESPONSES_TOOLS_TOO_LARGE")
    fits = [{"type": "web_search", "x": "y" * 1000}]
    assert chat(request(responses_tools=fits)).extra.tools == fits


def test_enable_web_search_setting() -> None:
    on = {"enable_web_search": True}
    assert chat(request(), **on).extra.tools == [{"type": "web_search"}]
    # Added even next to the client's function tools (as ChatMock does)...
    parsed = chat(request(tools=[WEATHER_TOOL]), **on)
    assert parsed.payload["tools"][-1] == {"type": "web_search"}
    assert [t["name"] for t in parsed.client_tools] == ["get_weather"]
    # ...but not when tools are turned off, nor twice when the client asked for its own.
    assert chat(request(tool_choice="none"), **on).extra.tools == []
    assert chat(request(responses_tool_choice="none"), **on).extra.tools == []
    own = [{"type": "web_search_preview"}]
    assert chat(request(responses_tools=own), **on).extra.tools == own
    assert chat(request()).extra.tools == []
    accepted_upstream(payload(request(), **on))


def test_the_fallback_payload_keeps_only_the_clients_tools() -> None:
    """What upstream/fallback.py sends when the backend refuses chatmock's added tools."""
    on = {"enable_web_search": True}
    assert chat(request(tools=[WEATHER_TOOL])).without_extra_tools() is None
    parsed = chat(request(tools=[WEATHER_TOOL]), **on)
    fallback = parsed.without_extra_tools()
    assert fallback is not None
    assert [tool["name"] for tool in fallback["tools"]] == ["get_weather"]
    assert fallback["tool_choice"] == parsed.payload["tool_choice"]
    assert {**fallback, "tools": parsed.payload["tools"]} == parsed.payload
    forced = chat(request(responses_tool_choice="required"), **on).without_extra_tools()
    assert forced is not None
    assert (forced["tools"], forced["tool_choice"]) == ([], "auto")


def test_tool_output_of_null_content_is_empty() -> None:
    call = {"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{}"}}
    sent = payload(request(user("hi"), {"role": "assistant", "tool_calls": [call]},
                           {"role": "tool", "tool_call_id": "call_1", "content": None}))
    assert sent["input"][-1] == {"type": "function_call_output", "call_id": "call_1",
                                 "output": ""}


def test_assistant_parts_other_than_text_are_refused() -> None:
    image = {"type": "image_url", "image_url": {"url": "https://x/y.png"}}
    rejected(request(user("hi"), {"role": "assistant", "content": [image]}),
             "messages[1].content[0]", code="invalid_value", param="messages[1].content[0].type")


def test_default_web_search_is_not_doubled() -> None:
    sent = payload(request(tools=[{"type": "web_search"}]), enable_web_search=True)
    assert [tool["type"] for tool in sent["tools"]] == ["web_search"]
    sent = payload(request(), enable_web_search=True)
    assert sent["tools"] == [{"type": "web_search"}]


def test_an_effort_the_model_refuses_does_not_hide_a_valid_one() -> None:
    sent = payload(request(reasoning={"effort": "ultra"}, reasoning_effort="high"))
    assert sent["reasoning"]["effort"] == "high"
