"""Chat Completions (and legacy completions) for what the backend can end a turn with:
custom tool calls, citations, failure codes, incomplete reasons, late errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatmock.dialects.chat_stream import chat_completion
from chatmock.dialects.collectors import ResponseCollector
from chatmock.dialects.completions import CompletionStreamTranslator, text_completion
from chatmock.dialects.errors import Dialect, failure_error
from chatmock.testing.fake_items import DEFAULT_PATCH, FAILURES

from .helpers import (
    JSON,
    PATCH_TOOL,
    accepted_upstream,
    fake_stream,
    frame,
    run_bytes,
    sse_payloads,
)
from .test_chat_request import payload as chat_payload
from .test_chat_stream import CREATED, MODEL, parse, translate

PATCH_ARGUMENTS = json.dumps({"input": DEFAULT_PATCH})


def collect(stream: bytes) -> ResponseCollector:
    collector = ResponseCollector()
    collector.feed(stream)
    collector.finish()
    return collector


def whole(text: str, compat: str = "think-tags") -> JSON:
    return chat_completion(collect(fake_stream(text)), model=MODEL, created=CREATED,
                           compat=compat)


def streamed_annotations(out: bytes) -> list[JSON]:
    found: list[JSON] = []
    for chunk in parse(out).chunks:
        for choice in chunk["choices"]:
            found += choice["delta"].get("annotations") or []
    return found


def check_spans(content: str, annotations: list[JSON]) -> None:
    assert len(annotations) == 2
    for note in annotations:
        assert note["type"] == "url_citation"
        cited = note["url_citation"]
        span = content[cited["start_index"]:cited["end_index"]]
        assert span == f"[{cited['title']}]({cited['url']})", (span, content)


# -- custom tool calls --------------------------------------------------------------------


def test_a_custom_tool_call_streams_as_a_function_call() -> None:
    parsed = parse(translate(fake_stream("fake:custom_tool=apply_patch")))
    (call,) = parsed.tool_calls
    assert call["name"] == "apply_patch" and call["id"].startswith("call_")
    assert json.loads(call["arguments"]) == {"input": DEFAULT_PATCH}
    assert parsed.finish == ["tool_calls"]


def test_a_custom_tool_call_in_a_whole_answer() -> None:
    message = whole("fake:tool=f fake:custom_tool=apply_patch")["choices"][0]
    calls = message["message"]["tool_calls"]
    assert [c["function"]["name"] for c in calls] == ["f", "apply_patch"]
    assert calls[1]["function"]["arguments"] == PATCH_ARGUMENTS
    assert message["finish_reason"] == "tool_calls"


def test_custom_tools_go_upstream_as_custom_tools() -> None:
    tools = [{"type": "custom", "custom": {"name": "apply_patch", "description": "Edit",
                                           "format": {"type": "text"}}},
             {"type": "custom", "name": "raw_form"}]
    sent = chat_payload({"messages": [{"role": "user", "content": "hi"}], "tools": tools,
                         "tool_choice": {"type": "custom", "custom": {"name": "apply_patch"}}})
    assert sent["tools"] == [{"type": "custom", "name": "apply_patch", "description": "Edit",
                              "format": {"type": "text"}},
                             {"type": "custom", "name": "raw_form"}]
    assert sent["tool_choice"] == {"type": "custom", "name": "apply_patch"}
    accepted_upstream(sent)


def history(call: JSON) -> list[JSON]:
    return [{"role": "user", "content": "patch it"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_7", "content": "Done!"}]


@pytest.mark.parametrize("call", [
    {"id": "call_7", "type": "function",
     "function": {"name": "apply_patch", "arguments": PATCH_ARGUMENTS}},
    {"id": "call_7", "type": "custom", "custom": {"name": "apply_patch", "input": DEFAULT_PATCH}},
])
def test_a_custom_call_sent_back_is_a_custom_tool_call_again(call: JSON) -> None:
    sent = chat_payload({"messages": history(call), "tools": [PATCH_TOOL]})
    assert sent["input"][1:] == [
        {"type": "custom_tool_call", "call_id": "call_7", "name": "apply_patch",
         "input": DEFAULT_PATCH},
        {"type": "custom_tool_call_output", "call_id": "call_7", "output": "Done!"}]
    accepted_upstream(sent)


@pytest.mark.parametrize(("arguments", "expected"), [
    ('{"input": 5}', '{"input": 5}'), ("not json", "not json"), ('["x"]', '["x"]')])
def test_arguments_of_another_shape_are_the_input(arguments: str, expected: str) -> None:
    call = {"id": "call_7", "function": {"name": "apply_patch", "arguments": arguments}}
    sent = chat_payload({"messages": history(call), "tools": [PATCH_TOOL]})
    assert sent["input"][1]["input"] == expected


def test_function_tools_of_the_same_conversation_stay_function_calls() -> None:
    call = {"id": "call_7", "function": {"name": "get_weather", "arguments": "{}"}}
    sent = chat_payload({"messages": history(call), "tools": [PATCH_TOOL]})
    assert [item["type"] for item in sent["input"][1:]] == ["function_call",
                                                            "function_call_output"]


# -- citations ----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["news fake:citations", "news fake:citations fake:reasoning",
                                  "news fake:citations fake:reasoning=5 fake:reasoning_text",
                                  "news fake:citations fake:commentary fake:reasoning",
                                  "fake:deltas=9 fake:citations"])
@pytest.mark.parametrize("compat", ["think-tags", "o3", "legacy"])
def test_citations_point_into_the_content(text: str, compat: str) -> None:
    out = translate(fake_stream(text), compat)
    parsed = parse(out)
    check_spans(parsed.content, streamed_annotations(out))
    message = whole(text, compat)["choices"][0]["message"]
    check_spans(message["content"], message["annotations"])


def test_annotations_come_before_the_finish() -> None:
    chunks = parse(translate(fake_stream("x fake:citations"))).chunks
    (position,) = [n for n, c in enumerate(chunks) if c["choices"][0]["delta"].get("annotations")]
    assert chunks[position + 1]["choices"][0]["finish_reason"] == "stop"


def test_no_annotations_without_citations() -> None:
    assert "annotations" not in whole("hi fake:websearch=q")["choices"][0]["message"]
    assert not streamed_annotations(translate(fake_stream("hi fake:websearch=q")))


# -- endings --------------------------------------------------------------------------------


@pytest.mark.parametrize(("reason", "finish"), [("max_output_tokens", "length"),
                                                ("content_filter", "content_filter")])
def test_incomplete_reasons(reason: str, finish: str) -> None:
    text = f"hi fake:incomplete={reason}"
    assert parse(translate(fake_stream(text))).finish == [finish]
    assert whole(text)["choices"][0]["finish_reason"] == finish
    completions = sse_payloads(run_bytes(lambda: CompletionStreamTranslator(
        model=MODEL, created=CREATED, include_usage=False), [fake_stream(text)]))
    assert completions[-2]["choices"][0]["finish_reason"] == finish
    collected = collect(fake_stream(text))
    assert text_completion(collected, model=MODEL, created=CREATED)["choices"][0][
        "finish_reason"] == finish


@pytest.mark.parametrize(("code", "error_type"), [
    ("context_length_exceeded", "invalid_request_error"),
    ("invalid_prompt", "invalid_request_error"),
    ("rate_limit_exceeded", "rate_limit_error"), ("server_is_overloaded", "api_error")])
def test_failure_codes_in_a_stream(code: str, error_type: str) -> None:
    parsed = parse(translate(fake_stream(f"hi fake:fail={code}")))
    assert parsed.errors == [{"message": FAILURES[code], "type": error_type, "param": None,
                              "code": code}]
    assert not parsed.finish and parsed.content == ""


def test_a_late_error_ends_the_stream_with_an_error() -> None:
    parsed = parse(translate(fake_stream("one two three four fake:late_error")))
    assert parsed.content == "Hello! You " and not parsed.finish
    assert parsed.errors[0]["code"] == "server_error"
    assert collect(fake_stream("a b c fake:late_error")).error == (
        FAILURES["server_error"], "server_error")


@pytest.mark.parametrize(("code", "status", "retry"), [
    ("context_length_exceeded", 400, None), ("invalid_prompt", 400, None),
    ("rate_limit_exceeded", 429, b"8"), ("server_is_overloaded", 502, None),
    ("server_error", 502, None), ("usage_not_included", 429, None),
    ("token_expired", 401, None)])
def test_failures_of_a_whole_answer(code: str, status: int, retry: bytes | None) -> None:
    error = failure_error(FAILURES.get(code, "m"), code, Dialect.OPENAI)
    assert error.status == status and error.code == code
    assert dict(error.headers).get(b"retry-after") == retry


@pytest.mark.parametrize(("message", "retry"), [
    ("Please try again in 11.054s.", b"12"), ("try again in 250ms", b"1"),
    ("Try again in 3 seconds", b"3"), ("no hint", None)])
def test_retry_after_from_the_message(message: str, retry: Any) -> None:
    error = failure_error(message, "rate_limit_exceeded", Dialect.OLLAMA)
    assert dict(error.headers).get(b"retry-after") == retry
    assert failure_error(message, "rate_limit_exceeded", Dialect.ANTHROPIC).status == 429


# -- odd items --------------------------------------------------------------------------------

odd_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["type", "text", "annotations", "start_index", "end_index", "url"]),
        children, max_size=4),
    max_leaves=10)
names = st.text(min_size=1, max_size=4)
citations = st.fixed_dictionaries({"type": st.just("url_citation")},
                                  optional={"start_index": odd_values, "url": odd_values})
text_parts = st.fixed_dictionaries({"type": st.just("output_text")}, optional={
    "text": odd_values, "annotations": odd_values | st.lists(citations, max_size=2)})
odd_items = st.fixed_dictionaries(
    {"type": st.sampled_from(["message", "reasoning", "custom_tool_call", "function_call"]),
     "name": names},
    optional={"input": odd_values, "summary": odd_values,
              "content": odd_values | st.lists(text_parts, max_size=2)})


@settings(max_examples=150, deadline=None)
@given(items=st.lists(st.tuples(st.booleans(), odd_items), max_size=5),
       compat=st.sampled_from(["think-tags", "o3", "legacy"]))
def test_odd_items_give_a_well_formed_stream(items: list[tuple[bool, JSON]],
                                             compat: str) -> None:
    kinds = ("response.output_item.added", "response.output_item.done")
    stream = b"".join(frame(kinds[done], {"item": {**item, "id": f"i{n}", "call_id": f"c{n}"}})
                      for n, (done, item) in enumerate(items))
    stream += frame("response.completed", {"response": {"id": "r"}})
    parsed = parse(translate(stream, compat))
    assert parsed.finish and not parsed.errors
    result = chat_completion(collect(stream), model=MODEL, created=CREATED, compat=compat)
    json.dumps(result)
