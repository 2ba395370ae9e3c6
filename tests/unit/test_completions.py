"""chatmock.dialects.completions: legacy Completions request mapping and response translation."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types import Completion

from chatmock.catalog import Catalog
from chatmock.dialects.chat_stream import DONE_LINE, KEEP_ALIVE
from chatmock.dialects.collectors import ResponseCollector
from chatmock.dialects.common import REASONING_INCLUDE
from chatmock.dialects.completions import (
    CompletionRequest,
    CompletionStreamTranslator,
    parse_completion_request,
    text_completion,
)
from chatmock.dialects.events import TRUNCATED_MESSAGE
from chatmock.dialects.machine import State
from chatmock.dialects.options import Options
from chatmock.errors import ClientError
from chatmock.testing.fake_events import COMMENTARY_TEXT, numbered_delta

from .helpers import (
    JSON,
    TOOL_TEXT,
    accepted_upstream,
    chunked,
    fake_stream,
    frame,
    refused,
    run_bytes,
    sse_payloads,
    whole_bytewise_and_splits,
)

CATALOG = Catalog()
MODEL = "gpt-5.4-high"
CREATED = 1_785_060_000
ANSWER = "Hello! You said: hi"
DELTAS_20 = "".join(numbered_delta(i) for i in range(20))
FAILED_MESSAGE = "The fake backend failed this response"
RATE_LIMIT_MESSAGE = "Rate limit reached for the fake backend. Please try again later."


# -- request → upstream payload -------------------------------------------------------------


def completion(body: Any, **settings_: Any) -> CompletionRequest:
    return parse_completion_request(body, CATALOG, Options(**settings_))


def payload(body: Any, **settings_: Any) -> JSON:
    return completion(body, **settings_).payload


def request(prompt: Any = "hi", **fields: Any) -> JSON:
    return {"model": "gpt-5.4", "prompt": prompt, **fields}


def user_input(text: str) -> list[JSON]:
    return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}]


def rejected(body: Any, *fragments: str, code: str | None = None, param: str | None = None,
             **settings_: Any) -> ClientError:
    return refused(lambda: completion(body, **settings_), *fragments, code=code, param=param)



def test_minimal_request() -> None:
    parsed = completion(request())
    assert parsed.payload == {
        "model": "gpt-5.4", "input": user_input("hi"), "tools": [], "tool_choice": "auto",
        "parallel_tool_calls": False, "store": False, "stream": True,
        "include": [REASONING_INCLUDE], "reasoning": {"effort": "medium", "summary": "auto"}}
    assert parsed.model == "gpt-5.4"
    assert parsed.stream is False and parsed.include_usage is False
    accepted_upstream(parsed.payload)


@pytest.mark.parametrize(("prompt", "text"), [
    ("Say hi", "Say hi"), (["Say hi"], "Say hi"), (["Say ", "hi", ""], "Say hi"),
    ("café \"q\" \\ \n😀", "café \"q\" \\ \n😀"),
])
def test_prompt_forms(prompt: Any, text: str) -> None:
    assert payload(request(prompt))["input"] == user_input(text)


@pytest.mark.parametrize("prompt", [[1, 2, 3], [[1, 2], [3]], ["a", 5], [[7]]])
def test_token_arrays_are_refused(prompt: Any) -> None:
    rejected(request(prompt), "token arrays are not supported", code="invalid_prompt")


@pytest.mark.parametrize(("prompt", "param"), [
    (5, "prompt"), ({"text": "hi"}, "prompt"), ([{"text": "hi"}], "prompt[0]"),
    (["a", None], "prompt[1]"), ([True], "prompt[0]"), ([[]], "prompt[0]"),
    ([["a"]], "prompt[0]")])
def test_other_prompt_types_are_refused(prompt: Any, param: str) -> None:
    rejected(request(prompt), f"Invalid type for '{param}'", code="invalid_type", param=param)


@pytest.mark.parametrize("body", [{"model": "gpt-5.4"}, request(None)])
def test_prompt_is_required(body: JSON) -> None:
    rejected(body, "prompt is required", code="invalid_prompt")


@pytest.mark.parametrize("prompt", ["", [], [""]])
def test_empty_prompt_is_refused(prompt: Any) -> None:
    rejected(request(prompt), "prompt must not be empty", code="invalid_prompt")


@pytest.mark.parametrize("body", [[], "prompt", None, 5])
def test_body_must_be_an_object(body: Any) -> None:
    rejected(body, "JSON object")


def test_model_must_be_a_string() -> None:
    rejected(request(model=5), "Invalid type for 'model'", code="invalid_type", param="model")


def test_echo_is_refused() -> None:
    rejected(request(echo=True), "echo is not supported", code="unsupported_parameter",
             param="echo")


@pytest.mark.parametrize("suffix", ["}", " "])
def test_suffix_is_refused(suffix: Any) -> None:
    rejected(request(suffix=suffix), "suffix is not supported", "insert",
             code="unsupported_parameter", param="suffix")


@pytest.mark.parametrize(("field", "value"), [("n", 2), ("best_of", 3)])
def test_several_choices_are_refused(field: str, value: Any) -> None:
    rejected(request(**{field: value}), f"{field} > 1 is not supported",
             code="unsupported_parameter", param=field)


@pytest.mark.parametrize(("fields", "param"), [
    ({"echo": "yes"}, "echo"), ({"echo": 1}, "echo"), ({"suffix": ["x"]}, "suffix"),
    ({"n": "2"}, "n"), ({"best_of": "2"}, "best_of"), ({"n": True}, "n"),
    ({"stream": "true"}, "stream"), ({"stream_options": {"include_usage": "yes"}},
                                     "stream_options.include_usage")])
def test_wrong_types_are_refused(fields: JSON, param: str) -> None:
    rejected(request(**fields), code="invalid_type", param=param)


def test_fewer_than_one_choice_is_refused() -> None:
    rejected(request(n=0), code="integer_below_min_value", param="n")


def test_harmless_values_of_refused_fields_are_accepted() -> None:
    plain = payload(request())
    assert payload(request(echo=False, suffix="", n=1, best_of=1)) == plain
    assert payload(request(echo=None, suffix=None, n=None, best_of=None)) == plain


def test_sampling_fields_are_dropped() -> None:
    sampled = payload(request(max_tokens=16, temperature=0.2, top_p=0.9, stop=["\n"], seed=1,
                              logprobs=3, logit_bias={"50256": -100}, presence_penalty=0.5,
                              frequency_penalty=0.1, user="u"))
    assert sampled == payload(request())


def test_model_echo_and_resolution() -> None:
    parsed = completion(request(model="GPT5.4-HIGH"))
    assert parsed.model == "GPT5.4-HIGH"
    assert parsed.payload["model"] == "gpt-5.4"
    assert parsed.payload["reasoning"]["effort"] == "high"
    assert completion({"prompt": "hi"}).model == "gpt-5.4"
    assert payload(request(model="gpt-5.4"), debug_model="gpt-5.5")["model"] == "gpt-5.5"


def test_stream_flags() -> None:
    parsed = completion(request(stream=True, stream_options={"include_usage": True}))
    assert parsed.stream is True and parsed.include_usage is True
    for options in ({"include_usage": False}, {}, None):
        assert completion(request(stream=True, stream_options=options)).include_usage is False
    assert payload(request(stream=False))["stream"] is True  # upstream is always streamed


def test_reasoning_sources() -> None:
    def reasoning(body: JSON, **settings_: Any) -> Any:
        return payload(body, **settings_)["reasoning"]

    assert reasoning(request(reasoning={"effort": "high", "summary": "detailed"})) == {
        "effort": "high", "summary": "detailed"}
    assert reasoning(request(reasoning_effort="low"))["effort"] == "low"
    assert reasoning(request(model="gpt-5.4:xhigh"))["effort"] == "xhigh"
    assert reasoning(request(model="gpt-5.4-high", reasoning_effort="low"))["effort"] == "low"
    assert reasoning(request(reasoning={"summary": "none"})) == {"effort": "medium"}
    assert reasoning(request(), reasoning_effort="low")["effort"] == "low"
    accepted_upstream(payload(request(model="gpt-5.4-xhigh", reasoning={"summary": "none"})))


def test_fast_mode_and_service_tier() -> None:
    assert payload(request(fast_mode=True))["service_tier"] == "priority"
    assert payload(request(service_tier="flex"))["service_tier"] == "flex"
    assert "service_tier" not in payload(request())
    assert payload(request(), fast_mode=True)["service_tier"] == "priority"
    assert "service_tier" not in payload(request(fast_mode=False), fast_mode=True)
    rejected(request(model="gpt-5.4-mini", fast_mode=True), "Fast mode")
    accepted_upstream(payload(request(fast_mode=True)))


def test_no_tools_and_no_instructions_even_with_web_search_on() -> None:
    parsed = payload(request(tools=[{"type": "function", "function": {"name": "f"}}],
                             responses_tools=[{"type": "web_search"}]), enable_web_search=True)
    assert parsed["tools"] == [] and parsed["tool_choice"] == "auto"
    assert "instructions" not in parsed


# -- streaming translation ---------------------------------------------------------------------


def make(include_usage: bool = False) -> Callable[[], CompletionStreamTranslator]:
    return lambda: CompletionStreamTranslator(model=MODEL, created=CREATED,
                                              include_usage=include_usage)


def translate(stream: bytes, include_usage: bool = False) -> bytes:
    return run_bytes(make(include_usage), [stream])


@dataclass
class Parsed:
    """What a client reassembles from a completion stream (checked on the way)."""

    chunks: list[JSON] = field(default_factory=list)
    text: str = ""
    finish: list[str] = field(default_factory=list)
    usage: list[JSON] = field(default_factory=list)
    errors: list[JSON] = field(default_factory=list)


def parse(out: bytes) -> Parsed:
    payloads = sse_payloads(out)
    assert payloads[-1] == "[DONE]" and payloads.count("[DONE]") == 1, payloads
    assert out.endswith(DONE_LINE)
    parsed = Parsed()
    body = payloads[:-1]
    for position, payload_ in enumerate(body):
        if "error" in payload_:
            assert set(payload_) == {"error"}
            assert position == len(body) - 1, "an error chunk ends the stream"
            parsed.errors.append(payload_["error"])
            continue
        parsed.chunks.append(payload_)
        _check_chunk(parsed, payload_)
    assert len({c["id"] for c in parsed.chunks}) <= 1
    return parsed


def sdk_validate(chunk: JSON) -> None:
    """Check a chunk against the official SDK's `Completion` model, `object` included.

    The model types `finish_reason` as never null, yet OpenAI streams null until the
    last chunk (the SDK builds stream chunks without validating), so null passes here."""
    choices = [{**c, "finish_reason": c["finish_reason"] or "stop"} for c in chunk["choices"]]
    Completion.model_validate({**chunk, "choices": choices})


def _check_chunk(parsed: Parsed, chunk: JSON) -> None:
    sdk_validate(chunk)
    assert chunk["object"] == "text_completion"
    assert chunk["created"] == CREATED and chunk["model"] == MODEL
    assert not parsed.usage, "nothing follows the usage chunk but [DONE]"
    if "usage" in chunk:
        assert chunk["choices"] == []
        assert len(parsed.finish) == 1, "usage comes after the finish chunk"
        parsed.usage.append(chunk["usage"])
        return
    (choice,) = chunk["choices"]
    assert set(choice) == {"index", "text", "logprobs", "finish_reason"}
    assert choice["index"] == 0 and choice["logprobs"] is None
    assert not parsed.finish, "nothing but usage follows the finish chunk"
    if choice["finish_reason"] is not None:
        assert choice["text"] == ""
        parsed.finish.append(choice["finish_reason"])
        return
    assert choice["text"], "no empty text chunks"
    parsed.text += choice["text"]


def upstream_usage(stream: bytes) -> JSON:
    for line in stream.split(b"\n"):
        if line.startswith(b"data: ") and b'"response.completed"' in line[:60]:
            usage = json.loads(line[6:])["response"]["usage"]
            assert isinstance(usage, dict)
            return usage
    raise AssertionError("no response.completed")


def test_plain_answer() -> None:
    parsed = parse(translate(fake_stream("hi")))
    assert parsed.text == ANSWER
    assert parsed.finish == ["stop"]
    assert parsed.usage == [] and parsed.errors == []
    assert parsed.chunks[0]["id"].startswith("resp_")


def test_text_needing_escapes_survives() -> None:
    parsed = parse(translate(fake_stream("fake:deltas=20")))
    assert parsed.text == DELTAS_20
    assert all(ch in parsed.text for ch in ('"', "\\", "\n", "é", "😀"))
    assert parsed.finish == ["stop"]


def test_long_stream_of_deltas() -> None:
    parsed = parse(translate(fake_stream("fake:deltas=500")))
    assert parsed.text == "".join(numbered_delta(i) for i in range(500))
    assert len(parsed.chunks) == 501


def test_reasoning_is_never_shown() -> None:
    out = translate(fake_stream("hi fake:reasoning_text"))
    parsed = parse(out)
    assert parsed.text == ANSWER and parsed.finish == ["stop"]
    assert b"thought" not in out and b"raw0" not in out and b"think" not in out


def test_tool_calls_are_not_shown() -> None:
    # Completions send no tools; should the backend call one anyway, only the text shows.
    parsed = parse(translate(fake_stream(TOOL_TEXT)))
    assert parsed.text == ANSWER
    assert parsed.finish == ["stop"]


def test_commentary_text_is_its_own_paragraph() -> None:
    parsed = parse(translate(fake_stream("hi fake:commentary")))
    assert parsed.text == COMMENTARY_TEXT + "\n\n" + ANSWER


def test_one_finish_chunk_for_several_text_parts() -> None:
    done = frame("response.output_text.done", {"text": "x"})
    parsed = parse(translate(b"".join([
        CREATED_EVENT, frame("response.output_text.delta", {"delta": "a"}), done,
        frame("response.output_text.delta", {"delta": "b"}), done, COMPLETED_EVENT])))
    assert parsed.text == "ab" and parsed.finish == ["stop"]


@pytest.mark.parametrize("include_usage", [False, True])
def test_usage_chunk_only_when_asked(include_usage: bool) -> None:
    stream = fake_stream("hi fake:reasoning")
    parsed = parse(translate(stream, include_usage))
    if not include_usage:
        assert parsed.usage == []
        return
    usage = upstream_usage(stream)
    (mapped,) = parsed.usage
    assert mapped["prompt_tokens"] == usage["input_tokens"]
    assert mapped["completion_tokens"] == usage["output_tokens"]
    assert mapped["total_tokens"] == usage["total_tokens"]
    assert parsed.chunks[-1]["choices"] == []


def test_incomplete_finishes_with_length() -> None:
    parsed = parse(translate(fake_stream("hi fake:incomplete"), include_usage=True))
    assert parsed.text == ANSWER
    assert parsed.finish == ["length"]
    assert len(parsed.usage) == 1 and parsed.errors == []


def test_incomplete_for_content_filter() -> None:
    event = frame("response.incomplete",
                  {"response": {"incomplete_details": {"reason": "content_filter"}}})
    assert parse(translate(CREATED_EVENT + event)).finish == ["content_filter"]


def test_failed_response() -> None:
    parsed = parse(translate(fake_stream("hi fake:fail")))
    assert parsed.text == "Hello! You "
    assert parsed.finish == []
    assert parsed.errors == [{"message": FAILED_MESSAGE, "type": "api_error", "param": None,
                              "code": "server_error"}]


def test_error_event() -> None:
    parsed = parse(translate(fake_stream("hi fake:error_event")))
    assert parsed.text == "" and parsed.finish == []
    assert [(e["message"], e["code"]) for e in parsed.errors] == [
        (RATE_LIMIT_MESSAGE, "rate_limit_exceeded")]


def test_cut_stream_is_reported_by_finish() -> None:
    translator = make()()
    out = translator.feed(fake_stream("hi fake:cut"))
    assert not out.endswith(DONE_LINE)
    assert translator.state is State.STREAMING
    out += translator.finish()
    parsed = parse(out)
    assert parsed.text == "Hello! You " and parsed.finish == []
    assert [(e["message"], e["code"]) for e in parsed.errors] == [
        (TRUNCATED_MESSAGE, "upstream_truncated")]


def test_empty_stream() -> None:
    parsed = parse(translate(fake_stream("hi fake:empty")))
    assert parsed.chunks == [] and parsed.finish == []
    assert [e["code"] for e in parsed.errors] == ["upstream_truncated"]


def test_abort_reports_once() -> None:
    translator = make()()
    out = translator.feed(fake_stream("hi fake:cut"))
    out += translator.abort("read timed out", "upstream_timeout")
    assert [(e["message"], e["code"]) for e in parse(out).errors] == [
        ("read timed out", "upstream_timeout")]
    assert translator.abort("again") == b"" and translator.finish() == b""


def test_nothing_after_the_terminal_event() -> None:
    stream = fake_stream("hi")
    translator = make()()
    out = translator.feed(stream)
    assert translator.state is State.DONE and out.endswith(DONE_LINE)
    assert translator.feed(stream) == b""
    assert translator.feed(frame("response.output_text.delta", {"delta": "late"})) == b""
    assert translator.finish() == b"" and translator.abort("late") == b""


def test_heartbeat_is_an_sse_comment() -> None:
    assert make()().heartbeat() == KEEP_ALIVE


# -- hand-written upstream events --------------------------------------------------------------

CREATED_EVENT = frame("response.created", {"response": {"id": "resp_h", "status": "in_progress"}})
COMPLETED_EVENT = frame("response.completed",
                        {"response": {"id": "resp_h", "status": "completed",
                                      "usage": {"input_tokens": 3, "output_tokens": 2}}})


def test_exact_chunk_bytes() -> None:
    delta = b'data: {"type":"response.output_text.delta","delta":"a\\"\\u00e9\\n"}\n\n'
    out = translate(CREATED_EVENT + delta + COMPLETED_EVENT, include_usage=True)
    head = b'data: {"id":"resp_h","object":"text_completion","created":%d,"model":"%s"' % (
        CREATED, MODEL.encode())
    assert out == (
        head + b',"choices":[{"index":0,"text":"a\\"\\u00e9\\n","logprobs":null,'
        b'"finish_reason":null}]}\n\n'
        + head + b',"choices":[{"index":0,"text":"","logprobs":null,"finish_reason":"stop"}]}\n\n'
        + head + b',"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,'
        b'"total_tokens":5}}\n\n'
        + DONE_LINE)


@pytest.mark.parametrize("data", [
    b'{"type":"response.output_text.delta","delta":"caf\\u00e9 \\"q\\" \\\\ \\n\xf0\x9f\x98\x80"}',
    b'{\n  "type": "response.output_text.delta",\n  "delta" :\t"caf\\u00e9 \\"q\\" \\\\ \\n'
    b'\xf0\x9f\x98\x80"\n}',
    # A nested object before the member: the fast path gives up and the JSON is parsed.
    b'{"type":"response.output_text.delta","logprobs":{"a":1},"delta":"caf\xc3\xa9 \\"q\\" '
    b'\\\\ \\n\\ud83d\\ude00"}',
])
def test_delta_formats_give_the_same_text(data: bytes) -> None:
    delta = b"".join(b"data: " + line + b"\n" for line in data.split(b"\n")) + b"\n"
    parsed = parse(translate(CREATED_EVENT + delta + COMPLETED_EVENT))
    assert parsed.text == 'café "q" \\ \n😀'
    assert parsed.finish == ["stop"]


def test_text_before_created_gets_a_fallback_id() -> None:
    parsed = parse(translate(frame("response.output_text.delta", {"delta": "a"})
                             + CREATED_EVENT + COMPLETED_EVENT))
    assert parsed.text == "a"
    assert parsed.chunks[0]["id"].startswith("cmpl-")


def test_completed_alone() -> None:
    parsed = parse(translate(COMPLETED_EVENT, include_usage=True))
    assert [c["id"] for c in parsed.chunks] == ["resp_h"] * 2
    assert parsed.text == "" and parsed.finish == ["stop"]
    assert parsed.usage == [{"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}]


def test_usage_chunk_needs_usage() -> None:
    parsed = parse(translate(CREATED_EVENT + frame("response.completed",
                                                   {"response": {"id": "resp_h"}}),
                             include_usage=True))
    assert parsed.usage == [] and parsed.finish == ["stop"]


def test_upstream_done_line_without_completion_is_a_truncation() -> None:
    parsed = parse(translate(CREATED_EVENT + frame("response.output_text.delta", {"delta": "a"})
                             + b"data: [DONE]\n\n"))
    assert parsed.text == "a"
    assert [e["code"] for e in parsed.errors] == ["upstream_truncated"]


# -- split points ------------------------------------------------------------------------------

SPLIT_TEXTS = ["hi fake:reasoning_text", "fake:deltas=20", "hi fake:fail", "hi fake:cut",
               "hi fake:incomplete"]


@pytest.mark.parametrize("text", SPLIT_TEXTS)
def test_stream_output_does_not_depend_on_chunking(text: str) -> None:
    stream = fake_stream(text)
    factory = make(include_usage=True)
    expected = run_bytes(factory, [stream])
    parse(expected)
    for chunks in whole_bytewise_and_splits(stream):
        assert run_bytes(factory, chunks) == expected, [len(c) for c in chunks]


_STREAMS: dict[str, bytes] = {}


def _cached_stream(text: str) -> bytes:
    if text not in _STREAMS:
        _STREAMS[text] = fake_stream(text)
    return _STREAMS[text]


@settings(max_examples=60, deadline=None)
@given(text=st.sampled_from([*SPLIT_TEXTS, "hi fake:commentary", "hi fake:error_event"]),
       include_usage=st.booleans(), cuts=st.lists(st.integers(min_value=0), max_size=40))
def test_stream_output_at_random_split_points(text: str, include_usage: bool,
                                              cuts: list[int]) -> None:
    stream = _cached_stream(text)
    factory = make(include_usage)
    assert run_bytes(factory, chunked(stream, cuts)) == run_bytes(factory, [stream])


EVENT_TYPES = ["response.created", "response.output_item.added", "response.output_item.done",
               "response.output_text.delta", "response.reasoning_summary_text.delta",
               "response.completed", "response.incomplete", "response.failed", "error"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(["id", "type", "usage", "input_tokens", "error",
                                       "message", "incomplete_details", "reason"]), children,
                      max_size=4),
    max_leaves=8)
event_fields = st.fixed_dictionaries({}, optional={
    "delta": json_values, "item": json_values, "response": json_values,
    "message": json_values, "code": json_values})


@settings(max_examples=150, deadline=None)
@given(events=st.lists(st.tuples(st.sampled_from(EVENT_TYPES), event_fields), max_size=10),
       cuts=st.lists(st.integers(min_value=0), max_size=5))
def test_any_well_formed_events_give_a_well_formed_stream(
        events: list[tuple[str, JSON]], cuts: list[int]) -> None:
    stream = b"".join(frame(kind, fields, event_line=bool(len(fields) % 2))
                      for kind, fields in events)
    parsed = parse(run_bytes(make(include_usage=True), chunked(stream, cuts)))
    assert len(parsed.finish) + len(parsed.errors) == 1
    collector = collected([stream])
    if collector.error is None:
        Completion.model_validate(text_completion(collector, model=MODEL, created=CREATED))


# -- non-streaming -------------------------------------------------------------------------------


def collected(chunks: list[bytes]) -> ResponseCollector:
    collector = ResponseCollector()
    for chunk in chunks:
        collector.feed(chunk)
    collector.finish()
    return collector


def whole(stream: bytes) -> JSON:
    collector = collected([stream])
    assert collector.error is None, collector.error
    result = text_completion(collector, model=MODEL, created=CREATED)
    Completion.model_validate(result)
    json.dumps(result, allow_nan=False)
    return result


def test_non_stream_object() -> None:
    stream = fake_stream("hi fake:reasoning_text")
    result = whole(stream)
    usage = upstream_usage(stream)
    assert result["id"].startswith("resp_")
    assert result["object"] == "text_completion"
    assert result["created"] == CREATED and result["model"] == MODEL
    assert result["choices"] == [{"index": 0, "text": ANSWER, "logprobs": None,
                                  "finish_reason": "stop"}]
    assert result["usage"]["prompt_tokens"] == usage["input_tokens"]
    assert result["usage"]["completion_tokens"] == usage["output_tokens"]
    assert result["usage"]["total_tokens"] == usage["total_tokens"]


def test_non_stream_escapes_and_paragraphs() -> None:
    assert whole(fake_stream("fake:deltas=20"))["choices"][0]["text"] == DELTAS_20
    assert whole(fake_stream("hi fake:commentary"))["choices"][0]["text"] == (
        COMMENTARY_TEXT + "\n\n" + ANSWER)


def test_non_stream_incomplete() -> None:
    choice = whole(fake_stream("hi fake:incomplete"))["choices"][0]
    assert choice["finish_reason"] == "length" and choice["text"] == ANSWER


def test_non_stream_without_created_or_usage() -> None:
    result = whole(frame("response.output_text.delta", {"delta": "a\\"})
                   + frame("response.completed", {"response": {}}))
    assert result["id"].startswith("cmpl-")
    assert result["choices"][0]["text"] == "a\\"
    assert "usage" not in result


@pytest.mark.parametrize("text", ["hi fake:reasoning_text", "fake:deltas=14", "hi fake:cut"])
def test_non_stream_does_not_depend_on_chunking(text: str) -> None:
    stream = fake_stream(text)

    def outcome(chunks: list[bytes]) -> Any:
        collector = collected(chunks)
        if collector.error is not None:
            return collector.error
        return text_completion(collector, model=MODEL, created=CREATED)

    expected = outcome([stream])
    for chunks in whole_bytewise_and_splits(stream):
        assert outcome(chunks) == expected
