"""chatmock.dialects.ollama + ollama_stream: Ollama requests → Codex, Codex events → NDJSON."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest

from chatmock.catalog import STATIC_CATALOG
from chatmock.dialects.collectors import OllamaCollector
from chatmock.dialects.errors import Dialect, named_message, render
from chatmock.dialects.ollama import (
    LoadAck,
    OllamaRequest,
    chat_messages,
    image_data_url,
    parse_chat,
    parse_generate,
    resolve_model,
)
from chatmock.dialects.ollama_stream import (
    OllamaStreamTranslator,
    chat_object,
    created_at,
    generate_object,
    load_object,
)
from chatmock.dialects.options import Options
from chatmock.errors import ClientError

from .helpers import TOOL_TEXT, chunked, fake_stream, run_bytes

SETTINGS = Options()
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGMAAQAABQABDQottAAAAABJRU5ErkJggg=="
TOOL = {"type": "function", "function": {"name": "get_weather", "description": "w",
                                         "parameters": {"type": "object", "properties": {}}}}


def chat(body: dict[str, Any], settings: Options = SETTINGS) -> OllamaRequest:
    parsed = parse_chat({"model": "gpt-5.4", **body}, STATIC_CATALOG, settings)
    assert isinstance(parsed, OllamaRequest)
    return parsed


def user(text: str, **extra: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text, **extra}]


# -- request mapping ------------------------------------------------------------------


def test_plain_chat_payload_and_stream_default() -> None:
    req = chat({"messages": [{"role": "system", "content": "be brief"}, *user("hi")],
                "tools": [], "options": {"num_predict": 5, "temperature": 0},
                "keep_alive": "5m"})
    payload = req.chat.payload
    assert req.stream is True and req.think is None and req.model == "gpt-5.4"
    assert payload["instructions"] == "be brief"
    assert payload["input"] == [{"type": "message", "role": "user",
                                 "content": [{"type": "input_text", "text": "hi"}]}]
    assert payload["tools"] == [] and payload["stream"] is True and payload["store"] is False
    assert payload["reasoning"] == {"effort": "medium", "summary": "auto"}
    assert not {"options", "num_predict", "temperature", "keep_alive", "text"} & set(payload)
    assert chat({"messages": user("x"), "stream": None}).stream is True
    assert chat({"messages": user("x"), "stream": False}).stream is False


@pytest.mark.parametrize(("name", "slug", "effort"), [
    ("gpt-5.4:latest", "gpt-5.4", None), ("gpt-5.4:high", "gpt-5.4", "high"),
    ("gpt-5.4:cloud", "gpt-5.4", None), ("gpt-5.4-high:latest", "gpt-5.4", "high"),
    ("other:7b", "other:7b", None)])
def test_model_tags(name: str, slug: str, effort: str | None) -> None:
    resolved = resolve_model(name, STATIC_CATALOG, SETTINGS)
    assert (resolved.slug, resolved.effort) == (slug, effort)


def test_model_tag_effort_reaches_reasoning_and_name_is_echoed() -> None:
    req = chat({"model": "gpt-5.4:high", "messages": user("x")})
    assert req.chat.payload["reasoning"]["effort"] == "high"
    assert req.chat.payload["model"] == "gpt-5.4" and req.model == "gpt-5.4:high"


@pytest.mark.parametrize("body", [{"messages": user("x")}, {"model": "", "messages": user("x")},
                                  {"model": None, "messages": user("x")}])
def test_model_required(body: dict[str, Any]) -> None:
    with pytest.raises(ClientError, match="model is required"):
        parse_chat(body, STATIC_CATALOG, SETTINGS)


@pytest.mark.parametrize(("body", "param"), [
    ({"model": 3}, "model"), ({"stream": "false"}, "stream"), ({"stream": 0}, "stream"),
    ({"messages": {"role": "user"}}, "messages"), ({"messages": ["hi"]}, "messages[0]"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ({"messages": [{"role": 5, "content": "x"}]}, "messages[0].role"),
    ({"messages": [{"role": "tool", "content": "x", "tool_call_id": 5}]},
     "messages[0].tool_call_id"),
    ({"messages": [{"role": "tool", "content": "x", "tool_name": []}]}, "messages[0].tool_name"),
    ({"messages": [{"role": "assistant", "tool_calls": [{"id": 5, "function": {
        "name": "f"}}]}]}, "messages[0].tool_calls[0].id"),
    ({"messages": [{"role": "assistant", "tool_calls": ["f"]}]}, "messages[0].tool_calls[0]"),
    ({"messages": [{"role": "assistant", "tool_calls": [{"function": "f"}]}]},
     "messages[0].tool_calls[0].function"),
    ({"parallel_tool_calls": "no"}, "parallel_tool_calls"), ({"keep_alive": []}, "keep_alive"),
    ({"keep_alive": True}, "keep_alive"), ({"think": 1}, "think"), ({"format": 1}, "format"),
    ({"tools": {}}, "tools"),
])
def test_wrong_types_name_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(ClientError) as caught:
        parse_chat({"model": "gpt-5.4", "messages": user("x"), **body}, STATIC_CATALOG,
                   SETTINGS)
    assert caught.value.status == 400 and caught.value.param == param
    rendered = json.loads(render(caught.value, Dialect.OLLAMA))
    assert param in rendered["error"]


@pytest.mark.parametrize(("body", "param"), [
    ({"prompt": 5}, "prompt"), ({"system": 5}, "system"), ({"suffix": 5}, "suffix"),
    ({"images": "x"}, "images"), ({"images": [5]}, "images[0]")])
def test_generate_wrong_types_name_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(ClientError) as caught:
        parse_generate({"model": "gpt-5.4", "prompt": "x", **body}, STATIC_CATALOG, SETTINGS)
    assert caught.value.status == 400 and param in named_message(caught.value)


@pytest.mark.parametrize(("think", "effort", "summary", "mode"), [
    (None, "medium", "auto", None), (True, "medium", "auto", True),
    (False, "none", None, False), ("high", "high", "auto", True), ("low", "low", "auto", True)])
def test_think_variants(think: Any, effort: str, summary: str | None, mode: Any) -> None:
    req = chat({"messages": user("x"), "think": think})
    assert req.chat.payload["reasoning"].get("effort") == effort
    assert req.chat.payload["reasoning"].get("summary") == summary
    assert req.think is mode


def test_think_true_shows_summaries_even_when_server_default_is_none() -> None:
    quiet = Options(reasoning_summary="none")
    assert chat({"messages": user("x"), "think": True}, quiet).chat.payload["reasoning"] == \
        {"effort": "medium", "summary": "auto"}
    assert "summary" not in chat({"messages": user("x")}, quiet).chat.payload["reasoning"]


def test_think_invalid() -> None:
    with pytest.raises(ClientError, match="think"):
        chat({"messages": user("x"), "think": "very"})


def test_format() -> None:
    assert chat({"messages": user("x"), "format": "json"}).chat.payload["text"] == \
        {"format": {"type": "json_object"}}
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert chat({"messages": user("x"), "format": schema}).chat.payload["text"] == {
        "format": {"type": "json_schema", "name": "response", "schema": schema,
                   "strict": False}}
    assert "text" not in chat({"messages": user("x"), "format": ""}).chat.payload
    with pytest.raises(ClientError):
        chat({"messages": user("x"), "format": "yaml"})


@pytest.mark.parametrize(("data", "mime"), [
    ("/9j/4AAQ", "image/jpeg"), (PNG, "image/png"), ("R0lGODlhAQ==", "image/gif"),
    ("UklGRiQAAABXRUJQ", "image/webp"), ("AAAA", "image/png")])
def test_image_mime_sniffing(data: str, mime: str) -> None:
    assert image_data_url(data) == f"data:{mime};base64,{data}"


def test_image_urls_left_alone_and_line_breaks_removed() -> None:
    assert image_data_url("https://x/y.png") == "https://x/y.png"
    assert image_data_url("data:image/jpeg;base64,/9j/") == "data:image/jpeg;base64,/9j/"
    assert image_data_url("iVBORw0K\r\nGgo=") == "data:image/png;base64,iVBORw0KGgo="


def test_images_become_parts_and_only_on_user_messages() -> None:
    req = chat({"messages": user("what is this", images=[PNG])})
    assert req.chat.payload["input"][0]["content"] == [
        {"type": "input_text", "text": "what is this"},
        {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"}]
    with pytest.raises(ClientError, match="images"):
        chat({"messages": [{"role": "assistant", "content": "x", "images": [PNG]}]})


def _round_trip(*tail: dict[str, Any]) -> list[dict[str, Any]]:
    calls = [{"function": {"name": "a", "arguments": {"x": 1}}},
             {"function": {"name": "b", "arguments": '{"y":2}'}}]
    return [*user("go"), {"role": "assistant", "content": "", "tool_calls": calls}, *tail]


def test_tool_round_trip_without_ids_invents_and_pairs() -> None:
    items = chat({"messages": _round_trip({"role": "tool", "content": "B", "tool_name": "b"},
                                          {"role": "tool", "content": "A"}),
                  "tools": [TOOL]}).chat.payload["input"]
    calls = [(i["call_id"], i["name"], json.loads(i["arguments"])) for i in items
             if i["type"] == "function_call"]
    assert calls == [("ollama_call_0", "a", {"x": 1}), ("ollama_call_1", "b", {"y": 2})]
    outputs = [(i["call_id"], i["output"]) for i in items if i["type"] == "function_call_output"]
    assert outputs == [("ollama_call_1", "B"), ("ollama_call_0", "A")]


def test_tool_pairing_prefers_oldest_then_keeps_given_ids() -> None:
    converted = chat_messages(_round_trip({"role": "tool", "content": "1"},
                                          {"role": "tool", "content": "2"}))
    assert [m.get("tool_call_id") for m in converted[2:]] == ["ollama_call_0", "ollama_call_1"]
    given = chat_messages([*user("go"), {"role": "assistant", "tool_calls": [
        {"id": "call_9", "function": {"name": "a", "arguments": {}}}]},
        {"role": "tool", "content": "r", "tool_call_id": "call_9"}])
    assert given[1]["tool_calls"][0]["id"] == "call_9" and given[2]["tool_call_id"] == "call_9"


def test_ids_are_stable_across_turns() -> None:
    first = chat_messages(_round_trip())
    second = chat_messages(_round_trip({"role": "tool", "content": "A"},
                                       {"role": "tool", "content": "B"}))
    assert first[1]["tool_calls"] == second[1]["tool_calls"]


def test_orphan_tool_message_and_bad_arguments_are_400() -> None:
    with pytest.raises(ClientError, match="answers no earlier tool call"):
        chat_messages([*user("x"), {"role": "tool", "content": "r"}])
    with pytest.raises(ClientError, match="arguments"):
        chat_messages([{"role": "assistant", "tool_calls": [
            {"function": {"name": "a", "arguments": [1]}}]}])


def test_flat_tools_accepted() -> None:
    tools = chat({"messages": user("x"), "tools": [{"name": "f", "description": "d"}]}
                 ).chat.payload["tools"]
    assert tools[0]["name"] == "f" and tools[0]["parameters"]["type"] == "object"


def test_empty_messages_is_a_load_ack() -> None:
    assert parse_chat({"model": "m", "messages": []}, STATIC_CATALOG, SETTINGS) == \
        LoadAck("m", "load")
    assert parse_chat({"model": "m", "keep_alive": 0}, STATIC_CATALOG, SETTINGS) == \
        LoadAck("m", "unload")


@pytest.mark.parametrize(("keep_alive", "reason"), [
    (0, "unload"), ("0", "unload"), ("0s", "unload"), (0.0, "unload"), ("5m", "load"),
    (None, "load"), (-1, "load")])
def test_generate_empty_prompt(keep_alive: Any, reason: str) -> None:
    body = {"model": "gpt-5.4", "prompt": "", "keep_alive": keep_alive}
    assert parse_generate(body, STATIC_CATALOG, SETTINGS) == LoadAck("gpt-5.4", reason)


def test_generate_mapping() -> None:
    parsed = parse_generate({"model": "gpt-5.4", "prompt": "hi", "system": "sys", "raw": True,
                             "images": [PNG], "context": [1, 2], "suffix": "", "think": "low",
                             "format": "json", "stream": False}, STATIC_CATALOG, SETTINGS)
    assert isinstance(parsed, OllamaRequest)
    payload = parsed.chat.payload
    assert payload["instructions"] == "sys" and parsed.stream is False and parsed.think is True
    assert [p["type"] for p in payload["input"][0]["content"]] == ["input_text", "input_image"]
    assert payload["reasoning"]["effort"] == "low"
    assert payload["text"] == {"format": {"type": "json_object"}}
    with pytest.raises(ClientError, match="suffix"):
        parse_generate({"model": "m", "prompt": "a", "suffix": "b"}, STATIC_CATALOG, SETTINGS)


# -- stream translation ------------------------------------------------------------------


def clock() -> Callable[[], int]:
    return itertools.count(0, 1000).__next__


def make(think: bool | None = None, compat: str = "think-tags",
         generate: bool = False) -> Callable[[], OllamaStreamTranslator]:
    return lambda: OllamaStreamTranslator(model="gpt-5.4", created_at="T", think=think,
                                          compat=compat, generate=generate, clock=clock())


def lines(out: bytes) -> list[dict[str, Any]]:
    assert out.endswith(b"\n")
    return [json.loads(line) for line in out.split(b"\n")[:-1]]


def parse_stream(out: bytes, key: str = "message") -> tuple[str, str, list[Any], dict[str, Any]]:
    """(content, thinking, tool calls, last line) of an NDJSON stream."""
    content = thinking = ""
    calls: list[Any] = []
    parsed = lines(out)
    for line in parsed[:-1]:
        assert line["done"] is False and line["model"] == "gpt-5.4"
        part = line[key] if key == "message" else line
        content += part["content" if key == "message" else "response"]
        thinking += part.get("thinking", "")
        calls += part.get("tool_calls", [])
    return content, thinking, calls, parsed[-1]


SCENARIOS = [TOOL_TEXT, "hi fake:reasoning fake:deltas=20", "x fake:commentary",
             "x fake:reasoning_text", "x fake:cut", "x fake:fail", "x fake:incomplete",
             "x fake:error_event", "x fake:empty"]


@pytest.mark.parametrize("text", SCENARIOS)
@pytest.mark.parametrize("variant", [(None, "think-tags", False), (True, "o3", False),
                                     (False, "think-tags", True), (None, "o3", True)])
def test_split_point_identity(text: str, variant: tuple[Any, str, bool]) -> None:
    stream = fake_stream(text)
    whole = run_bytes(make(*variant), [stream])
    assert run_bytes(make(*variant), [stream[i:i + 1] for i in range(len(stream))]) == whole
    for cuts in ([7], [100, 101, 500], [len(stream) // 2], list(range(3, len(stream), 97))):
        assert run_bytes(make(*variant), chunked(stream, cuts)) == whole


def test_think_tags_stream_with_tool_call_and_final_fields() -> None:
    content, thinking, calls, last = parse_stream(run_bytes(make(), [fake_stream(TOOL_TEXT)]))
    assert content.startswith("<think>**Step 1**") and "</think>Hello! You said: hi" in content
    assert thinking == ""
    assert calls == [{"id": calls[0]["id"], "function": {
        "index": 0, "name": "get_weather", "arguments": {"city": "Paris"}}}]
    assert last["done"] is True and last["done_reason"] == "stop"
    assert last["message"] == {"role": "assistant", "content": ""}
    assert last["prompt_eval_count"] > 0 and last["eval_count"] > 0
    assert last["load_duration"] == 1000 and last["prompt_eval_duration"] == 1000
    assert last["eval_duration"] == 1000 and last["total_duration"] == 3000


@pytest.mark.parametrize(("think", "compat"), [(True, "think-tags"), ("x", "o3")])
def test_thinking_field_or_dropped(think: Any, compat: str) -> None:
    mode = True if think is True else None
    content, thinking, _, _ = parse_stream(run_bytes(make(mode, compat),
                                                     [fake_stream("hi fake:reasoning")]))
    assert content == "Hello! You said: hi"
    assert (thinking.startswith("**Step 1**") and "\n**Step 2**" in thinking) == (mode is True)
    assert (thinking == "") == (mode is None)


def test_think_false_drops_reasoning_even_with_think_tags() -> None:
    content, thinking, _, _ = parse_stream(run_bytes(make(False),
                                                     [fake_stream("hi fake:reasoning")]))
    assert (content, thinking) == ("Hello! You said: hi", "")


def test_escapes_survive_raw_copy() -> None:
    content, _, _, _ = parse_stream(run_bytes(make(), [fake_stream("x fake:deltas=30")]))
    assert '"' in content and "\\" in content and "\n" in content and "é" in content


@pytest.mark.parametrize("text", ["x fake:cut", "x fake:fail", "x fake:error_event"])
def test_failures_end_with_an_error_line(text: str) -> None:
    parsed = lines(run_bytes(make(), [fake_stream(text)]))
    assert set(parsed[-1]) == {"error"} and not any(p.get("done") for p in parsed)


def test_incomplete_is_length() -> None:
    assert lines(run_bytes(make(), [fake_stream("x fake:incomplete")]))[-1]["done_reason"] == \
        "length"


def test_generate_stream() -> None:
    out = run_bytes(make(True, generate=True), [fake_stream("hi fake:reasoning")])
    content, thinking, _, last = parse_stream(out, key="response")
    assert content == "Hello! You said: hi" and thinking.startswith("**Step 1**")
    assert last["context"] == [] and last["response"] == "" and last["done_reason"] == "stop"


def test_heartbeat_writes_nothing() -> None:
    assert make()().heartbeat() == b""


# -- non-stream ------------------------------------------------------------------------------


def collect(text: str) -> OllamaCollector:
    collector = OllamaCollector(clock=clock())
    collector.feed(fake_stream(text))
    collector.finish()
    return collector


def test_chat_object_variants() -> None:
    tags = chat_object(collect(TOOL_TEXT), model="m", created_at="T", think=None,
                       compat="think-tags")
    assert tags["message"]["content"].startswith("<think>**Step 1**")
    assert tags["message"]["content"].endswith("</think>Hello! You said: hi")
    assert tags["message"]["tool_calls"][0]["function"] == {
        "index": 0, "name": "get_weather", "arguments": {"city": "Paris"}}
    assert tags["done"] is True and tags["done_reason"] == "stop"
    assert tags["eval_duration"] == 1000
    shown = chat_object(collect(TOOL_TEXT), model="m", created_at="T", think=True, compat="o3")
    assert shown["message"]["content"] == "Hello! You said: hi"
    assert shown["message"]["thinking"].startswith("**Step 1**")
    hidden = chat_object(collect("hi fake:reasoning"), model="m", created_at="T", think=None,
                         compat="o3")
    assert hidden["message"] == {"role": "assistant", "content": "Hello! You said: hi"}


def test_generate_object() -> None:
    result = generate_object(collect("hi fake:reasoning"), model="m", created_at="T",
                             think=True, compat="think-tags")
    assert result["response"] == "Hello! You said: hi" and result["thinking"]
    assert result["context"] == [] and result["done"] is True


def test_unparseable_arguments_arrive_as_raw() -> None:
    collector = OllamaCollector()
    collector.tool_calls.append({"id": "c", "name": "f", "arguments": "not json"})
    message = chat_object(collector, model="m", created_at="T", think=None,
                          compat="think-tags")["message"]
    assert message["tool_calls"][0]["function"]["arguments"] == {"raw": "not json"}


def test_load_objects_and_created_at() -> None:
    assert load_object("m", "T", "unload", generate=True) == {
        "model": "m", "created_at": "T", "response": "", "done": True, "done_reason": "unload"}
    assert load_object("m", "T", "load", generate=False)["message"]["content"] == ""
    assert created_at(0.5) == "1970-01-01T00:00:00.500000Z"
