"""chatmock.dialects.events + chat_stream: Codex Responses events → Chat Completions."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatmock import jsonbytes
from chatmock.dialects.chat_stream import DONE_LINE, ChatStreamTranslator, chat_completion
from chatmock.dialects.collectors import ResponseCollector
from chatmock.dialects.events import TRUNCATED_MESSAGE, error_of, map_usage
from chatmock.dialects.machine import State
from chatmock.testing.fake_events import COMMENTARY_TEXT, numbered_delta

from .helpers import (
    JSON,
    TOOL_TEXT,
    chunked,
    fake_stream,
    frame,
    run_bytes,
    sse_payloads,
    whole_bytewise_and_splits,
)

MODEL = "gpt-5.4-high"
CREATED = 1_785_060_000
ANSWER = "Hello! You said: hi"
S1 = "**Step 1**\n\nthought 1.1 thought 1.2 "
S2 = "**Step 2**\n\nthought 2.1 thought 2.2 "
RAW = "raw0 raw1 raw2 "
DELTAS_20 = "".join(numbered_delta(i) for i in range(20))
FAILED_MESSAGE = "The fake backend failed this response"
RATE_LIMIT_MESSAGE = "Rate limit reached for the fake backend. Please try again later."
COMPATS = ("think-tags", "o3", "legacy")


def make(compat: str = "think-tags",
         include_usage: bool = False) -> Callable[[], ChatStreamTranslator]:
    return lambda: ChatStreamTranslator(model=MODEL, created=CREATED, compat=compat,
                                        include_usage=include_usage)


def translate(stream: bytes, compat: str = "think-tags", include_usage: bool = False) -> bytes:
    return run_bytes(make(compat, include_usage), [stream])


@dataclass
class Parsed:
    """What a client reassembles from a chat stream (checked for well-formedness on the way)."""

    chunks: list[JSON] = field(default_factory=list)
    content: str = ""
    o3_reasoning: str = ""
    legacy_summary: str = ""
    legacy_reasoning: str = ""
    tool_calls: list[JSON] = field(default_factory=list)
    finish: list[str] = field(default_factory=list)
    usage: list[JSON] = field(default_factory=list)
    errors: list[JSON] = field(default_factory=list)


def parse(out: bytes) -> Parsed:
    payloads = sse_payloads(out)
    assert payloads[-1] == "[DONE]" and payloads.count("[DONE]") == 1, payloads
    assert out.endswith(DONE_LINE)
    parsed = Parsed()
    body = payloads[:-1]
    for position, payload in enumerate(body):
        if "error" in payload:
            assert set(payload) == {"error"}
            assert position == len(body) - 1, "an error chunk ends the stream"
            parsed.errors.append(payload["error"])
            continue
        parsed.chunks.append(payload)
        _check_chunk(parsed, payload)
    if parsed.chunks:
        first = parsed.chunks[0]["choices"][0]["delta"]
        assert first.get("role") == "assistant", first
        roles = [c for c in parsed.chunks if c["choices"] and "role" in c["choices"][0]["delta"]]
        assert len(roles) == 1
        assert len({c["id"] for c in parsed.chunks}) == 1
    return parsed


def _check_chunk(parsed: Parsed, chunk: JSON) -> None:
    assert chunk["object"] == "chat.completion.chunk"
    assert chunk["created"] == CREATED and chunk["model"] == MODEL
    assert not parsed.usage, "nothing follows the usage chunk but [DONE]"
    if "usage" in chunk:
        assert chunk["choices"] == []
        assert len(parsed.finish) == 1, "usage comes after the finish chunk"
        parsed.usage.append(chunk["usage"])
        return
    (choice,) = chunk["choices"]
    assert choice["index"] == 0
    assert not parsed.finish, "nothing but usage follows the finish chunk"
    if choice["finish_reason"] is not None:
        assert choice["delta"] == {}
        parsed.finish.append(choice["finish_reason"])
        return
    delta = choice["delta"]
    parsed.content += delta.get("content") or ""
    reasoning = delta.get("reasoning")
    if isinstance(reasoning, dict):
        (part,) = reasoning["content"]
        assert part["type"] == "text"
        parsed.o3_reasoning += part["text"]
    elif isinstance(reasoning, str):
        parsed.legacy_reasoning += reasoning
        if "reasoning_summary" in delta:
            assert delta["reasoning_summary"] == reasoning
            parsed.legacy_summary += reasoning
    for call in delta.get("tool_calls") or ():
        _add_tool_delta(parsed.tool_calls, call)


def _add_tool_delta(calls: list[JSON], call: JSON) -> None:
    index = call["index"]
    if index == len(calls):  # first chunk of a new call: id, type and name
        assert call["type"] == "function" and call["id"] and call["function"]["name"], call
        calls.append({"id": call["id"], "name": call["function"]["name"],
                      "arguments": call["function"].get("arguments") or ""})
        return
    assert index < len(calls), f"index {index} skipped ahead"
    assert set(call) == {"index", "function"} and set(call["function"]) == {"arguments"}, call
    calls[index]["arguments"] += call["function"]["arguments"]


def upstream_usage(stream: bytes) -> JSON:
    for line in stream.split(b"\n"):
        if line.startswith(b"data: ") and b'"response.completed"' in line[:60]:
            usage = json.loads(line[6:])["response"]["usage"]
            assert isinstance(usage, dict)
            return usage
    raise AssertionError("no response.completed")


# -- whole scenarios from the fake backend ----------------------------------------------


def test_plain_answer() -> None:
    stream = fake_stream("hi")
    parsed = parse(translate(stream))
    assert parsed.content == ANSWER
    assert parsed.finish == ["stop"]
    assert parsed.tool_calls == [] and parsed.usage == [] and parsed.errors == []
    assert parsed.chunks[0]["id"].startswith("resp_")


def test_text_needing_escapes_survives() -> None:
    parsed = parse(translate(fake_stream("fake:deltas=20")))
    assert parsed.content == DELTAS_20
    assert all(ch in parsed.content for ch in ('"', "\\", "\n", "é", "😀"))
    assert parsed.finish == ["stop"]


def test_long_stream_of_deltas() -> None:
    parsed = parse(translate(fake_stream("fake:deltas=500")))
    assert parsed.content == "".join(numbered_delta(i) for i in range(500))


def test_tool_call_with_reasoning_and_text() -> None:
    parsed = parse(translate(fake_stream(TOOL_TEXT)))
    assert parsed.content == f"<think>{S1}\n{S2}</think>{ANSWER}"
    assert [(c["name"], c["arguments"]) for c in parsed.tool_calls] == [
        ("get_weather", '{"city":"Paris"}')]
    assert parsed.tool_calls[0]["id"].startswith("call_")
    assert parsed.finish == ["tool_calls"]


def test_two_tool_calls_get_stable_indexes() -> None:
    stream = fake_stream('fake:tool=a fake:tool=b fake:args={"x":[1,"\\""]} fake:args=[]')
    parsed = parse(translate(stream))
    assert [(c["name"], c["arguments"]) for c in parsed.tool_calls] == [
        ("a", '{"x":[1,"\\""]}'), ("b", "[]")]
    assert len({c["id"] for c in parsed.tool_calls}) == 2
    assert parsed.content == ""
    assert parsed.finish == ["tool_calls"]


def test_tool_call_without_arguments_directive() -> None:
    parsed = parse(translate(fake_stream("fake:tool=now")))
    assert [(c["name"], c["arguments"]) for c in parsed.tool_calls] == [("now", "{}")]


@pytest.mark.parametrize("include_usage", [False, True])
def test_usage_chunk_only_when_asked(include_usage: bool) -> None:
    stream = fake_stream(TOOL_TEXT)
    parsed = parse(translate(stream, include_usage=include_usage))
    if not include_usage:
        assert parsed.usage == []
        return
    usage = upstream_usage(stream)
    assert parsed.usage == [{
        "prompt_tokens": usage["input_tokens"],
        "completion_tokens": usage["output_tokens"],
        "total_tokens": usage["total_tokens"],
        "prompt_tokens_details": {"cached_tokens": usage["input_tokens_details"]["cached_tokens"]},
        "completion_tokens_details": {
            "reasoning_tokens": usage["output_tokens_details"]["reasoning_tokens"]},
    }]
    assert usage["output_tokens_details"]["reasoning_tokens"] > 0


def test_incomplete_finishes_with_length() -> None:
    parsed = parse(translate(fake_stream("hi fake:incomplete"), include_usage=True))
    assert parsed.content == ANSWER
    assert parsed.finish == ["length"]
    assert len(parsed.usage) == 1 and parsed.errors == []


def test_web_search_items_are_not_tool_calls() -> None:
    parsed = parse(translate(fake_stream("hi fake:websearch=paris")))
    assert parsed.content == ANSWER
    assert parsed.tool_calls == [] and parsed.finish == ["stop"]


def test_commentary_text_is_passed_through_as_its_own_paragraph() -> None:
    # Message phases are not hidden: the preamble reaches the client, set apart from the answer.
    parsed = parse(translate(fake_stream("hi fake:commentary")))
    assert parsed.content == COMMENTARY_TEXT + "\n\n" + ANSWER


# -- reasoning compat modes (spec §1.3) ---------------------------------------------------


def test_think_tags_summary_paragraphs() -> None:
    parsed = parse(translate(fake_stream("hi fake:reasoning"), "think-tags"))
    assert parsed.content == f"<think>{S1}\n{S2}</think>{ANSWER}"
    assert parsed.o3_reasoning == parsed.legacy_reasoning == ""


def test_think_tags_with_full_reasoning_text() -> None:
    parsed = parse(translate(fake_stream("hi fake:reasoning_text"), "think-tags"))
    assert parsed.content == f"<think>{RAW}{S1}\n{S2}</think>{ANSWER}"


def test_think_tags_reasoning_only_closes_at_completion() -> None:
    parsed = parse(translate(fake_stream("fake:reasoning fake:tool=t"), "think-tags"))
    assert parsed.content == f"<think>{S1}\n{S2}</think>"
    assert parsed.finish == ["tool_calls"]


def test_o3_reasoning_field() -> None:
    parsed = parse(translate(fake_stream("hi fake:reasoning_text"), "o3"))
    assert parsed.o3_reasoning == f"{RAW}{S1}\n{S2}"
    assert parsed.content == ANSWER
    assert parsed.legacy_summary == parsed.legacy_reasoning == ""


def test_legacy_reasoning_fields() -> None:
    parsed = parse(translate(fake_stream("hi fake:reasoning_text"), "legacy"))
    assert parsed.legacy_summary == S1 + S2  # no paragraph separators in legacy
    assert parsed.legacy_reasoning == RAW + S1 + S2
    assert parsed.content == ANSWER
    assert parsed.o3_reasoning == ""


@pytest.mark.parametrize("compat", COMPATS)
def test_no_reasoning_gives_no_reasoning_fields(compat: str) -> None:
    parsed = parse(translate(fake_stream("hi"), compat))
    assert parsed.content == ANSWER
    assert parsed.o3_reasoning == parsed.legacy_reasoning == parsed.legacy_summary == ""


# -- endings other than success --------------------------------------------------------------


def test_failed_response() -> None:
    parsed = parse(translate(fake_stream("hi fake:fail")))
    assert parsed.content == "Hello! You "
    assert parsed.finish == []
    assert parsed.errors == [{"message": FAILED_MESSAGE, "type": "api_error", "param": None,
                              "code": "server_error"}]


def test_error_event() -> None:
    parsed = parse(translate(fake_stream("hi fake:error_event")))
    assert parsed.content == "" and parsed.finish == []
    assert [(e["message"], e["code"]) for e in parsed.errors] == [
        (RATE_LIMIT_MESSAGE, "rate_limit_exceeded")]


def test_cut_stream_is_reported_by_finish() -> None:
    translator = make()()
    out = translator.feed(fake_stream("hi fake:cut"))
    assert not out.endswith(DONE_LINE)
    assert translator.state is State.STREAMING
    out += translator.finish()
    parsed = parse(out)
    assert parsed.content == "Hello! You " and parsed.finish == []
    assert [(e["message"], e["code"]) for e in parsed.errors] == [
        (TRUNCATED_MESSAGE, "upstream_truncated")]


def test_empty_stream() -> None:
    stream = fake_stream("hi fake:empty")
    assert stream == b""
    parsed = parse(translate(stream))
    assert parsed.chunks == [] and parsed.finish == []
    assert [e["code"] for e in parsed.errors] == ["upstream_truncated"]


def test_abort_reports_once() -> None:
    translator = make()()
    out = translator.feed(fake_stream("hi fake:cut"))
    out += translator.abort("read timed out", "upstream_timeout")
    parsed = parse(out)
    assert [(e["message"], e["code"]) for e in parsed.errors] == [
        ("read timed out", "upstream_timeout")]
    assert translator.abort("again") == b"" and translator.finish() == b""


def test_nothing_after_the_terminal_event() -> None:
    stream = fake_stream("hi")
    translator = make()()
    out = translator.feed(stream)
    assert translator.state is State.DONE and out.endswith(DONE_LINE)
    assert translator.feed(stream) == b""
    assert translator.feed(frame("response.output_text.delta", {"delta": "late"})) == b""
    assert translator.finish() == b""
    assert translator.abort("late") == b""


# -- split points ------------------------------------------------------------------------------

SPLIT_SCENARIOS = [
    (TOOL_TEXT, "think-tags", True),
    ("fake:deltas=20", "think-tags", False),
    ("hi fake:fail", "think-tags", False),
    ("hi fake:cut", "think-tags", True),
]


@pytest.mark.parametrize(("text", "compat", "include_usage"), SPLIT_SCENARIOS)
def test_stream_output_does_not_depend_on_chunking(text: str, compat: str,
                                                   include_usage: bool) -> None:
    stream = fake_stream(text)
    factory = make(compat, include_usage)
    expected = run_bytes(factory, [stream])
    parse(expected)
    for chunks in whole_bytewise_and_splits(stream):
        assert run_bytes(factory, chunks) == expected, [len(c) for c in chunks]


RANDOM_SPLIT_TEXTS = [TOOL_TEXT, "hi fake:reasoning_text fake:tool=x", "fake:deltas=14",
                      "hi fake:incomplete", "hi fake:error_event", "hi fake:commentary"]
_STREAMS: dict[str, bytes] = {}


def _cached_stream(text: str) -> bytes:
    # The fake's ids and timestamps are fixed per call; one stream per text is enough.
    if text not in _STREAMS:
        _STREAMS[text] = fake_stream(text)
    return _STREAMS[text]


@settings(max_examples=60, deadline=None)
@given(text=st.sampled_from(RANDOM_SPLIT_TEXTS), compat=st.sampled_from(COMPATS),
       include_usage=st.booleans(), cuts=st.lists(st.integers(min_value=0), max_size=40))
def test_stream_output_at_random_split_points(text: str, compat: str, include_usage: bool,
                                              cuts: list[int]) -> None:
    stream = _cached_stream(text)
    factory = make(compat, include_usage)
    assert run_bytes(factory, chunked(stream, cuts)) == run_bytes(factory, [stream])


def _collected(chunks: list[bytes], compat: str) -> tuple[Any, ...]:
    collector = ResponseCollector()
    for chunk in chunks:
        collector.feed(chunk)
    collector.finish()
    if collector.error is not None:
        return ("error", collector.error, collector.text)
    return ("ok", chat_completion(collector, model=MODEL, created=CREATED, compat=compat))


@pytest.mark.parametrize(("text", "compat"), [(TOOL_TEXT, "think-tags"),
                                              ("fake:deltas=20", "o3"),
                                              ("hi fake:cut", "legacy")])
def test_collector_does_not_depend_on_chunking(text: str, compat: str) -> None:
    stream = fake_stream(text)
    expected = _collected([stream], compat)
    for chunks in whole_bytewise_and_splits(stream):
        assert _collected(chunks, compat) == expected


# -- non-streaming: ResponseCollector + chat_completion -------------------------------------


def collect(stream: bytes, compat: str = "think-tags") -> tuple[ResponseCollector, JSON]:
    collector = ResponseCollector()
    collector.feed(stream)
    collector.finish()
    assert collector.error is None, collector.error
    return collector, chat_completion(collector, model=MODEL, created=CREATED, compat=compat)


def test_completion_plain() -> None:
    _, result = collect(fake_stream("hi"))
    assert result["object"] == "chat.completion"
    assert result["id"].startswith("resp_")
    assert result["created"] == CREATED and result["model"] == MODEL
    (choice,) = result["choices"]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop"
    assert choice["message"] == {"role": "assistant", "content": ANSWER}
    json.dumps(result, allow_nan=False)


def test_completion_escapes() -> None:
    _, result = collect(fake_stream("fake:deltas=20"))
    assert result["choices"][0]["message"]["content"] == DELTAS_20


def test_completion_tool_call_and_usage() -> None:
    stream = fake_stream(TOOL_TEXT)
    _, result = collect(stream, "o3")
    (choice,) = result["choices"]
    message = choice["message"]
    assert choice["finish_reason"] == "tool_calls"
    assert message["content"] == ANSWER
    (call,) = message["tool_calls"]
    assert call["id"].startswith("call_") and call["type"] == "function"
    assert call["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    usage = upstream_usage(stream)
    assert result["usage"] == {
        "prompt_tokens": usage["input_tokens"], "completion_tokens": usage["output_tokens"],
        "total_tokens": usage["total_tokens"],
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": usage["output_tokens_details"]["reasoning_tokens"]}}


def test_completion_think_tags() -> None:
    collector, result = collect(fake_stream("hi fake:reasoning_text"), "think-tags")
    assert collector.summary == f"{S1}\n{S2}"
    assert collector.full_reasoning == RAW
    message = result["choices"][0]["message"]
    assert message["content"] == f"<think>{S1}\n{S2}\n\n{RAW}</think>{ANSWER}"
    assert "reasoning" not in message


def test_completion_think_tags_tool_only_gets_string_content() -> None:
    _, result = collect(fake_stream("fake:reasoning fake:tool=t"), "think-tags")
    message = result["choices"][0]["message"]
    assert message["content"] == f"<think>{S1}\n{S2}</think>"
    assert len(message["tool_calls"]) == 1


def test_completion_tool_only_without_reasoning_has_null_content() -> None:
    _, result = collect(fake_stream("fake:tool=t"))
    assert result["choices"][0]["message"]["content"] is None


def test_completion_o3() -> None:
    _, result = collect(fake_stream("hi fake:reasoning_text"), "o3")
    message = result["choices"][0]["message"]
    assert message["reasoning"] == {"content": [{"type": "text", "text": f"{S1}\n{S2}\n\n{RAW}"}]}
    assert message["content"] == ANSWER


def test_completion_legacy() -> None:
    _, result = collect(fake_stream("hi fake:reasoning_text"), "legacy")
    message = result["choices"][0]["message"]
    assert message["reasoning_summary"] == f"{S1}\n{S2}"
    assert message["reasoning"] == RAW
    assert message["content"] == ANSWER
    _, summary_only = collect(fake_stream("hi fake:reasoning"), "legacy")
    assert "reasoning" not in summary_only["choices"][0]["message"]


def test_completion_incomplete() -> None:
    _, result = collect(fake_stream("hi fake:incomplete"))
    assert result["choices"][0]["finish_reason"] == "length"
    assert result["choices"][0]["message"]["content"] == ANSWER


@pytest.mark.parametrize(("text", "error"), [
    ("hi fake:fail", (FAILED_MESSAGE, "server_error")),
    ("hi fake:error_event", (RATE_LIMIT_MESSAGE, "rate_limit_exceeded")),
    ("hi fake:cut", (TRUNCATED_MESSAGE, "upstream_truncated")),
    ("hi fake:empty", (TRUNCATED_MESSAGE, "upstream_truncated")),
])
def test_collector_errors(text: str, error: tuple[str, str]) -> None:
    collector = ResponseCollector()
    collector.feed(fake_stream(text))
    collector.finish()
    assert collector.error == error
    assert collector.state is State.DONE


# -- hand-written upstream events ------------------------------------------------------------

CREATED_EVENT = frame("response.created", {"response": {"id": "resp_h", "status": "in_progress"}})
COMPLETED_EVENT = frame("response.completed",
                        {"response": {"id": "resp_h", "status": "completed",
                                      "usage": {"input_tokens": 3, "output_tokens": 2}}})


def hand(*events: bytes, compat: str = "think-tags", include_usage: bool = False) -> Parsed:
    return parse(translate(b"".join(events), compat, include_usage))


def text_event(data: bytes, event_line: bool = True) -> bytes:
    """An event whose JSON may span lines (each becomes its own `data:` line)."""
    head = b"event: response.output_text.delta\n" if event_line else b""
    return head + b"".join(b"data: " + line + b"\n" for line in data.split(b"\n")) + b"\n"


@pytest.mark.parametrize("data", [
    b'{"type":"response.output_text.delta","delta":"caf\\u00e9 \\"q\\" \\\\ \\n\xf0\x9f\x98\x80"}',
    b'{"type": "response.output_text.delta", "delta": "caf\\u00e9 \\"q\\" \\\\ \\n'
    b'\xf0\x9f\x98\x80"}',
    b'{\n  "type": "response.output_text.delta",\n  "delta" :\t"caf\\u00e9 \\"q\\" \\\\ \\n'
    b'\xf0\x9f\x98\x80"\n}',
    # A nested object before the member: the fast path gives up and the JSON is parsed.
    b'{"type":"response.output_text.delta","logprobs":{"a":1},"delta":"caf\xc3\xa9 \\"q\\" '
    b'\\\\ \\n\\ud83d\\ude00"}',
    b'{"obfuscation":{"x":"\\"delta\\":\\"no\\""},"delta":"caf\\u00e9 \\"q\\" \\\\ \\n\\ud83d'
    b'\\ude00","type":"response.output_text.delta"}',
])
def test_delta_formats_give_the_same_text(data: bytes) -> None:
    for with_event_line in (True, False):
        delta = text_event(data, with_event_line)
        parsed = hand(CREATED_EVENT, delta, COMPLETED_EVENT)
        assert parsed.content == 'café "q" \\ \n😀'
        assert parsed.finish == ["stop"]


def test_missing_event_lines() -> None:
    with_lines = translate(fake_stream(TOOL_TEXT))
    stripped = b"\n".join(line for line in fake_stream(TOOL_TEXT).split(b"\n")
                          if not line.startswith(b"event: "))
    assert translate(stripped) == with_lines


def test_unknown_and_ignored_events_change_nothing() -> None:
    delta = frame("response.output_text.delta", {"item_id": "m", "delta": "x"})
    plain = translate(CREATED_EVENT + delta + COMPLETED_EVENT)
    noise = b"".join([
        frame("response.brand_new_event", {"delta": "nope"}),
        frame("response.web_search_call.searching", {"item_id": "ws"}),
        frame("response.output_text.done", {"text": "x"}),
        frame("response.content_part.added", {"part": {"text": ""}}),
        frame("response.function_call_arguments.delta", {"item_id": "unknown", "delta": "{"}),
        frame("response.output_item.done", {"item": {"type": "web_search_call", "id": "ws"}}),
        frame("response.output_item.done", {"item": "not an object"}),
        frame("response.output_text.delta", {"delta": ""}),
        frame("response.output_text.delta", {"delta": 5}),
        frame("response.output_text.delta", {}),
        b"data: not json\n\n",
        b"data: []\n\n",
        b": keep-alive comment\n\n",
        b"event: response.output_text.delta\n\n",
    ])
    assert translate(CREATED_EVENT + noise + delta + noise + COMPLETED_EVENT) == plain


def test_events_after_a_terminal_event_are_ignored() -> None:
    late = b"".join([frame("response.output_text.delta", {"delta": "late"}),
                     frame("response.failed", {"response": {"error": {"message": "late"}}}),
                     COMPLETED_EVENT, b"data: [DONE]\n\n"])
    assert translate(CREATED_EVENT + COMPLETED_EVENT + late) == translate(
        CREATED_EVENT + COMPLETED_EVENT)
    parsed = hand(CREATED_EVENT, frame("response.failed", {}), late)
    assert [e["message"] for e in parsed.errors] == ["the backend failed the response"]


def test_upstream_done_line_without_completion_is_a_truncation() -> None:
    parsed = hand(CREATED_EVENT, frame("response.output_text.delta", {"delta": "a"}),
                  b"data: [DONE]\n\n")
    assert parsed.content == "a"
    assert [e["code"] for e in parsed.errors] == ["upstream_truncated"]


def test_text_before_created_still_starts_with_the_role_chunk() -> None:
    parsed = hand(frame("response.output_text.delta", {"delta": "a"}), CREATED_EVENT,
                  COMPLETED_EVENT)
    assert parsed.content == "a"
    assert parsed.chunks[0]["id"].startswith("chatcmpl-")


def test_completed_alone() -> None:
    parsed = hand(COMPLETED_EVENT, include_usage=True)
    assert [c["id"] for c in parsed.chunks] == ["resp_h"] * 3
    assert parsed.content == "" and parsed.finish == ["stop"]
    assert parsed.usage == [{"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}]


def test_usage_chunk_needs_usage() -> None:
    parsed = hand(CREATED_EVENT, frame("response.completed", {"response": {"id": "resp_h"}}),
                  include_usage=True)
    assert parsed.usage == [] and parsed.finish == ["stop"]


def test_incomplete_for_content_filter() -> None:
    event = frame("response.incomplete",
                  {"response": {"incomplete_details": {"reason": "content_filter"}}})
    assert hand(CREATED_EVENT, event).finish == ["content_filter"]
    assert hand(CREATED_EVENT, frame("response.incomplete", {})).finish == ["length"]


def fc_added(item_id: str, call_id: str, name: str) -> bytes:
    return frame("response.output_item.added", {"item": {
        "type": "function_call", "id": item_id, "call_id": call_id, "name": name,
        "arguments": ""}})


def fc_done(item_id: str, call_id: str, name: str, arguments: Any) -> bytes:
    return frame("response.output_item.done", {"item": {
        "type": "function_call", "id": item_id, "call_id": call_id, "name": name,
        "arguments": arguments}})


def args_delta(item_id: str, delta: str) -> bytes:
    return frame("response.function_call_arguments.delta", {"item_id": item_id, "delta": delta})


def test_interleaved_tool_calls() -> None:
    parsed = hand(CREATED_EVENT, fc_added("fc_1", "call_1", "a"), fc_added("fc_2", "call_2", "b"),
                  args_delta("fc_2", '{"y"'), args_delta("fc_1", '{"x"'),
                  args_delta("fc_2", ":2}"), args_delta("fc_1", ":1}"),
                  fc_done("fc_2", "call_2", "b", '{"y":2}'),
                  fc_done("fc_1", "call_1", "a", '{"x":1}'), COMPLETED_EVENT)
    assert parsed.tool_calls == [{"id": "call_1", "name": "a", "arguments": '{"x":1}'},
                                 {"id": "call_2", "name": "b", "arguments": '{"y":2}'}]
    assert parsed.finish == ["tool_calls"]


def test_tool_call_seen_only_when_done() -> None:
    parsed = hand(CREATED_EVENT, fc_done("fc_1", "call_1", "a", '{"q":"\\n"}'), COMPLETED_EVENT)
    assert parsed.tool_calls == [{"id": "call_1", "name": "a", "arguments": '{"q":"\\n"}'}]
    assert parsed.finish == ["tool_calls"]


def test_tool_call_without_argument_deltas_gets_them_at_done() -> None:
    parsed = hand(CREATED_EVENT, fc_added("fc_1", "call_1", "a"),
                  fc_done("fc_1", "call_1", "a", '{"x":"é"}'), COMPLETED_EVENT)
    assert parsed.tool_calls == [{"id": "call_1", "name": "a", "arguments": '{"x":"é"}'}]


def test_tool_call_arguments_as_object() -> None:
    parsed = hand(CREATED_EVENT, fc_done("fc_1", "call_1", "a", {"x": 1}), COMPLETED_EVENT)
    assert json.loads(parsed.tool_calls[0]["arguments"]) == {"x": 1}


def test_think_tags_drop_reasoning_after_visible_text() -> None:
    summary = frame("response.reasoning_summary_text.delta", {"delta": "thinking"})
    parsed = hand(CREATED_EVENT, summary, frame("response.output_text.delta", {"delta": "A"}),
                  summary, frame("response.output_text.delta", {"delta": "B"}), COMPLETED_EVENT)
    assert parsed.content == "<think>thinking</think>AB"


def test_think_tags_close_before_a_tool_call() -> None:
    summary = frame("response.reasoning_summary_text.delta", {"delta": "plan"})
    parsed = hand(CREATED_EVENT, summary, fc_done("fc_1", "call_1", "a", "{}"), summary,
                  COMPLETED_EVENT)
    # The block closes before the call, and reasoning after the call is dropped.
    deltas = [c["choices"][0]["delta"] for c in parsed.chunks]
    assert deltas == [
        {"role": "assistant", "content": ""}, {"content": "<think>plan"}, {"content": "</think>"},
        {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                         "function": {"name": "a", "arguments": "{}"}}]},
        {}]


@pytest.mark.parametrize("compat", COMPATS)
def test_summary_paragraph_separator(compat: str) -> None:
    part = frame("response.reasoning_summary_part.added", {})
    parsed = hand(CREATED_EVENT, part, frame("response.reasoning_summary_text.delta",
                                             {"delta": "one"}),
                  part, part, frame("response.reasoning_summary_text.delta", {"delta": "two"}),
                  COMPLETED_EVENT, compat=compat)
    expected = {"think-tags": "<think>one\ntwo</think>", "o3": "one\ntwo", "legacy": "onetwo"}
    got = {"think-tags": parsed.content, "o3": parsed.o3_reasoning,
           "legacy": parsed.legacy_summary}
    assert got[compat] == expected[compat]


def test_error_event_shapes() -> None:
    assert error_of({"type": "error", "code": "c", "message": "m"}) == ("m", "c")
    assert error_of({"type": "error", "error": {"type": "t", "message": "m"}}) == ("m", "t")
    assert error_of({"response": {"error": {"code": "x", "message": "y"}}}) == ("y", "x")
    assert error_of({"response": {"error": None}}) == ("the backend failed the response",
                                                       "upstream_error")
    assert error_of({}) == ("the backend failed the response", "upstream_error")


def test_map_usage() -> None:
    assert map_usage(None) is None
    assert map_usage("x") is None
    assert map_usage({}) == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    assert map_usage({"input_tokens": 5, "output_tokens": 7}) == {
        "prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
    assert map_usage({"input_tokens": 5, "output_tokens": 7, "total_tokens": 20,
                      "input_tokens_details": {"cached_tokens": 4},
                      "output_tokens_details": {"reasoning_tokens": 3}}) == {
        "prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 20,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 3}}
    assert map_usage({"input_tokens_details": None, "output_tokens_details": {}}) == {
        "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


def test_collector_hand_written() -> None:
    collector = ResponseCollector()
    collector.feed(b"".join([
        CREATED_EVENT,
        frame("response.output_text.delta", {"delta": "a\\"}),
        frame("response.output_text.delta", {"delta": '"b'}),
        fc_done("fc_1", "", "f", "{}"),
        frame("response.completed", {"response": {}}),
    ]))
    result = chat_completion(collector, model=MODEL, created=CREATED, compat="think-tags")
    assert result["id"] == "resp_h"
    message = result["choices"][0]["message"]
    assert message["content"] == 'a\\"b'
    assert message["tool_calls"] == [{"id": "fc_1", "type": "function",
                                      "function": {"name": "f", "arguments": "{}"}}]
    assert "usage" not in result


# -- garbage ------------------------------------------------------------------------------------

EVENT_TYPES = ["response.created", "response.output_item.added", "response.output_item.done",
               "response.output_text.delta", "response.reasoning_summary_part.added",
               "response.reasoning_summary_text.delta", "response.reasoning_text.delta",
               "response.function_call_arguments.delta", "response.completed",
               "response.incomplete", "response.failed", "error", "response.other"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(["id", "call_id", "type", "name", "arguments", "usage",
                                       "input_tokens", "error", "message", "x"]), children,
                      max_size=4),
    max_leaves=8)
event_fields = st.fixed_dictionaries({}, optional={
    "delta": json_values, "item_id": json_values, "item": json_values, "response": json_values,
    "message": json_values, "code": json_values})


@settings(max_examples=200, deadline=None)
@given(events=st.lists(st.tuples(st.sampled_from(EVENT_TYPES), event_fields), max_size=12),
       compat=st.sampled_from(COMPATS), cuts=st.lists(st.integers(min_value=0), max_size=5))
def test_any_well_formed_events_give_a_well_formed_stream(
        events: list[tuple[str, JSON]], compat: str, cuts: list[int]) -> None:
    stream = b"".join(frame(kind, fields, event_line=bool(len(fields) % 2))
                      for kind, fields in events)
    out = run_bytes(make(compat, include_usage=True), chunked(stream, cuts))
    parsed = parse(out)
    assert len(parsed.finish) + len(parsed.errors) == 1
    collector = ResponseCollector()
    collector.feed(stream)
    collector.finish()
    if collector.error is None:
        result = chat_completion(collector, model=MODEL, created=CREATED, compat=compat)
        json.dumps(result)


@settings(max_examples=200, deadline=None)
@given(garbage=st.binary(max_size=300))
def test_garbage_bytes_do_not_crash_the_translators(garbage: bytes) -> None:
    for prefix in (b"", b"data: ", b'data: {"type":"response.output_text.delta","delta":"'):
        parse(translate(prefix + garbage))
        collector = ResponseCollector()
        collector.feed(prefix + garbage)
        collector.finish()


usage_values = (st.none() | st.booleans() | st.integers(min_value=-5, max_value=10**6)
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=4)
                | st.lists(st.integers(), max_size=2))
usage_objects = st.fixed_dictionaries({}, optional={
    "input_tokens": usage_values, "output_tokens": usage_values, "total_tokens": usage_values,
    "input_tokens_details": usage_values | st.fixed_dictionaries(
        {}, optional={"cached_tokens": usage_values}),
    "output_tokens_details": usage_values | st.fixed_dictionaries(
        {}, optional={"reasoning_tokens": usage_values})})


@settings(max_examples=300, deadline=None)
@given(usage=usage_objects)
def test_odd_usage_objects_do_not_break_the_stream(usage: JSON) -> None:
    completed = frame("response.completed", {"response": {"id": "resp_h", "usage": usage}})
    parsed = hand(CREATED_EVENT, completed, include_usage=True)
    assert parsed.finish == ["stop"]
    for mapped in parsed.usage:
        assert all(isinstance(mapped[key], int) for key in
                   ("prompt_tokens", "completion_tokens", "total_tokens"))


GARBAGE_SLOTS = [
    b'data: {"type":"response.output_text.delta","delta":"%s"}\n\n',
    b'data: {"type":"response.reasoning_summary_text.delta","delta":"%s"}\n\n',
    b'data: {"type":"response.function_call_arguments.delta","item_id":"%s","delta":"x"}\n\n',
    b'data: {"type":"response.function_call_arguments.delta","item_id":"fc_1","delta":"%s"}\n\n',
    b'data: {"type":"%s","delta":"x"}\n\n',
]


@settings(max_examples=300, deadline=None)
@given(garbage=st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"").replace(b"\r", b"")),
       slot=st.sampled_from(GARBAGE_SLOTS))
def test_garbage_inside_a_string_does_not_crash(garbage: bytes, slot: bytes) -> None:
    # Invalid escapes or UTF-8 from the backend: passed on as they are, but never a crash.
    event = slot.replace(b"%s", garbage)
    stream = CREATED_EVENT + fc_added("fc_1", "call_1", "f") + event + COMPLETED_EVENT
    for compat in COMPATS:
        translate(stream, compat)
    collector = ResponseCollector()
    collector.feed(stream)
    collector.finish()
    chat_completion(collector, model=MODEL, created=CREATED, compat="think-tags")


def test_argument_deltas_match_an_escaped_item_id() -> None:
    delta = b'data: {"type":"response.function_call_arguments.delta","item_id":"fc\\u005f1",' \
            b'"delta":"{}"}\n\n'
    translator = make()()
    translator.feed(CREATED_EVENT + fc_added("fc_1", "call_1", "f"))
    (chunk,) = sse_payloads(translator.feed(delta))  # forwarded as it arrives
    assert chunk["choices"][0]["delta"]["tool_calls"] == [
        {"index": 0, "function": {"arguments": "{}"}}]
    assert translator.feed(fc_done("fc_1", "call_1", "f", "{}")) == b""  # not sent twice


def test_a_surrogate_pair_split_over_two_deltas() -> None:
    # Valid JSON text; the second delta takes the parsing path, which must re-escape it.
    fast = b'data: {"type":"response.output_text.delta","delta":"a\\ud83d"}\n\n'
    slow = b'data: {"type":"response.output_text.delta","m":{},"delta":"\\ude00b"}\n\n'
    stream = CREATED_EVENT + fast + slow + COMPLETED_EVENT
    parsed = hand(stream)
    assert parsed.content == "a\ud83d\ude00b"  # each chunk holds one half
    collector = ResponseCollector()
    collector.feed(stream)
    result = chat_completion(collector, model=MODEL, created=CREATED, compat="o3")
    assert result["choices"][0]["message"]["content"] == "a😀b"
    assert json.loads(jsonbytes.dumps(result)) == result
