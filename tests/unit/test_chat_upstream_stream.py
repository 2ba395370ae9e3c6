"""chatmock.dialects.chat_upstream_stream: chat-completions SSE → neutral provider events.

Streams come from the fake provider (each flavor's quirks) and from hand-made
chunks for shapes the fake does not produce."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatmock.dialects.chat_upstream_stream import ChatStreamDecoder, usage_of
from chatmock.dialects.provider_events import (
    Error,
    Event,
    Finish,
    ReasoningDelta,
    ReasoningDetail,
    Started,
    TextDelta,
    ToolArgumentsDelta,
    ToolCallStart,
    Usage,
)
from chatmock.jsonbytes import decode_string
from chatmock.testing.fake_chat import FakeChat
from chatmock.testing.fake_chat_flavors import FLAVORS, OPENROUTER_KEY, XAI_KEY

from .helpers import chunked, whole_bytewise_and_splits

JSON = dict[str, Any]
KEYS = {"xai": XAI_KEY, "openrouter": OPENROUTER_KEY}
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}


def fake_stream(flavor: str, text: str, **fields: Any) -> bytes:
    fake = FakeChat(flavor)
    body = {"model": FLAVORS[flavor].models[0].id, "stream": True,
            "stream_options": {"include_usage": True}, "tools": [TOOL],
            "messages": [{"role": "user", "content": text}], **fields}
    headers = {b"authorization": b"Bearer " + KEYS.get(flavor, "k").encode(),
               b"content-type": b"application/json"}
    reply = fake.handle("POST", fake.flavor.prefix + "/chat/completions", headers,
                        json.dumps(body).encode())
    assert reply.status == 200 and reply.chunks is not None, reply.body
    return b"".join(piece for _, piece in reply.chunks)


def decode(chunks: list[bytes], *, end: bool = True) -> list[Event]:
    decoder = ChatStreamDecoder(call_id_prefix="call_x")
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    return events + (decoder.finish() if end else [])


def text(events: list[Event], kind: type[TextDelta | ReasoningDelta] = TextDelta) -> str:
    return "".join(decode_string(e.raw) for e in events
                   if isinstance(e, TextDelta | ReasoningDelta) and type(e) is kind)


def calls(events: list[Event]) -> list[tuple[str, str, str]]:
    """(id, name, arguments) of every call, in call order."""
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    return [(s.call_id, s.name, "".join(decode_string(e.raw) for e in events
                                        if isinstance(e, ToolArgumentsDelta)
                                        and e.call_index == s.call_index)) for s in starts]


def chunk(delta: JSON | None = None, finish: str | None = None, **extra: Any) -> bytes:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return b"data: " + json.dumps({"id": "c1", "model": "m", "choices": choices, **extra},
                                  separators=(",", ":")).encode() + b"\n\n"


# -- every flavor of the fake ----------------------------------------------------------------


@pytest.mark.parametrize("flavor", sorted(FLAVORS))
def test_text_answers_of_every_flavor(flavor: str) -> None:
    events = decode([fake_stream(flavor, "hello there")])
    assert isinstance(events[0], Started) and events[0].response_id.startswith("chatcmpl-")
    assert text(events) == "Hello! You said: hello there"
    assert events[-1] == Finish("stop")
    usage = [e for e in events if isinstance(e, Usage)]
    assert len(usage) == 1 and usage[0].total_tokens == usage[0].input_tokens + 5


@pytest.mark.parametrize("flavor", sorted(FLAVORS))
def test_tool_calls_of_every_flavor_are_assembled(flavor: str) -> None:
    events = decode([fake_stream(flavor, 'x fake:tool=get_weather fake:args={"city":"Paris"} '
                                         'fake:tool=lookup')])
    found = calls(events)
    assert [(name, args) for _, name, args in found] == [("get_weather", '{"city":"Paris"}'),
                                                         ("lookup", "{}")]
    ids = [call_id for call_id, _, _ in found]
    if flavor == "ollama":  # its first call comes without an id
        assert ids[0] == "call_x0" and ids[1].startswith("call_0")
    else:
        assert all(i.startswith("call_0") for i in ids) and len(set(ids)) == 2
    assert events[-1] == Finish("tool_calls")


@pytest.mark.parametrize("flavor, model, summary", [
    ("xai", "grok-3-mini", False), ("vllm", None, False), ("llamacpp", None, False),
    ("ollama", None, False), ("openrouter", "openai/gpt-5", True),
    ("openrouter", "moonshotai/kimi-k2-thinking", False)])
def test_reasoning_of_every_field_name(flavor: str, model: str | None, summary: bool) -> None:
    fields = {"model": model} if model else {}
    events = decode([fake_stream(flavor, "q fake:reasoning=3", **fields)])
    reasoning = [e for e in events if isinstance(e, ReasoningDelta)]
    assert "".join(decode_string(e.raw) for e in reasoning) == "thought 0 thought 1 thought 2 "
    assert {e.summary for e in reasoning} == {summary}
    details = [e.detail for e in events if isinstance(e, ReasoningDetail)]
    assert bool(details) == (flavor == "openrouter")
    if model == "openai/gpt-5":
        assert details[-1]["type"] == "reasoning.encrypted"


def test_openrouter_usage_after_the_finish_chunk_and_cost() -> None:
    events = decode([fake_stream("openrouter", "hi")])
    usage = next(e for e in events if isinstance(e, Usage))
    assert usage.cost is not None and usage.cost > 0 and usage.reasoning_tokens == 0
    assert events[-2] == usage and events[-1] == Finish("stop")


def test_xai_hidden_reasoning_is_counted_in_usage() -> None:
    events = decode([fake_stream("xai", "q fake:reasoning=2", model="grok-4")])
    assert not any(isinstance(e, ReasoningDelta) for e in events)
    assert next(e for e in events if isinstance(e, Usage)).reasoning_tokens == 2


def test_llamacpp_ends_without_done_and_gives_usage_on_the_finish_chunk() -> None:
    stream = fake_stream("llamacpp", "hi")
    assert b"[DONE]" not in stream
    decoder = ChatStreamDecoder()
    events = decoder.feed(stream)
    assert not any(isinstance(e, Finish) for e in events)  # held until the body ends
    assert isinstance(events[-1], Usage)
    assert decoder.finish() == [Finish("stop")]


@pytest.mark.parametrize("flavor", ["openrouter", "vllm", "xai"])
def test_a_mid_stream_error_ends_the_answer(flavor: str) -> None:
    events = decode([fake_stream(flavor, "a b c d fake:fail")])
    assert text(events) == "Hello! You "
    error = events[-1]
    assert isinstance(error, Error) and "failed this response" in error.message
    assert not any(isinstance(e, Finish) for e in events)


def test_an_error_before_any_content() -> None:
    events = decode([fake_stream("openrouter", "fake:error_event")])
    assert isinstance(events[0], Started)
    assert events[-1] == Error("Rate limit exceeded, please retry later.",
                               "rate_limit_exceeded", None)


@pytest.mark.parametrize("flavor", ["openai", "openrouter"])
def test_an_empty_stream_is_an_error(flavor: str) -> None:
    events = decode([fake_stream(flavor, "fake:empty")])
    assert events == [Error("the provider's stream ended without an answer", "empty_response",
                            502)]


def test_a_cut_stream_is_aborted() -> None:
    decoder = ChatStreamDecoder()
    events = decoder.feed(fake_stream("vllm", "a b c fake:cut"))
    assert text(events) == "Hello! You " and not decoder.closed
    assert decoder.abort("read timed out", "upstream_timeout") == [
        Error("read timed out", "upstream_timeout", None)]
    assert decoder.abort("again") == [] and decoder.finish() == []


# -- split points ----------------------------------------------------------------------------

STREAMS = [
    fake_stream("openrouter", 'fake:deltas=30 fake:reasoning=3 fake:tool=f fake:args={"a":"é"}'),
    fake_stream("vllm", "fake:deltas=30 fake:reasoning=2 fake:tool=f fake:tool=g"),
    fake_stream("ollama", "fake:deltas=15 fake:tool=f fake:tool=g"),
    fake_stream("xai", "fake:deltas=15 fake:reasoning=2 fake:tool=f", model="grok-3-mini"),
    fake_stream("llamacpp", "fake:deltas=15 fake:reasoning=2"),
]


@pytest.mark.parametrize("stream", STREAMS[2:])
def test_whole_bytewise_and_every_two_way_split_agree(stream: bytes) -> None:
    expected = decode([stream])
    for chunks in whole_bytewise_and_splits(stream):
        assert decode(chunks) == expected


@settings(max_examples=60, deadline=None)
@given(index=st.integers(0, len(STREAMS) - 1),
       cuts=st.lists(st.integers(0, 100_000), max_size=30))
def test_random_splits_give_identical_events(index: int, cuts: list[int]) -> None:
    stream = STREAMS[index]
    assert decode(chunked(stream, cuts)) == decode([stream])


def test_the_escaped_deltas_decode_to_the_fakes_text() -> None:
    events = decode([fake_stream("vllm", "fake:deltas=14")])
    pieces = [decode_string(e.raw) for e in events if isinstance(e, TextDelta)]
    assert pieces[6] == 'tok6 "q\\é\n' and pieces[13] == 'tok13 "q\\😀\n'


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=5))
def test_garbage_never_raises(chunks: list[bytes]) -> None:
    events = decode(chunks)
    assert sum(isinstance(e, Finish | Error) for e in events) == 1


@settings(max_examples=100, deadline=None)
@given(st.lists(st.text(max_size=20), min_size=1, max_size=8))
def test_any_text_survives_both_paths(pieces: list[str]) -> None:
    stream = b"".join(chunk({"content": piece}) for piece in pieces) + b"data: [DONE]\n\n"
    assert text(decode([stream])) == "".join(pieces)
    assert text(decode([stream[i:i + 1] for i in range(len(stream))])) == "".join(pieces)


# -- hand-made shapes ------------------------------------------------------------------------


def test_text_is_copied_raw_on_the_fast_path() -> None:
    stream = (chunk({"role": "assistant", "content": ""})
              + b'data: {"id":"c1","choices":[{"index":0,"delta":{"content":"caf\\u00e9"},'
                b'"finish_reason":null}]}\n\n')
    events = decode([stream])
    assert TextDelta(b"caf\\u00e9") in events
    assert text(events) == "café"


def test_arguments_are_copied_raw_on_the_fast_path() -> None:
    start = chunk({"tool_calls": [{"index": 0, "id": "a", "type": "function",
                                   "function": {"name": "f", "arguments": ""}}]})
    piece = (b'data: {"id":"c1","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,'
             b'"function":{"arguments":"{\\"k\\":\\"\\u00e9{\\"}"}}]},'
             b'"finish_reason":null}]}\n\n')
    events = decode([start + piece])
    assert ToolArgumentsDelta(0, b'{\\"k\\":\\"\\u00e9{\\"}') in events
    assert calls(events) == [("a", "f", '{"k":"\u00e9{"}')]


def test_chunks_with_more_structure_take_the_parser() -> None:
    """Usage, errors, a finish reason or a second choice next to a text delta are not lost."""
    with_finish = (b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"a"},'
                   b'"finish_reason":"length"}]}\n\n')
    assert decode([chunk({"content": "x"}) + with_finish])[-2:] == [TextDelta(b"a"),
                                                                   Finish("length")]
    with_usage = (b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"a"}}],'
                  b'"usage":{"prompt_tokens":1,"completion_tokens":2}}\n\n')
    assert Usage(1, 2, 3) in decode([chunk({"content": "x"}) + with_usage])
    braces = (b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"{a}"},'
              b'"finish_reason":null}]}\n\n')
    assert text(decode([chunk({"content": "x"}) + braces])) == "x{a}"


def test_missing_finish_reason_and_legacy_function_call() -> None:
    assert decode([chunk({"content": "x"})])[-1] == Finish("stop")
    legacy = chunk({"content": "x"}) + chunk({}, "function_call")
    assert decode([legacy])[-1] == Finish("tool_calls")
    named = chunk({"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f"}}]}) + \
        chunk({}, "stop")
    assert decode([named])[-1] == Finish("tool_calls")
    assert decode([chunk({"content": "x"}, "length")])[-1] == Finish("length")


def test_a_call_waits_for_its_name() -> None:
    stream = (chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]})
              + chunk({"tool_calls": [{"index": 0, "id": "real", "function": {"name": "f"}}]})
              + chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}))
    events = decode([stream])
    assert calls(events) == [("real", "f", '{"a":1}')]
    starts = [i for i, e in enumerate(events) if isinstance(e, ToolCallStart)]
    first_args = next(i for i, e in enumerate(events) if isinstance(e, ToolArgumentsDelta))
    assert starts[0] < first_args


def test_a_nameless_call_starts_at_the_end() -> None:
    events = decode([chunk({"tool_calls": [{"index": 3, "function": {"arguments": "{}"}}]})])
    assert calls(events) == [("call_x0", "", "{}")]


def test_calls_by_id_and_by_position() -> None:
    stream = (chunk({"tool_calls": [{"id": "a", "function": {"name": "f", "arguments": "{"}}]})
              + chunk({"tool_calls": [{"id": "a", "function": {"arguments": "}"}}]})
              + chunk({"tool_calls": [{"function": {"name": "g", "arguments": {"k": 1}}}]})
              + chunk({"tool_calls": [{"function": {"arguments": " "}}]}))
    assert calls(decode([stream])) == [("a", "f", "{}"), ("call_x1", "g", '{"k": 1} ')]


def test_reasoning_under_both_names_counts_once() -> None:
    events = decode([chunk({"reasoning_content": "r", "reasoning": "r"})])
    assert text(events, ReasoningDelta) == "r"


@pytest.mark.parametrize("line, expected", [
    ({"error": {"message": "boom", "type": "server_error"}}, Error("boom", "server_error")),
    ({"code": "Internal error", "error": "xai broke"}, Error("xai broke", "Internal error")),
    ({"object": "error", "message": "too long", "type": "BadRequestError", "code": 400},
     Error("too long", "400", 400)),
    ({"error": {"code": 502, "message": "down"}, "choices": [
        {"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]},
     Error("down", "502", 502)),
])
def test_in_stream_error_shapes(line: JSON, expected: Error) -> None:
    stream = chunk({"content": "a"}) + b"data: " + json.dumps(line).encode() + b"\n\n"
    events = decode([stream + chunk({"content": "ignored"})])
    assert events[-1] == expected and text(events) == "a"


def test_non_json_lines_and_events_after_done_are_ignored() -> None:
    stream = (b": keep-alive\n\ndata: not json\n\n" + chunk({"content": "a"})
              + b"data: [DONE]\n\n" + chunk({"content": "b"}))
    decoder = ChatStreamDecoder()
    events = decoder.feed(stream) + decoder.finish()
    assert text(events) == "a" and events[-1] == Finish("stop")


def test_only_the_first_choice_counts() -> None:
    line = {"id": "c", "choices": [{"index": 0, "delta": {"content": "a"}},
                                   {"index": 1, "delta": {"content": "b"}}]}
    assert text(decode([b"data: " + json.dumps(line).encode() + b"\n\n"])) == "a"


def test_usage_shapes() -> None:
    assert usage_of({"input_tokens": 3, "output_tokens": 4,
                     "output_tokens_details": {"reasoning_tokens": 1}}) == \
        Usage(3, 4, 7, None, 1, None)
    assert usage_of({"prompt_tokens": "x", "completion_tokens": True, "cost": True}) == \
        Usage(0, 0, 0, None, None, None)
    assert usage_of(None) is None
