"""chatmock.dialects.qwen_stream: the chat.qwen.ai phase stream → neutral provider events."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatmock.dialects.provider_events import (
    Error,
    Event,
    Finish,
    ReasoningDelta,
    Started,
    TextDelta,
    Usage,
)
from chatmock.dialects.qwen_request import completion_body, new_chat_body, web_headers
from chatmock.dialects.qwen_stream import QwenStreamDecoder, reply_error, status_of
from chatmock.jsonbytes import decode_string
from chatmock.testing.fake_codex import FakeReply
from chatmock.testing.fake_qwen import QWEN_TOKEN, WAF_PAGE, FakeQwen

from .helpers import chunked, whole_bytewise_and_splits

AUTH = [(b"authorization", b"Bearer " + QWEN_TOKEN.encode()),
        (b"cookie", b"token=" + QWEN_TOKEN.encode())]


def qwen_reply(text: str, *, effort: str = "medium", fake: FakeQwen | None = None,
               **change: Any) -> FakeReply:
    fake = fake or FakeQwen()
    headers = dict([*web_headers("http://q", None, stream=False), *AUTH])
    created = fake.handle("POST", "/api/v2/chats/new", headers,
                          json.dumps(new_chat_body("qwen3.7-plus", 0)).encode())
    chat_id = json.loads(created.body)["data"]["id"]
    payload = {"input": [{"role": "user", "content": text}], "reasoning": {"effort": effort}}
    body = completion_body(payload, model="qwen3.7-plus", chat_id=chat_id)
    body["messages"][0]["feature_config"].update(change)
    return fake.handle("POST", f"/api/v2/chat/completions?chat_id={chat_id}",
                       dict([*web_headers("http://q", chat_id, stream=True), *AUTH]),
                       json.dumps(body).encode())


def qwen_stream(text: str, **options: Any) -> bytes:
    reply = qwen_reply(text, **options)
    assert reply.status == 200 and reply.chunks is not None, reply.body
    return b"".join(piece for _, piece in reply.chunks)


def decode(chunks: list[bytes]) -> list[Event]:
    decoder = QwenStreamDecoder()
    return [e for chunk in chunks for e in decoder.feed(chunk)] + decoder.finish()


def text(events: list[Event], kind: type[TextDelta | ReasoningDelta] = TextDelta) -> str:
    return "".join(decode_string(e.raw) for e in events
                   if isinstance(e, TextDelta | ReasoningDelta) and type(e) is kind)


def test_an_answer_with_its_ids_usage_and_finish() -> None:
    events = decode([qwen_stream("hello there")])
    started = events[0]
    assert isinstance(started, Started) and started.response_id and started.chat_id
    assert started.parent_id and started.model == ""
    assert text(events) == "Hello! You said: hello there"
    usage = events[-2]
    assert isinstance(usage, Usage) and usage.output_tokens == 5 and usage.input_tokens > 0
    assert events[-1] == Finish("stop")


def test_the_think_phase_is_reasoning() -> None:
    events = decode([qwen_stream("q fake:reasoning=3", effort="high")])
    assert text(events, ReasoningDelta) == "thought 0 thought 1 thought 2 "
    assert not any(isinstance(e, ReasoningDelta) and e.summary for e in events)
    assert isinstance(events[-2], Usage) and events[-2].reasoning_tokens == 3


def test_thinking_summary_snapshots_become_deltas() -> None:
    events = decode([qwen_stream("q fake:reasoning=3", effort="high",
                                 thinking_format="summary")])
    reasoning = [e for e in events if isinstance(e, ReasoningDelta)]
    assert {e.summary for e in reasoning} == {True}
    assert text(events, ReasoningDelta) == "thought 0 \n\nthought 1 \n\nthought 2 "


def test_a_snapshot_that_does_not_extend_the_last_starts_a_paragraph() -> None:
    def line(parts: list[str]) -> bytes:
        delta = {"phase": "thinking_summary", "content": "",
                 "extra": {"summary_thought": {"content": parts}}}
        return b"data: " + json.dumps({"choices": [{"delta": delta}]}).encode() + b"\n\n"

    stream = line(["a"]) + line(["a", "b"]) + line(["new"]) + line(["new"])
    assert text(decode([stream]), ReasoningDelta) == "a\n\nb\n\nnew"


def test_without_phases_every_delta_is_answer_text() -> None:
    events = decode([qwen_stream("hi", output_schema="none")])
    assert text(events) == "Hello! You said: hi"
    assert events[-1] == Finish("stop")


@pytest.mark.parametrize("directive, code, status", [
    ("fake:error_event", "RateLimited", 429), ("fake:error=429", "Too_Many_Requests", 429),
    ("fake:error=503", "Server_Busy", 503), ("a b c fake:fail", "Internal_Server_Error", 502)])
def test_in_stream_errors(directive: str, code: str, status: int) -> None:
    error = decode([qwen_stream(directive)])[-1]
    assert isinstance(error, Error) and (error.code, error.status) == (code, status)


def test_a_cut_stream_is_aborted_and_an_empty_one_fails() -> None:
    decoder = QwenStreamDecoder()
    assert text(decoder.feed(qwen_stream("a b c fake:cut"))) == "Hello! You "
    assert decoder.abort("connection reset") == [Error("connection reset")]
    assert decode([b""]) == [Error("the provider's stream ended without an answer",
                                   "empty_response", 502)]


def test_done_marker_and_stop() -> None:
    reply = qwen_reply("x", fake=FakeQwen(done_marker=True))
    assert reply.chunks is not None
    stream = b"".join(piece for _, piece in reply.chunks)
    assert stream.endswith(b"data: [DONE]\n\n")
    events = decode([stream])
    assert [e for e in events if isinstance(e, Finish)] == [Finish("stop")]
    stopped = (b'data: {"response.created":{"response_id":"R"}}\n\n'
               b'data: {"choices":[{"delta":{"content":"a","phase":"answer"}}]}\n\n'
               b'data: {"response.stopped":{"response_id":"R"}}\n\n')
    assert decode([stopped])[-2:] == [TextDelta(b"a"), Finish("stop")]


def test_answer_text_is_copied_raw() -> None:
    line = (b'data: {"choices":[{"delta":{"role":"assistant","content":"caf\\u00e9",'
            b'"phase":"answer","status":"typing"}}],"response_id":"R"}\n\n')
    events = decode([b'data: {"response.created":{"response_id":"R"}}\n\n' + line])
    assert TextDelta(b"caf\\u00e9") in events and text(events) == "café"


def test_keep_alives_and_search_phases_are_skipped() -> None:
    stream = (b'data: {"response.created":{"response_id":"R"}}\n\n'
              b'data: {"response.info":{"action":"keep_alive"}}\n\n'
              b'data: {"choices":[{"delta":{"name":"web_search","phase":"web_search",'
              b'"content":"","extra":{"web_search_info":[]}}}]}\n\n'
              b'data: {"choices":[{"delta":{"content":"x","phase":"answer",'
              b'"status":"finished"}}]}\n\n')
    assert decode([stream])[1:] == [TextDelta(b"x"), Finish("stop")]


STREAMS = [qwen_stream("fake:deltas=20 fake:reasoning=3", effort="high"),
           qwen_stream("fake:deltas=20 fake:reasoning=3", effort="high",
                       thinking_format="summary")]


@pytest.mark.parametrize("stream", STREAMS)
def test_whole_bytewise_and_every_two_way_split_agree(stream: bytes) -> None:
    expected = decode([stream])
    for chunks in whole_bytewise_and_splits(stream):
        assert decode(chunks) == expected


@settings(max_examples=60, deadline=None)
@given(index=st.integers(0, len(STREAMS) - 1),
       cuts=st.lists(st.integers(0, 100_000), max_size=30))
def test_random_splits_give_identical_events(index: int, cuts: list[int]) -> None:
    assert decode(chunked(STREAMS[index], cuts)) == decode([STREAMS[index]])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=5))
def test_garbage_never_raises(chunks: list[bytes]) -> None:
    assert sum(isinstance(e, Finish | Error) for e in decode(chunks)) == 1


def test_json_errors_and_the_waf_page_are_reply_errors() -> None:
    fake = FakeQwen()
    refused = fake.handle("POST", "/api/v2/chat/completions?chat_id=nope",
                          dict([*web_headers("http://q", None, stream=True), *AUTH]), b"{}")
    error = reply_error(refused.status, refused.headers, refused.body)
    assert error is not None and (error.code, error.status) == ("Not_Found", 404)
    waf = reply_error(200, [(b"content-type", b"text/html; charset=utf-8")], WAF_PAGE)
    assert waf is not None and (waf.code, waf.status) == ("waf_challenge", 403)
    assert reply_error(200, [(b"content-type", b"text/plain")], b"RGV587_ERROR::SM") == waf
    assert reply_error(200, [(b"content-type", b"text/event-stream;charset=UTF-8")], b"") is None
    odd = reply_error(500, [(b"content-type", b"application/json")], b"oops")
    assert odd is not None and odd.status == 500
    guessed = reply_error(200, [(b"content-type", b"application/json")],
                          b'{"success":false,"data":{"code":"RateLimited"}}')
    assert guessed == Error("RateLimited", "RateLimited", 429)


@pytest.mark.parametrize("code, status", [("Unauthorized", 401), ("unauthorized", 401),
                                          ("ContextLengthExceeded", 400), ("quotaLimited", 429),
                                          ("Whatever", 502)])
def test_status_of_codes(code: str, status: int) -> None:
    assert status_of(code) == status
