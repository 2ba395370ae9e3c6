"""chatmock.dialects.anthropic_stream: Codex Responses events → Anthropic Messages.

Every stream is checked three ways: the framing and block discipline rules of
Anthropic's stream (`check_events`, stricter than the Python SDK: one block
open at a time, indexes in order), the official SDK's own accumulator
(`accumulate_event`, what `messages.stream()` runs) over the events as SDK
models, and for whole scenarios the SDK end to end (`messages.stream()` →
`get_final_message()` over a mock HTTP transport).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anthropic
import httpx2
import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import (
    Message,
    RawContentBlockDeltaEvent,
    RawContentBlockStartEvent,
    RawContentBlockStopEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    RawMessageStopEvent,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from chatmock.dialects.anthropic_stream import (
    PING,
    MessagesStreamTranslator,
    error_type,
    message_object,
    tool_input,
    usage_of,
)
from chatmock.dialects.chat_stream import KEEP_ALIVE
from chatmock.dialects.collectors import MessagesCollector
from chatmock.dialects.events import TRUNCATED_MESSAGE, UpstreamTranslator
from chatmock.dialects.signatures import account_tag, mint
from chatmock.testing.fake_events import COMMENTARY_TEXT, numbered_delta
from chatmock.testing.fake_mint import encrypted_reasoning

from .helpers import (
    JSON,
    TOOL_TEXT,
    chunked,
    fake_stream,
    frame,
    run_bytes,
    whole_bytewise_and_splits,
)

MODEL = "claude-sonnet-5"
ESTIMATE = 42
ANSWER = "Hello! You said: hi"
S1 = "**Step 1**\n\nthought 1.1 thought 1.2 "
S2 = "**Step 2**\n\nthought 2.1 thought 2.2 "
RAW = "raw0 raw1 raw2 "
DELTAS_20 = "".join(numbered_delta(i) for i in range(20))
FAILED_MESSAGE = "The fake backend failed this response"
RATE_LIMIT_MESSAGE = "Rate limit reached for the fake backend. Please try again later."
EVENT_MODELS: dict[str, Any] = {
    "message_start": RawMessageStartEvent, "message_delta": RawMessageDeltaEvent,
    "message_stop": RawMessageStopEvent, "content_block_start": RawContentBlockStartEvent,
    "content_block_delta": RawContentBlockDeltaEvent,
    "content_block_stop": RawContentBlockStopEvent}
SIGNED = mint("gAAA", "")  # what the translators (no account given) make of "gAAA"
DELTA_FOR = {"text": "text_delta", "thinking": "thinking_delta", "tool_use": "input_json_delta"}


def make(thinking: bool = True) -> Callable[[], MessagesStreamTranslator]:
    return lambda: MessagesStreamTranslator(model=MODEL, thinking=thinking,
                                            input_tokens=ESTIMATE)


def translate(stream: bytes, thinking: bool = True) -> bytes:
    return run_bytes(make(thinking), [stream])


# -- checking a stream -----------------------------------------------------------------------


def events_of(out: bytes) -> list[JSON]:
    """The events of an Anthropic SSE body: `event: <type>` then one `data:` line each."""
    assert out.endswith(b"\n\n"), out[-200:]
    events: list[JSON] = []
    for block in out.split(b"\n\n")[:-1]:
        head, _, data = block.partition(b"\n")
        assert head.startswith(b"event: ") and data.startswith(b"data: "), block
        assert b"\n" not in data, block
        event = json.loads(data[len(b"data: "):])
        assert event["type"] == head[len(b"event: "):].decode(), block
        events.append(event)
    return events


def check_events(events: list[JSON]) -> None:
    """Anthropic's stream discipline, as the strictest clients expect it."""
    if events[0]["type"] == "error":
        assert len(events) == 1, "an error before message_start comes alone"
        return
    assert [e["type"] for e in events[:2]] == ["message_start", "ping"]
    open_block: str | None = None
    next_index = 0
    ended = False
    for position, event in enumerate(events[2:], start=2):
        kind = event["type"]
        assert not ended or kind == "message_stop", f"{kind} after message_delta"
        if kind == "error":
            assert position == len(events) - 1, "nothing follows an error"
        elif kind == "content_block_start":
            assert open_block is None, "two blocks open at once"
            assert event["index"] == next_index
            open_block = event["content_block"]["type"]
            next_index += 1
        elif kind == "content_block_delta":
            assert event["index"] == next_index - 1 and open_block is not None
            delta_type = event["delta"]["type"]
            allowed = {DELTA_FOR[open_block]} | ({"signature_delta"} if open_block == "thinking"
                                                 else set())
            assert delta_type in allowed, (open_block, delta_type)
        elif kind == "content_block_stop":
            assert event["index"] == next_index - 1 and open_block is not None
            open_block = None
        elif kind == "message_delta":
            assert open_block is None, "message_delta with a block still open"
            ended = True
        elif kind == "message_stop":
            assert ended and position == len(events) - 1
        else:
            assert kind == "ping", kind
    last = events[-1]["type"]
    assert last in ("message_stop", "error"), last


def sdk_accumulate(events: list[JSON]) -> Any:
    """Run the SDK's own accumulator over the events, parsed into the SDK's models."""
    snapshot: Any = None
    json_bufs: dict[int, bytes] = {}
    for event in events:
        model = EVENT_MODELS.get(event["type"])
        if model is None:  # ping and error never reach the accumulator
            continue
        parsed = model.model_validate(event)
        snapshot = accumulate_event(event=parsed, current_snapshot=snapshot, json_bufs=json_bufs)
    return snapshot


def sdk_final_message(out: bytes) -> Any:
    """`messages.stream()` → `get_final_message()` of the official SDK over `out`."""
    def reply(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=out)

    http = httpx2.Client(transport=httpx2.MockTransport(reply))
    with anthropic.Anthropic(api_key="k", base_url="http://chatmock.test", http_client=http,
                             max_retries=0) as client, client.messages.stream(
            model=MODEL, max_tokens=100, messages=[{"role": "user", "content": "hi"}]) as stream:
        return stream.get_final_message()


def parse(out: bytes) -> list[JSON]:
    events = events_of(out)
    check_events(events)
    sdk_accumulate(events)
    return events


def final(out: bytes) -> JSON:
    """The message a client rebuilds from a successful stream (checked every way)."""
    events = parse(out)
    snapshot = sdk_accumulate(events)
    message = sdk_final_message(out)
    assert message.model_dump() == snapshot.model_dump()
    dumped: JSON = Message.model_validate(message.model_dump()).model_dump(exclude_none=True)
    return dumped


def collect(stream: bytes, thinking: bool = True) -> JSON:
    collector = MessagesCollector()
    collector.feed(stream)
    collector.finish()
    assert collector.error is None, collector.error
    result = message_object(collector, model=MODEL, thinking=thinking, input_tokens=ESTIMATE)
    Message.model_validate(result)
    assert json.loads(json.dumps(result)) == result
    return result


def both(text: str, thinking: bool = True) -> JSON:
    """Streamed and non-stream renderings of one fake answer agree; the message."""
    stream = fake_stream(text)
    streamed = final(translate(stream, thinking))
    whole = collect(stream, thinking)
    assert Message.model_validate(whole).model_dump(exclude_none=True) == streamed
    return whole


def blocks(message: JSON) -> list[tuple[str, Any]]:
    summary: list[tuple[str, Any]] = []
    for block in message["content"]:
        kind = block["type"]
        value = {"text": block.get("text"), "thinking": block.get("thinking"),
                 "tool_use": (block.get("name"), block.get("input"))}[kind]
        summary.append((kind, value))
    return summary


# -- whole scenarios from the fake backend -----------------------------------------------------


def test_plain_answer() -> None:
    message = both("hi")
    assert blocks(message) == [("text", ANSWER)]
    assert message["stop_reason"] == "end_turn" and message["stop_sequence"] is None
    assert message["id"].startswith("resp_") and message["model"] == MODEL
    assert message["usage"]["output_tokens"] > 0


def test_message_start_and_ping_come_with_created() -> None:
    translator = make()()
    stream = fake_stream("hi")
    created = stream[:stream.index(b"\n\n") + 2]
    out = translator.feed(created)
    start, ping = events_of(out)
    assert out.endswith(PING) and ping == {"type": "ping"}
    message = start["message"]
    assert message["content"] == [] and message["stop_reason"] is None
    assert message["usage"] == {"input_tokens": ESTIMATE, "cache_creation_input_tokens": 0,
                                "cache_read_input_tokens": 0, "output_tokens": 0}
    assert message["model"] == MODEL and message["role"] == "assistant"


def test_text_needing_escapes_survives() -> None:
    message = both("fake:deltas=20")
    assert blocks(message) == [("text", DELTAS_20)]
    assert all(ch in DELTAS_20 for ch in ('"', "\\", "\n", "é", "😀"))


def test_text_block_start_has_empty_text() -> None:
    events = parse(translate(fake_stream("hi")))
    starts = [e for e in events if e["type"] == "content_block_start"]
    assert starts == [{"type": "content_block_start", "index": 0,
                       "content_block": {"type": "text", "text": ""}}]
    deltas = [e["delta"]["text"] for e in events if e["type"] == "content_block_delta"]
    assert len(deltas) > 1 and "".join(deltas) == ANSWER


def test_reasoning_as_a_thinking_block_with_signature() -> None:
    message = both("hi fake:reasoning")
    assert blocks(message) == [("thinking", f"{S1}\n{S2}"), ("text", ANSWER)]
    assert message["content"][0]["signature"] == mint(encrypted_reasoning("rs_2", "acc"), "")


def test_signature_delta_just_before_the_thinking_block_stops() -> None:
    events = parse(translate(fake_stream("hi fake:reasoning")))
    stop = next(i for i, e in enumerate(events) if e["type"] == "content_block_stop")
    assert events[stop - 1]["delta"] == {"type": "signature_delta",
                                         "signature": mint(encrypted_reasoning("rs_2", "acc"), "")}
    signatures = [e for e in events if e.get("delta", {}).get("type") == "signature_delta"]
    assert len(signatures) == 1


def test_reasoning_dropped_without_thinking() -> None:
    message = both("hi fake:reasoning", thinking=False)
    assert blocks(message) == [("text", ANSWER)]
    assert b'"type":"thinking' not in translate(fake_stream("hi fake:reasoning"), thinking=False)


def test_full_reasoning_text_joins_the_thinking_block() -> None:
    message = both("hi fake:reasoning_text")
    assert blocks(message) == [("thinking", f"{RAW}\n\n{S1}\n{S2}"), ("text", ANSWER)]


def test_tool_call_with_reasoning_and_text() -> None:
    message = both(TOOL_TEXT)
    assert blocks(message) == [("thinking", f"{S1}\n{S2}"), ("text", ANSWER),
                               ("tool_use", ("get_weather", {"city": "Paris"}))]
    assert message["content"][2]["id"].startswith("call_")
    assert message["stop_reason"] == "tool_use"


def test_tool_arguments_stream_as_they_arrive() -> None:
    events = parse(translate(fake_stream(TOOL_TEXT)))
    partial = [e["delta"]["partial_json"] for e in events
               if e.get("delta", {}).get("type") == "input_json_delta"]
    assert len(partial) > 1 and "".join(partial) == '{"city":"Paris"}'
    (start,) = [e for e in events if e["type"] == "content_block_start"
                and e["content_block"]["type"] == "tool_use"]
    assert start["content_block"]["input"] == {}


def test_two_tool_calls() -> None:
    message = both('fake:tool=a fake:tool=b fake:args={"x":[1,"\\""]} fake:args={"y":null}')
    assert blocks(message) == [("tool_use", ("a", {"x": [1, '"']})),
                               ("tool_use", ("b", {"y": None}))]
    assert len({block["id"] for block in message["content"]}) == 2
    assert message["stop_reason"] == "tool_use"


def test_tool_call_without_arguments_directive() -> None:
    assert blocks(both("fake:tool=now")) == [("tool_use", ("now", {}))]


def test_incomplete_stops_with_max_tokens() -> None:
    message = both("hi fake:incomplete")
    assert message["stop_reason"] == "max_tokens"
    assert blocks(message) == [("text", ANSWER)]


def test_commentary_gets_its_own_text_block() -> None:
    message = both("hi fake:commentary")
    assert blocks(message) == [("text", COMMENTARY_TEXT), ("text", ANSWER)]


def test_web_search_is_not_surfaced() -> None:
    message = both("hi fake:websearch=weather")
    assert blocks(message) == [("text", ANSWER)]


def test_usage_maps_cached_tokens() -> None:
    response = {"usage": {"input_tokens": 1200, "input_tokens_details": {"cached_tokens": 1024},
                          "output_tokens": 85, "output_tokens_details": {"reasoning_tokens": 64}}}
    assert usage_of(response, 7) == {
        "input_tokens": 176, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 1024,
        "output_tokens": 85, "output_tokens_details": {"thinking_tokens": 64}}
    assert usage_of({}, 7) == {"input_tokens": 7, "cache_creation_input_tokens": 0,
                               "cache_read_input_tokens": 0, "output_tokens": 0}
    assert usage_of({"usage": {"input_tokens": "x", "output_tokens": -3}}, 7)["output_tokens"] == 0


# -- failures --------------------------------------------------------------------------------


def error_of(events: list[JSON]) -> JSON:
    assert events[-1]["type"] == "error"
    assert not any(e["type"] in ("message_delta", "message_stop") for e in events)
    error: JSON = events[-1]["error"]
    assert set(events[-1]) == {"type", "error"} and set(error) == {"type", "message"}
    return error


def test_failed_response_after_text() -> None:
    events = parse(translate(fake_stream("hi fake:fail")))
    assert error_of(events) == {"type": "overloaded_error", "message": FAILED_MESSAGE}
    assert any(e.get("delta", {}).get("type") == "text_delta" for e in events)


def test_error_event_is_a_rate_limit_error() -> None:
    events = parse(translate(fake_stream("hi fake:error_event")))
    assert [e["type"] for e in events] == ["message_start", "ping", "error"]
    assert error_of(events) == {"type": "rate_limit_error", "message": RATE_LIMIT_MESSAGE}


def test_cut_stream_is_reported_by_finish() -> None:
    events = parse(translate(fake_stream("hi fake:cut")))
    assert error_of(events) == {"type": "api_error", "message": TRUNCATED_MESSAGE}


def test_empty_stream_gives_only_an_error() -> None:
    events = parse(translate(fake_stream("hi fake:empty")))
    assert [e["type"] for e in events] == ["error"]


def test_abort_reports_once() -> None:
    translator = make()()
    translator.feed(fake_stream("hi fake:cut"))
    events = events_of(translator.abort("read timed out", "upstream_timeout"))
    assert events == [{"type": "error", "error": {"type": "api_error",
                                                  "message": "read timed out"}}]
    assert translator.abort("again") == b"" and translator.finish() == b""


@pytest.mark.parametrize("text", ["hi fake:fail", "hi fake:error_event", "hi fake:cut",
                                  "hi fake:empty"])
def test_the_sdk_raises_on_an_error_event(text: str) -> None:
    with pytest.raises(anthropic.APIStatusError) as caught:
        sdk_final_message(translate(fake_stream(text)))
    assert caught.value.body["type"] == "error"  # type: ignore[index]


@pytest.mark.parametrize(("code", "kind"), [
    ("rate_limit_exceeded", "rate_limit_error"), ("usage_limit_reached", "rate_limit_error"),
    ("insufficient_quota", "rate_limit_error"), ("server_is_overloaded", "overloaded_error"),
    ("server_error", "overloaded_error"), ("service_unavailable", "overloaded_error"),
    ("invalid_api_key", "authentication_error"), ("upstream_truncated", "api_error"),
    ("upstream_error", "api_error"), ("", "api_error"),
    ("context_length_exceeded", "invalid_request_error"),
    ("invalid_prompt", "invalid_request_error"),
    ("usage_not_included", "rate_limit_error"), ("slow_down", "overloaded_error")])
def test_error_types(code: str, kind: str) -> None:
    assert error_type(code) == kind


@pytest.mark.parametrize(("text", "error"), [
    ("hi fake:fail", (FAILED_MESSAGE, "server_error")),
    ("hi fake:error_event", (RATE_LIMIT_MESSAGE, "rate_limit_exceeded")),
    ("hi fake:cut", (TRUNCATED_MESSAGE, "upstream_truncated")),
    ("hi fake:empty", (TRUNCATED_MESSAGE, "upstream_truncated"))])
def test_collector_errors(text: str, error: tuple[str, str]) -> None:
    collector = MessagesCollector()
    collector.feed(fake_stream(text))
    collector.finish()
    assert collector.error == error


# -- heartbeats ------------------------------------------------------------------------------


def test_heartbeat_is_a_ping_once_the_message_started() -> None:
    translator = make()()
    assert translator.heartbeat_seconds == 10.0 and UpstreamTranslator.heartbeat_seconds == 15.0
    assert translator.heartbeat() == KEEP_ALIVE  # an SSE comment: nothing before message_start
    translator.feed(CREATED)
    assert translator.heartbeat() == PING


# -- split points ----------------------------------------------------------------------------

SPLIT_TEXTS = [TOOL_TEXT, "fake:deltas=20", "hi fake:fail", "hi fake:cut"]


@pytest.mark.parametrize("text", SPLIT_TEXTS)
def test_stream_output_does_not_depend_on_chunking(text: str) -> None:
    stream = fake_stream(text)
    expected = translate(stream)
    parse(expected)
    for chunks in whole_bytewise_and_splits(stream):
        assert run_bytes(make(), chunks) == expected, [len(c) for c in chunks]


def _collected(chunks: list[bytes]) -> tuple[Any, ...]:
    collector = MessagesCollector()
    for chunk in chunks:
        collector.feed(chunk)
    collector.finish()
    if collector.error is not None:
        return ("error", collector.error)
    return ("ok", message_object(collector, model=MODEL, thinking=True))


@pytest.mark.parametrize("text", [TOOL_TEXT, "hi fake:reasoning_text fake:deltas=20",
                                  "hi fake:cut"])
def test_collector_does_not_depend_on_chunking(text: str) -> None:
    stream = fake_stream(text)
    expected = _collected([stream])
    for chunks in whole_bytewise_and_splits(stream):
        assert _collected(chunks) == expected


RANDOM_TEXTS = [TOOL_TEXT, "hi fake:reasoning_text fake:tool=x", "fake:deltas=14",
                "hi fake:incomplete", "hi fake:error_event", "hi fake:commentary"]
_STREAMS: dict[str, bytes] = {}


@settings(max_examples=60, deadline=None)
@given(text=st.sampled_from(RANDOM_TEXTS), thinking=st.booleans(),
       cuts=st.lists(st.integers(min_value=0), max_size=40))
def test_stream_output_at_random_split_points(text: str, thinking: bool,
                                              cuts: list[int]) -> None:
    if text not in _STREAMS:
        _STREAMS[text] = fake_stream(text)
    stream = _STREAMS[text]
    assert run_bytes(make(thinking), chunked(stream, cuts)) == translate(stream, thinking)


# -- hand-written event sequences --------------------------------------------------------------

CREATED = frame("response.created", {"response": {"id": "resp_h", "status": "in_progress"}})
COMPLETED = frame("response.completed", {"response": {
    "id": "resp_h", "status": "completed", "usage": {"input_tokens": 3, "output_tokens": 2}}})


def fc_added(item_id: str, call_id: str, name: str) -> bytes:
    return frame("response.output_item.added", {"item": {
        "type": "function_call", "id": item_id, "call_id": call_id, "name": name,
        "arguments": ""}})


def fc_done(item_id: str, call_id: str, name: str, arguments: Any) -> bytes:
    return frame("response.output_item.done", {"item": {
        "type": "function_call", "id": item_id, "call_id": call_id, "name": name,
        "arguments": arguments}})


def text(delta: str) -> bytes:
    return frame("response.output_text.delta", {"delta": delta})


def summary(delta: str) -> bytes:
    return frame("response.reasoning_summary_text.delta", {"delta": delta})


def rs_item(done: bool, **fields: Any) -> bytes:
    kind = "response.output_item.done" if done else "response.output_item.added"
    return frame(kind, {"item": {"type": "reasoning", "id": "rs_1", **fields}})


def hand(*events: bytes, thinking: bool = True) -> tuple[JSON, JSON]:
    """(streamed message, non-stream message) of a hand-written upstream stream."""
    stream = b"".join(events)
    streamed, whole = final(translate(stream, thinking)), collect(stream, thinking)
    assert Message.model_validate(whole).model_dump(exclude_none=True)["content"] == \
        streamed["content"]
    return streamed, whole


def test_empty_answer_has_empty_content() -> None:
    streamed, whole = hand(CREATED, COMPLETED)
    assert streamed["content"] == [] and whole["content"] == []
    assert whole["stop_reason"] == "end_turn"
    assert whole["usage"]["input_tokens"] == 3 and whole["usage"]["output_tokens"] == 2


def test_tool_call_seen_only_when_done() -> None:
    streamed, whole = hand(CREATED, fc_done("fc_1", "call_1", "a", '{"q":"\\n"}'), COMPLETED)
    assert blocks(whole) == blocks(streamed) == [("tool_use", ("a", {"q": "\n"}))]
    assert whole["content"][0]["id"] == "call_1" and whole["stop_reason"] == "tool_use"


def test_tool_call_without_argument_deltas_gets_them_at_done() -> None:
    streamed, whole = hand(CREATED, fc_added("fc_1", "call_1", "a"),
                           fc_done("fc_1", "call_1", "a", '{"x":"é"}'), COMPLETED)
    assert blocks(whole) == blocks(streamed) == [("tool_use", ("a", {"x": "é"}))]


def test_tool_call_arguments_as_object() -> None:
    _, whole = hand(CREATED, fc_done("fc_1", "call_1", "a", {"x": 1}), COMPLETED)
    assert blocks(whole) == [("tool_use", ("a", {"x": 1}))]


def test_tool_call_open_at_completion_is_closed() -> None:
    streamed, whole = hand(CREATED, fc_added("fc_1", "call_1", "a"),
                           frame("response.function_call_arguments.delta",
                                 {"item_id": "fc_1", "delta": '{"k":2}'}), COMPLETED)
    assert blocks(whole) == blocks(streamed) == [("tool_use", ("a", {"k": 2}))]


@pytest.mark.parametrize(("arguments", "parsed"), [
    ("", {}), ("  ", {}), ('{"a":1}', {"a": 1}), ("[1]", {"raw": "[1]"}),
    ("{oops", {"raw": "{oops"})])
def test_tool_input(arguments: str, parsed: JSON) -> None:
    assert tool_input(arguments) == parsed


def test_reasoning_without_encrypted_content_has_an_empty_signature() -> None:
    streamed, whole = hand(CREATED, rs_item(False), summary("hm"), rs_item(True), text("A"),
                           COMPLETED)
    assert whole["content"][0] == {"type": "thinking", "thinking": "hm", "signature": ""}
    assert blocks(streamed) == blocks(whole)


def test_encrypted_reasoning_without_summary_still_carries_its_signature() -> None:
    streamed, whole = hand(CREATED, rs_item(False), rs_item(True, encrypted_content="gAAA"),
                           text("A"), COMPLETED)
    assert whole["content"] == [{"type": "thinking", "thinking": "", "signature": SIGNED},
                                {"type": "text", "text": "A"}]
    assert streamed["content"][0]["signature"] == SIGNED


def test_reasoning_done_without_added_event() -> None:
    _, whole = hand(CREATED, rs_item(True, encrypted_content="gAAA"), COMPLETED)
    assert whole["content"] == [{"type": "thinking", "thinking": "", "signature": SIGNED}]


def test_text_then_reasoning_makes_separate_blocks() -> None:
    streamed, whole = hand(CREATED, text("A"), summary("x"), text("B"), COMPLETED)
    assert blocks(whole) == blocks(streamed) == [("text", "A"), ("thinking", "x"), ("text", "B")]
    _, plain = hand(CREATED, text("A"), summary("x"), text("B"), COMPLETED, thinking=False)
    assert blocks(plain) == [("text", "A"), ("text", "B")]


def test_text_before_created_still_starts_the_message() -> None:
    events = parse(translate(text("A") + COMPLETED))
    assert events[0]["message"]["id"].startswith("msg_")


def test_completed_alone() -> None:
    events = parse(translate(COMPLETED))
    assert [e["type"] for e in events] == ["message_start", "ping", "message_delta",
                                           "message_stop"]


def test_incomplete_for_content_filter_is_a_refusal() -> None:
    event = frame("response.incomplete",
                  {"response": {"incomplete_details": {"reason": "content_filter"}}})
    assert hand(CREATED, event)[1]["stop_reason"] == "refusal"
    assert hand(CREATED, frame("response.incomplete", {}))[1]["stop_reason"] == "max_tokens"


def test_nothing_after_the_terminal_event() -> None:
    translator = make()()
    translator.feed(CREATED + COMPLETED)
    assert translator.feed(text("late")) == b""
    assert translator.finish() == b"" and translator.abort("late") == b""


# -- any event sequence gives a stream the SDK accepts -------------------------------------------

EVENT_TYPES = ["response.created", "response.output_item.added", "response.output_item.done",
               "response.output_text.delta", "response.reasoning_summary_part.added",
               "response.reasoning_summary_text.delta", "response.reasoning_text.delta",
               "response.function_call_arguments.delta", "response.completed",
               "response.incomplete", "response.failed", "error", "response.other"]
items = st.fixed_dictionaries(
    {"type": st.sampled_from(["message", "reasoning", "function_call", "web_search_call", 7])},
    optional={"id": st.sampled_from(["fc_1", "fc_2", "rs_1"]),
              "call_id": st.sampled_from(["call_1", "call_2"]), "name": st.text(max_size=3),
              "arguments": st.sampled_from(["", "{}", '{"a":1}', "[", 3]),
              "encrypted_content": st.sampled_from(["gAAA", 5])})
event_fields = st.fixed_dictionaries({}, optional={
    "delta": st.sampled_from(['{"a"', ":1}", "x", "\n", 4]),
    "item_id": st.sampled_from(["fc_1", "fc_2", 1]), "item": items,
    "response": st.fixed_dictionaries({}, optional={"id": st.text(max_size=3),
                                                    "usage": st.just({"output_tokens": 1})})})


@settings(max_examples=300, deadline=None)
@given(events=st.lists(st.tuples(st.sampled_from(EVENT_TYPES), event_fields), max_size=14),
       thinking=st.booleans(), cuts=st.lists(st.integers(min_value=0), max_size=5))
def test_any_event_sequence_gives_a_stream_the_sdk_accepts(
        events: list[tuple[str, JSON]], thinking: bool, cuts: list[int]) -> None:
    stream = b"".join(frame(kind, fields) for kind, fields in events)
    out = run_bytes(make(thinking), chunked(stream, cuts))
    parsed = events_of(out)
    check_events(parsed)
    try:
        sdk_accumulate(parsed)
    except ValueError as exc:  # argument deltas that are not JSON: copied as the backend sent them
        assert "tool parameter JSON" in str(exc)
    collector = MessagesCollector()
    collector.feed(stream)
    collector.finish()
    if collector.error is None:
        Message.model_validate(message_object(collector, model=MODEL, thinking=thinking))


def test_signatures_are_minted_for_the_account() -> None:
    tag = account_tag("acct-1")
    stream = CREATED + rs_item(True, encrypted_content="gAAA") + COMPLETED
    collector = MessagesCollector(account_tag=tag)
    collector.feed(stream)
    whole = message_object(collector, model=MODEL, thinking=True)
    assert whole["content"][0]["signature"] == mint("gAAA", tag) == f"chatmock.1.{tag}.gAAA"
    streamed = MessagesStreamTranslator(model=MODEL, thinking=True, input_tokens=1,
                                        account_tag=tag)
    assert json.dumps(mint("gAAA", tag)).encode() in streamed.feed(stream)
