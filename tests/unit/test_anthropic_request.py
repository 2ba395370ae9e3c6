"""chatmock.dialects.anthropic: Messages request → Codex Responses payload, models, counts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chatmock.catalog import Catalog
from chatmock.config import Settings, settings_from_argv
from chatmock.dialects.anthropic import (
    MessagesRequest,
    check_anthropic_headers,
    count_tokens,
    estimate_payload_tokens,
    parse_messages_request,
    resolve_claude_model,
)
from chatmock.dialects.common import REASONING_INCLUDE
from chatmock.dialects.errors import Dialect, failure_error
from chatmock.dialects.options import Options
from chatmock.dialects.signatures import account_tag, mint
from chatmock.errors import ClientError, ConfigError
from chatmock.option_values import DEFAULT_ANTHROPIC_MODELS
from chatmock.state.prompt_cache import SessionIds
from chatmock.testing.fake_mint import encrypted_reasoning

from .helpers import JSON, accepted_upstream, refused

CATALOG = Catalog()
PNG = "iVBORw0KGgo="
HEADERS = {b"anthropic-version": b"2023-06-01", b"x-api-key": b"k"}
WEATHER = {"name": "get_weather", "description": "Weather by city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                            "required": ["city"], "$schema": "http://json-schema.org/draft-07/schema#",
                            "additionalProperties": False}}


def parse(body: Any, **settings: Any) -> MessagesRequest:
    return parse_messages_request(body, HEADERS, CATALOG, Options(**settings))


def payload(body: Any, **settings: Any) -> JSON:
    return parse(body, **settings).payload


def request(*messages: JSON, **fields: Any) -> JSON:
    return {"model": "claude-sonnet-5", "max_tokens": 1024,
            "messages": list(messages) or [user("hi")], **fields}


def user(content: Any) -> JSON:
    return {"role": "user", "content": content}


def assistant(content: Any) -> JSON:
    return {"role": "assistant", "content": content}


def msg(role: str, *texts: str) -> JSON:
    kind = "output_text" if role == "assistant" else "input_text"
    return {"type": "message", "role": role,
            "content": [{"type": kind, "text": text} for text in texts]}


def rejected(body: Any, *fragments: str, status: int = 400) -> ClientError:
    error = refused(lambda: parse(body), *fragments, status=status)
    assert error.error_type == "invalid_request_error"
    return error



# -- the payload's fixed shape -----------------------------------------------------------------


def test_minimal_request() -> None:
    parsed = parse(request())
    assert parsed.payload == {
        "model": "gpt-5.4", "input": [msg("user", "hi")], "tools": [], "tool_choice": "auto",
        "parallel_tool_calls": True, "store": False, "stream": True,
        "include": [REASONING_INCLUDE], "reasoning": {"effort": "medium", "summary": "auto"}}
    assert parsed.model == "claude-sonnet-5"
    assert parsed.stream is False and parsed.thinking is False
    assert parse(request(stream=True)).stream is True
    accepted_upstream(parsed.payload)


def test_dropped_fields() -> None:
    noisy = request(stop_sequences=["x"], temperature=0.2, top_p=0.9, top_k=5,
                    metadata={"user_id": '{"device_id":"d","session_id":"s"}'},
                    context_management={"edits": [{"type": "clear_thinking_20251015",
                                                   "keep": "all"}]},
                    service_tier="standard_only", container="c", mcp_servers=[])
    assert payload(noisy) == payload(request())


def test_fast_mode_setting_only() -> None:
    assert payload(request(), fast_mode=True)["service_tier"] == "priority"
    assert "service_tier" not in payload(request(service_tier="auto"))


# -- system and messages ------------------------------------------------------------------------


def test_system_string_and_blocks() -> None:
    assert payload(request(system="Be terse."))["instructions"] == "Be terse."
    blocks = [{"type": "text", "text": "A"},
              {"type": "text", "text": "B", "cache_control": {"type": "ephemeral"}},
              {"type": "text", "text": ""}]
    assert payload(request(system=blocks))["instructions"] == "A\n\nB"
    assert "instructions" not in payload(request(system=""))
    assert "instructions" not in payload(request(system=[]))


def test_system_messages_become_developer_messages_in_place() -> None:
    body = request(user("first"), {"role": "system", "content": "Agents: x, y"},
                   {"role": "system", "content": [{"type": "text", "text": "More"}]},
                   assistant("ok"), user("next"))
    result = payload(body)
    assert result["input"] == [msg("user", "first"), msg("developer", "Agents: x, y"),
                               msg("developer", "More"), msg("assistant", "ok"),
                               msg("user", "next")]
    accepted_upstream(result)


def test_text_blocks_share_one_item_and_empty_ones_are_skipped() -> None:
    content = [{"type": "text", "text": "<system-reminder>r</system-reminder>"},
               {"type": "text", "text": ""},
               {"type": "text", "text": "prompt", "cache_control": {"type": "ephemeral"}}]
    result = payload(request(user(content), assistant([{"type": "text", "text": "a"},
                                                       {"type": "text", "text": "b"}]),
                             user("")))
    assert result["input"] == [msg("user", "<system-reminder>r</system-reminder>", "prompt"),
                               msg("assistant", "a", "b")]


def test_images() -> None:
    content = [{"type": "text", "text": "What is this?"},
               {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                            "data": PNG}},
               {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                            "data": "-_-__gE"}},
               {"type": "image", "source": {"type": "url", "url": "https://x.test/cat.png"}}]
    result = payload(request(user(content)))
    assert result["input"][0]["content"] == [
        {"type": "input_text", "text": "What is this?"},
        {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"},
        {"type": "input_image", "image_url": "data:image/png;base64,+/+//gE="},
        {"type": "input_image", "image_url": "https://x.test/cat.png"}]
    accepted_upstream(result)


def test_documents() -> None:
    content = [
        {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                        "data": "Plain doc"}},
        {"type": "document", "source": {"type": "content", "content": [
            {"type": "text", "text": "Part one"}, {"type": "text", "text": "Part two"}]}},
        {"type": "document", "title": "report.pdf", "cache_control": {"type": "ephemeral"},
         "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                        "data": "JVBERi0="}}]
    result = payload(request(user(content)))
    assert result["input"][0]["content"] == [
        {"type": "input_text", "text": "Plain doc"},
        {"type": "input_text", "text": "Part one"},
        {"type": "input_text", "text": "Part two"},
        {"type": "input_file", "filename": "report.pdf",
         "file_data": "data:application/pdf;base64,JVBERi0="},
        {"type": "input_file", "filename": "document.pdf",
         "file_data": "data:application/pdf;base64,JVBERi0="}]
    accepted_upstream(result)


@pytest.mark.parametrize("source", [
    {"type": "url", "url": "https://x.test/a.pdf"},
    {"type": "base64", "media_type": "text/csv", "data": "YSxi"},
    {"type": "file", "file_id": "file_1"},
    {"type": "base64", "media_type": "application/pdf"},
])
def test_unsupported_documents_are_refused(source: JSON) -> None:
    rejected(request(user([{"type": "document", "source": source}])),
             "messages.0.content.0.source")


def test_tool_round_trip() -> None:
    body = request(
        user("Weather in Paris?"),
        assistant([{"type": "text", "text": "Let me look."},
                   {"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                    "input": {"city": "Paris"}},
                   {"type": "tool_use", "id": "toolu_2", "name": "Bash", "input": {}}]),
        user([{"type": "tool_result", "tool_use_id": "toolu_1", "content": "22C",
               "cache_control": {"type": "ephemeral"}},
              {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": True,
               "content": [{"type": "text", "text": "exit 1"},
                           {"type": "text", "text": "no such file"}]},
              {"type": "text", "text": "Thanks"}]),
        tools=[WEATHER])
    result = payload(body)
    assert result["input"] == [
        msg("user", "Weather in Paris?"), msg("assistant", "Let me look."),
        {"type": "function_call", "call_id": "toolu_1", "name": "get_weather",
         "arguments": '{"city":"Paris"}'},
        {"type": "function_call", "call_id": "toolu_2", "name": "Bash", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "toolu_1", "output": "22C"},
        {"type": "function_call_output", "call_id": "toolu_2",
         "output": "Error: exit 1\nno such file"},
        msg("user", "Thanks")]
    accepted_upstream(result)


def test_tool_result_shapes() -> None:
    call = assistant([{"type": "tool_use", "id": "t", "name": "f", "input": {"é": "ü"}}])
    cases: list[tuple[Any, str]] = [(None, ""), ("", ""), ([], "")]
    for content, output in cases:
        result = payload(request(user("u"), call,
                                 user([{"type": "tool_result", "tool_use_id": "t",
                                        **({"content": content} if content is not None
                                           else {})}])))
        assert result["input"][1]["arguments"] == '{"é":"ü"}'
        assert result["input"][2] == {"type": "function_call_output", "call_id": "t",
                                      "output": output}
    errored = payload(request(user("u"), call, user([{"type": "tool_result",
                                                      "tool_use_id": "t", "is_error": True}])))
    assert errored["input"][2]["output"] == "Error"


def test_images_in_tool_results_follow_in_a_user_message() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": PNG}}
    body = request(user("Screenshot?"),
                   assistant([{"type": "tool_use", "id": "t1", "name": "Read", "input": {}}]),
                   user([{"type": "tool_result", "tool_use_id": "t1",
                          "content": [{"type": "text", "text": "shot.png"}, image]},
                         {"type": "text", "text": "Describe it"}]))
    result = payload(body)
    output, follow = result["input"][2:]
    assert output["type"] == "function_call_output" and output["call_id"] == "t1"
    assert output["output"].startswith("shot.png\n")
    assert "follow in the next message" in output["output"]
    assert follow["role"] == "user"
    assert follow["content"] == [
        {"type": "input_text", "text": "Attachments returned by tool call t1:"},
        {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"},
        {"type": "input_text", "text": "Describe it"}]
    accepted_upstream(result)


ENC = encrypted_reasoning("rs_1", "acc")  # the account of codex_headers()
SIGNED = mint(ENC, "")  # minted for the account `parse` uses (none)


def test_thinking_blocks_round_trip_as_reasoning_items() -> None:
    body = request(
        user("Think."),
        assistant([{"type": "thinking", "thinking": "Let me see", "signature": SIGNED},
                   {"type": "redacted_thinking", "data": SIGNED},
                   {"type": "thinking", "thinking": "", "signature": SIGNED},
                   {"type": "thinking", "thinking": "unsigned", "signature": ""},
                   {"type": "thinking", "thinking": "no signature at all"},
                   {"type": "text", "text": "Answer"}]),
        user("Again"))
    result = payload(body)
    assert result["input"][1:4] == [
        {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Let me see"}],
         "encrypted_content": ENC},
        {"type": "reasoning", "summary": [], "encrypted_content": ENC},
        {"type": "reasoning", "summary": [], "encrypted_content": ENC}]
    assert result["input"][4:] == [msg("assistant", "Answer"), msg("user", "Again")]
    accepted_upstream(result)


@pytest.mark.parametrize("signature", [
    "EqQBCkgIARABGAIiQL8real-anthropic-signature",  # a conversation begun on Anthropic
    ENC,  # encrypted content as it was before chatmock tagged it
    mint(ENC, account_tag("another-account")),  # minted while signed in to another account
    "chatmock.1.", "chatmock.1..",  # the bare prefix
], ids=["anthropic", "untagged", "other-account", "bare-prefix", "bare-prefix-dots"])
def test_thinking_blocks_chatmock_did_not_mint_are_dropped_with_their_text(
        signature: str) -> None:
    body = request(user("Think."),
                   assistant([{"type": "thinking", "thinking": "secret", "signature": signature},
                              {"type": "redacted_thinking", "data": signature},
                              {"type": "text", "text": "Answer"}]),
                   user("Again"))
    result = payload(body)
    assert result["input"] == [msg("user", "Think."), msg("assistant", "Answer"),
                               msg("user", "Again")]
    assert "secret" not in json.dumps(result)
    accepted_upstream(result)


def test_thinking_blocks_are_checked_against_the_request_account() -> None:
    tag = account_tag("acct-1")
    body = request(user("Think."), assistant([
        {"type": "thinking", "thinking": "mine", "signature": mint(ENC, tag)},
        {"type": "thinking", "thinking": "not for this account", "signature": SIGNED}]))
    parsed = parse_messages_request(body, HEADERS, CATALOG, Options(), tag)
    assert [item["summary"] for item in parsed.payload["input"][1:]] == [
        [{"type": "summary_text", "text": "mine"}]]


def test_assistant_block_order_is_kept() -> None:
    result = payload(request(user("u"), assistant([
        {"type": "text", "text": "before"},
        {"type": "tool_use", "id": "c", "name": "f", "input": {}},
        {"type": "text", "text": "after"}])))
    assert [item["type"] for item in result["input"]] == [
        "message", "message", "function_call", "message"]
    assert result["input"][3] == msg("assistant", "after")


# -- tools and tool_choice ------------------------------------------------------------------


def test_tools_keep_schema_and_names() -> None:
    tools = [WEATHER, {"name": "CronCreate", "input_schema": {"type": "object"}},
             {"type": "custom", "name": "mcp__server__Tool_X", "description": "d",
              "input_schema": {"type": "object", "properties": {}}},
             {"name": "NoSchema"},
             {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
             {"type": "web_search_20260209", "name": "web_search"}]
    result = payload(request(tools=tools))
    assert result["tools"] == [
        {"type": "function", "name": "get_weather", "description": "Weather by city",
         "strict": False, "parameters": WEATHER["input_schema"]},
        {"type": "function", "name": "CronCreate", "description": "", "strict": False,
         "parameters": {"type": "object"}},
        {"type": "function", "name": "mcp__server__Tool_X", "description": "d",
         "strict": False, "parameters": {"type": "object", "properties": {}}},
        {"type": "function", "name": "NoSchema", "description": "", "strict": False,
         "parameters": {"type": "object", "properties": {}}},
        {"type": "web_search"}]
    accepted_upstream(result)


def test_enable_web_search_adds_it_only_without_tools() -> None:
    assert payload(request(), enable_web_search=True)["tools"] == [{"type": "web_search"}]
    with_tools = payload(request(tools=[WEATHER]), enable_web_search=True)
    assert [tool["type"] for tool in with_tools["tools"]] == ["function"]
    none = payload(request(tool_choice={"type": "none"}), enable_web_search=True)
    assert none["tools"] == []


@pytest.mark.parametrize(("choice", "expected", "parallel"), [
    (None, "auto", True),
    ({"type": "auto"}, "auto", True),
    ({"type": "any"}, "required", True),
    ({"type": "none"}, "none", True),
    ({"type": "tool", "name": "get_weather"}, {"type": "function", "name": "get_weather"}, True),
    ({"type": "auto", "disable_parallel_tool_use": True}, "auto", False),
    ({"type": "any", "disable_parallel_tool_use": False}, "required", True),
    ({"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
     {"type": "function", "name": "get_weather"}, False),
    ("any", "required", True),
])
def test_tool_choice(choice: Any, expected: Any, parallel: bool) -> None:
    fields = {"tool_choice": choice} if choice is not None else {}
    result = payload(request(tools=[WEATHER], **fields))
    assert result["tool_choice"] == expected
    assert result["parallel_tool_calls"] is parallel
    accepted_upstream(result)


@pytest.mark.parametrize(("tools", "fragment"), [
    ({"name": "x"}, "tools"),
    (["x"], "tools.0"),
    ([{"description": "no name", "input_schema": {}}], "tools.0.name"),
    ([{"name": "f", "input_schema": "object"}], "tools.0.input_schema"),
    ([WEATHER, {"type": "bash_20250124", "name": "bash"}], "tools.1.type"),
    ([{"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"}], "tools.0.type"),
])
def test_bad_tools(tools: Any, fragment: str) -> None:
    rejected(request(tools=tools), fragment)


@pytest.mark.parametrize(("choice", "fragment"), [
    ({"type": "tool"}, "tool_choice.name"),
    ({"type": "function", "name": "f"}, "tool_choice.type"),
    ({"type": "required"}, "tool_choice.type"),
    (5, "tool_choice"),
])
def test_bad_tool_choice(choice: Any, fragment: str) -> None:
    rejected(request(tools=[WEATHER], tool_choice=choice), fragment)


# -- reasoning --------------------------------------------------------------------------------


def reasoning(body: JSON, **settings: Any) -> JSON:
    result = payload(body, **settings)["reasoning"]
    assert isinstance(result, dict)
    return result


@pytest.mark.parametrize(("budget", "effort"), [
    (1024, "low"), (4095, "low"), (4096, "medium"), (16383, "medium"), (16384, "high"),
    (31999, "high"), (32768, "xhigh"), (128000, "xhigh"),
])
def test_thinking_budget_buckets(budget: int, effort: str) -> None:
    parsed = parse(request(thinking={"type": "enabled", "budget_tokens": budget}))
    assert parsed.thinking is True
    assert parsed.payload["reasoning"] == {"effort": effort, "summary": "auto"}
    accepted_upstream(parsed.payload)


def test_budget_steps_down_when_the_model_lacks_xhigh() -> None:
    body = request(model="gpt-5.1", thinking={"type": "enabled", "budget_tokens": 60000})
    assert reasoning(body)["effort"] == "high"


def test_thinking_disabled_is_the_lowest_effort_without_summary() -> None:
    parsed = parse(request(thinking={"type": "disabled"}, output_config={"effort": "high"}))
    assert parsed.thinking is False
    assert parsed.payload["reasoning"] == {"effort": "none"}
    assert reasoning(request(model="claude-haiku-4-5", thinking={"type": "disabled"})) == {
        "effort": "low"}
    accepted_upstream(parsed.payload)


def test_adaptive_thinking_keeps_the_defaults() -> None:
    parsed = parse(request(thinking={"type": "adaptive"}))
    assert parsed.thinking is True
    assert parsed.payload["reasoning"] == {"effort": "medium", "summary": "auto"}
    assert reasoning(request(thinking={"type": "adaptive"}), reasoning_effort="high",
                     reasoning_summary="detailed") == {"effort": "high", "summary": "detailed"}


@pytest.mark.parametrize(("effort", "expected"), [
    ("low", "low"), ("medium", "medium"), ("high", "high"), ("HIGH", "high"),
    ("max", "xhigh"), ("bogus", "medium"),
])
def test_output_config_effort(effort: str, expected: str) -> None:
    body = request(thinking={"type": "adaptive"}, output_config={"effort": effort})
    assert reasoning(body)["effort"] == expected


def test_output_config_effort_wins_over_budget_and_model_suffix() -> None:
    body = request(model="gpt-5.4-low", thinking={"type": "enabled", "budget_tokens": 50000},
                   output_config={"effort": "medium"})
    assert reasoning(body)["effort"] == "medium"
    assert reasoning(request(model="gpt-5.4-low",
                             thinking={"type": "enabled", "budget_tokens": 20000}))[
        "effort"] == "high"
    assert reasoning(request(model="claude-opus-4-8"))["effort"] == "high"  # the map's suffix
    assert reasoning(request(output_config={}))["effort"] == "medium"


def test_output_config_format_becomes_a_non_strict_json_schema_text_format() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}},
              "additionalProperties": False}
    body = request(output_config={"effort": "low",
                                  "format": {"type": "json_schema", "schema": schema}})
    sent = payload(body)
    assert sent["text"] == {"format": {"type": "json_schema", "name": "output",
                                       "schema": schema, "strict": False}}
    assert sent["reasoning"]["effort"] == "low"
    accepted_upstream(sent)
    assert "text" not in payload(request(output_config={"effort": "low", "format": None}))


@pytest.mark.parametrize(("output_format", "fragment"), [
    ({"type": "json_object"}, "output_config.format.type"),
    ("json", "output_config.format.type"),
    ({"type": "json_schema"}, "output_config.format.schema"),
    ({"type": "json_schema", "schema": "{}"}, "output_config.format.schema"),
])
def test_bad_output_config_format(output_format: Any, fragment: str) -> None:
    rejected(request(output_config={"format": output_format}), fragment)


@pytest.mark.parametrize(("thinking", "fragment"), [
    ({"type": "enabled"}, "budget_tokens"),
    ({"type": "enabled", "budget_tokens": "big"}, "budget_tokens"),
    ({"type": "sometimes"}, "thinking.type"),
    ("enabled", "thinking"),
])
def test_bad_thinking(thinking: Any, fragment: str) -> None:
    rejected(request(thinking=thinking), fragment)


# -- models --------------------------------------------------------------------------------


def resolve(name: str, **settings: Any) -> tuple[str, str | None]:
    resolved = resolve_claude_model(name, CATALOG, Options(**settings))
    return resolved.slug, resolved.effort


@pytest.mark.parametrize(("name", "slug", "effort"), [
    ("claude-opus-4-8", "gpt-5.5", "high"),
    ("claude-opus-4-8[1m]", "gpt-5.5", "high"),
    ("claude-opus-4-1@20250805", "gpt-5.5", "high"),
    ("opus", "gpt-5.5", "high"),
    ("claude-sonnet-5", "gpt-5.4", None),
    ("claude-sonnet-4-5-20250929[1m]", "gpt-5.4", None),
    ("sonnet", "gpt-5.4", None),
    ("claude-haiku-4-5-20251001", "gpt-5.4-mini", None),
    ("Claude-3-5-Haiku-Latest", "gpt-5.4-mini", None),
    ("claude-fable-5", "gpt-5.4", None),
    ("gpt-5.4-high", "gpt-5.4", "high"),
    ("gpt-5.3-codex", "gpt-5.3-codex", None),
    ("gpt5.4-mini:low", "gpt-5.4-mini", "low"),
    ("codex", "codex-mini-latest", None),
    ("claude-instant-1", "gpt-5.4", None),
    ("mystery", "gpt-5.4", None),
])
def test_model_resolution(name: str, slug: str, effort: str | None) -> None:
    assert resolve(name) == (slug, effort)


def test_model_map_setting() -> None:
    models = (("opus", "gpt-5.6-sol-max"), ("sonnet", "gpt-5.3-codex"), ("mythos", "gpt-5.2"))
    assert resolve("claude-opus-4-8", anthropic_models=models) == ("gpt-5.6-sol", "max")
    assert resolve("claude-mythos-1", anthropic_models=models) == ("gpt-5.2", None)
    assert resolve("unknown", anthropic_models=models) == ("gpt-5.3-codex", None)
    assert resolve("claude-haiku-4-5", anthropic_models=(("opus", "gpt-5.5"),)) == (
        "gpt-5.4", None)  # no sonnet: the default model


def test_debug_model_wins() -> None:
    assert resolve("claude-opus-4-8", debug_model="gpt-5.2") == ("gpt-5.2", None)
    assert resolve("gpt-5.4", debug_model="gpt-5.2") == ("gpt-5.2", None)


def test_requested_model_is_echoed() -> None:
    parsed = parse(request(model="claude-opus-4-8[1m]"))
    assert parsed.model == "claude-opus-4-8[1m]"
    assert parsed.payload["model"] == "gpt-5.5"
    accepted_upstream(parsed.payload)


def test_model_map_parsing() -> None:
    assert Settings().anthropic_models == DEFAULT_ANTHROPIC_MODELS
    env = {"CHATGPT_LOCAL_ANTHROPIC_MODELS": " Opus = gpt-5.4-xhigh , mythos=gpt-5.2,"}
    parsed = dict(settings_from_argv([], env).anthropic_models)
    assert parsed == {**dict(DEFAULT_ANTHROPIC_MODELS), "opus": "gpt-5.4-xhigh",
                      "mythos": "gpt-5.2"}
    flag = settings_from_argv(["--anthropic-models", "haiku=gpt-5.1-codex-mini"], env)
    assert dict(flag.anthropic_models)["haiku"] == "gpt-5.1-codex-mini"
    assert dict(flag.anthropic_models)["opus"] == "gpt-5.5-high"


@pytest.mark.parametrize("text", ["", ",", "opus", "opus=", "=gpt-5.4", "op us=gpt-5.4",
                                  "opus=gpt 5", "opus=a=b", "opus=gpt-5.4,opus=gpt-5.5",
                                  "1opus=gpt-5.4"])
def test_bad_model_maps_stop_start_up(text: str) -> None:
    with pytest.raises(ConfigError, match="--anthropic-models"):
        settings_from_argv(["--anthropic-models", text], {})


# -- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize("body", [[], "text", None, 5])
def test_body_must_be_an_object(body: Any) -> None:
    rejected(body, "JSON object")


def test_max_tokens_is_required() -> None:
    body = request()
    del body["max_tokens"]
    error = rejected(body, "max_tokens: Field required")
    assert error.message == "max_tokens: Field required"
    rejected(request(max_tokens="many"), "max_tokens: Input should be a valid integer")
    rejected(request(max_tokens=True), "max_tokens")
    rejected(request(max_tokens=0), "max_tokens")


def test_model_is_required() -> None:
    body = request()
    del body["model"]
    rejected(body, "model: Field required")
    rejected(request(model=""), "model")
    rejected(request(model=5), "model")


@pytest.mark.parametrize(("messages", "fragment"), [
    (None, "messages: Field required"),
    ([], "messages: at least one message"),
    ("hi", "messages: Input should be a valid list"),
    ({"role": "user", "content": "hi"}, "messages"),
])
def test_messages_missing_or_empty(messages: Any, fragment: str) -> None:
    body = request()
    if messages is None:
        del body["messages"]
    else:
        body["messages"] = messages
    rejected(body, fragment)


@pytest.mark.parametrize(("message", "fragment"), [
    ("not an object", "messages.1"),
    ({"role": "tool", "content": "x"}, "messages.1.role"),
    ({"role": "developer", "content": "x"}, "messages.1.role"),
    ({"content": "x"}, "messages.1.role"),
    ({"role": "user"}, "messages.1.content: Field required"),
    (user(5), "messages.1.content"),
    (user({"type": "text", "text": "x"}), "messages.1.content"),
    (user(["bare"]), "messages.1.content.0: Input should be a valid dictionary"),
    (user([{"text": "untyped"}]), "messages.1.content.0.type"),
    (user([{"type": "text"}]), "messages.1.content.0.text"),
    (user([{"type": "text", "text": "a"}, {"type": "video"}]), "messages.1.content.1.type"),
    (user([{"type": "tool_use", "id": "t", "name": "f", "input": {}}]),
     "messages.1.content.0.type"),
    (user([{"type": "image"}]), "messages.1.content.0.source"),
    (user([{"type": "image", "source": {"type": "base64", "data": PNG}}]),
     "messages.1.content.0.source.media_type"),
    (user([{"type": "image", "source": {"type": "file", "file_id": "f"}}]),
     "messages.1.content.0.source.type"),
    (user([{"type": "document"}]), "messages.1.content.0.source"),
    (user([{"type": "tool_result", "content": "x"}]), "messages.1.content.0.tool_use_id"),
    (user([{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "tool_result"}]}]),
     "messages.1.content.0.content.0.type"),
    (user([{"type": "tool_result", "tool_use_id": "t", "content": 5}]),
     "messages.1.content.0.content"),
    (assistant([{"type": "tool_use", "name": "f", "input": {}}]), "messages.1.content.0.id"),
    (assistant([{"type": "tool_use", "id": "t", "input": {}}]), "messages.1.content.0.name"),
    (assistant([{"type": "tool_use", "id": "t", "name": "f", "input": "[]"}]),
     "messages.1.content.0.input"),
    (assistant([{"type": "thinking", "signature": "s"}]), "messages.1.content.0.thinking"),
    (assistant([{"type": "redacted_thinking"}]), "messages.1.content.0.data"),
    (assistant([{"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}]),
     "messages.1.content.0.type"),
    ({"role": "system", "content": [{"type": "image"}]}, "messages.1.content.0.type"),
])
def test_bad_messages_name_the_field(message: Any, fragment: str) -> None:
    rejected(request(user("first"), message), fragment)


@pytest.mark.parametrize(("fields", "message"), [
    ({"stream": "true"}, "stream: Input should be a valid boolean"),
    ({"max_tokens": True}, "max_tokens: Input should be a valid integer"),
    ({"max_tokens": 1.5}, "max_tokens: Input should be a valid integer"),
    ({"thinking": {"type": 5}}, "thinking.type: Input should be a valid string"),
    ({"output_config": {"effort": 3}}, "output_config.effort: Input should be a valid string"),
    ({"tool_choice": {"type": "auto", "disable_parallel_tool_use": "yes"}},
     "tool_choice.disable_parallel_tool_use: Input should be a valid boolean"),
    ({"tools": [{"name": "f", "description": 5}]},
     "tools.0.description: Input should be a valid string"),
    ({"messages": [user([{"type": "text", "text": 5}])]},
     "messages.0.content.0.text: Input should be a valid string"),
    ({"messages": [user([{"type": 5}])]}, "messages.0.content.0.type: Input should be a valid"),
    ({"messages": [user([{"type": "tool_result", "tool_use_id": "t", "is_error": "no"}])]},
     "messages.0.content.0.is_error: Input should be a valid boolean"),
    ({"messages": [user([{"type": "document", "title": 5, "source": {
        "type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}}])]},
     "messages.0.content.0.title"),
    ({"messages": [assistant([{"type": "thinking", "thinking": "t", "signature": 5}])]},
     "messages.0.content.0.signature: Input should be a valid string"),
    ({"messages": [user([{"type": "image", "source": "x"}])]},
     "messages.0.content.0.source: Input should be a valid dictionary"),
])
def test_wrong_types_are_refused_in_pydantic_words(fields: JSON, message: str) -> None:
    error = rejected(request(**fields), message)
    assert error.param is not None and error.message.startswith(error.param)


@pytest.mark.parametrize("system", [5, {"type": "text", "text": "x"}, ["x"],
                                    [{"type": "image"}], [{"type": "text"}]])
def test_bad_system(system: Any) -> None:
    rejected(request(system=system), "system")


# -- headers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [
    {b"anthropic-version": b"2023-06-01", b"x-api-key": b"k"},
    {b"anthropic-version": b"2026-10-21", b"authorization": b"Bearer k"},
    {b"anthropic-version": b"anything", b"proxy-authorization": b"Basic x"},
])
def test_accepted_headers(headers: dict[bytes, bytes]) -> None:
    check_anthropic_headers(headers)


def test_missing_version_is_a_400() -> None:
    with pytest.raises(ClientError) as info:
        check_anthropic_headers({b"x-api-key": b"k"})
    assert info.value.status == 400 and "anthropic-version" in info.value.message
    with pytest.raises(ClientError):
        check_anthropic_headers({b"anthropic-version": b" ", b"x-api-key": b"k"})


def test_missing_credentials_is_a_401() -> None:
    for headers in ({b"anthropic-version": b"2023-06-01"},
                    {b"anthropic-version": b"2023-06-01", b"x-api-key": b""}):
        with pytest.raises(ClientError) as info:
            check_anthropic_headers(headers)
        assert info.value.status == 401
        assert info.value.error_type == "authentication_error"


def test_claude_code_session_header() -> None:
    sessions = SessionIds()
    headers = {b"x-claude-code-session-id": b"cc-session"}
    assert sessions.for_request(headers, None, []) == "cc-session"
    both = {b"x-session-id": b"explicit", b"x-claude-code-session-id": b"cc"}
    assert sessions.for_request(both, None, []) == "explicit"


@pytest.mark.parametrize(("code", "status"), [
    ("rate_limit_exceeded", 429), ("usage_limit_reached", 429), ("server_is_overloaded", 529),
    ("context_length_exceeded", 400), ("invalid_prompt", 400), ("upstream_error", 502),
    ("", 502),
])
def test_failure_status(code: str, status: int) -> None:
    assert failure_error("m", code, Dialect.ANTHROPIC).status == status


# -- count_tokens -------------------------------------------------------------------------------


def tokens(body: JSON) -> int:
    return count_tokens(body, CATALOG, Options())


def test_count_tokens_is_at_least_one() -> None:
    assert tokens({"messages": [user("")]}) == 1
    assert tokens({"messages": [user("hi")]}) >= 1


def test_count_tokens_grows_with_content() -> None:
    sizes = [tokens({"messages": [user("word " * n)]}) for n in (1, 10, 100, 1000, 10000)]
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0] * 1000
    base = {"messages": [user("hello")]}
    assert tokens({**base, "system": "You are terse."}) > tokens(base)
    assert tokens({**base, "tools": [WEATHER]}) > tokens(base)
    image = {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}
    assert tokens({"messages": [user([{"type": "text", "text": "hello"}, image])]}) >= \
        tokens(base) + 1600


def test_count_tokens_of_known_text() -> None:
    # 8 + len("message") + len("user") = 19; + 4 + len("input_text") + 400 = 433 → 109
    assert tokens({"messages": [user("x" * 400)]}) == 109


def test_count_tokens_validates_but_needs_no_model() -> None:
    assert tokens({"messages": [user("hi")], "model": "claude-opus-4-8"}) >= 1
    with pytest.raises(ClientError, match="messages"):
        tokens({"messages": []})
    with pytest.raises(ClientError, match="JSON object"):
        count_tokens([], CATALOG, Options())


def test_estimate_of_a_payload_matches_count_tokens() -> None:
    body = request(user("Weather?"), system="Be terse.", tools=[WEATHER])
    assert estimate_payload_tokens(payload(body)) == tokens(body)


# -- Claude Code's real body ----------------------------------------------------------------


def claude_code_body(**changes: Any) -> JSON:
    names = ["Agent", "Bash", "CronCreate", "CronDelete", "CronList", "Edit", "ExitPlanMode",
             "Glob", "Grep", "KillShell", "ListMcpResources", "MultiEdit", "NotebookEdit",
             "Read", "ReadMcpResource", "SlashCommand", "Task", "TaskOutput", "TodoWrite",
             "WebFetch", "WebSearch", "Write", "AskUserQuestion", "Skill"]
    tools = [{"name": name, "description": f"The {name} tool",
              "input_schema": {"$schema": "http://json-schema.org/draft-07/schema#",
                               "type": "object", "additionalProperties": False,
                               "properties": {"arg": {"type": "string", "default": "x"}},
                               "required": ["arg"]}} for name in names]
    cache = {"type": "ephemeral"}
    body = {
        "model": "claude-opus-4-8", "max_tokens": 64000, "stream": True,
        "thinking": {"type": "adaptive"}, "output_config": {"effort": "high"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "metadata": {"user_id": json.dumps({"device_id": "d", "account_uuid": "a",
                                            "session_id": "s"})},
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197.80a; "
                                     "cc_entrypoint=sdk-cli;"},
            {"type": "text", "text": "You are Claude Code.", "cache_control": cache},
            {"type": "text", "text": "Environment: linux", "cache_control": cache}],
        "messages": [
            user([{"type": "text", "text": "<system-reminder>ctx</system-reminder>"},
                  {"type": "text", "text": "List files", "cache_control": cache}]),
            {"role": "system", "content": "Available agent types: general-purpose"},
            assistant([{"type": "thinking", "thinking": "I should run ls",
                        "signature": SIGNED},
                       {"type": "text", "text": "Running ls."},
                       {"type": "tool_use", "id": "toolu_01", "name": "Bash",
                        "input": {"arg": "ls"}}]),
            user([{"type": "tool_result", "tool_use_id": "toolu_01", "is_error": False,
                   "content": "README.md", "cache_control": cache}])],
        "tools": tools,
    }
    return {**body, **changes}


def test_claude_code_body() -> None:
    parsed = parse(claude_code_body())
    assert parsed.model == "claude-opus-4-8" and parsed.stream and parsed.thinking
    result = parsed.payload
    assert result["model"] == "gpt-5.5"
    assert result["reasoning"] == {"effort": "high", "summary": "auto"}
    assert result["instructions"].startswith("x-anthropic-billing-header")
    assert result["instructions"].endswith("You are Claude Code.\n\nEnvironment: linux")
    assert [tool["name"] for tool in result["tools"]][:3] == ["Agent", "Bash", "CronCreate"]
    assert len(result["tools"]) == 24
    assert result["tools"][0]["parameters"]["$schema"].startswith("http://json-schema.org")
    assert [item.get("role") or item["type"] for item in result["input"]] == [
        "user", "developer", "reasoning", "assistant", "function_call", "function_call_output"]
    assert result["input"][-1]["output"] == "README.md"
    assert "metadata" not in result and "context_management" not in result
    accepted_upstream(result)


def test_claude_code_haiku_body() -> None:
    parsed = parse(claude_code_body(model="claude-haiku-4-5-20251001", max_tokens=32000,
                                    thinking={"type": "enabled", "budget_tokens": 31999},
                                    output_config=None))
    assert parsed.payload["model"] == "gpt-5.4-mini"
    assert parsed.payload["reasoning"]["effort"] == "high"
    accepted_upstream(parsed.payload)


def test_beta_headers_change_nothing() -> None:
    beta = {**HEADERS, b"anthropic-beta": b"claude-code-20250219,context-1m-2025-08-07"}
    body = claude_code_body()
    with_beta = parse_messages_request(body, beta, CATALOG, Options())
    assert with_beta == parse(body)
