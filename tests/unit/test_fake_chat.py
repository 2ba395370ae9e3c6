"""The fake OpenAI-compatible chat-completions server (chatmock.testing.fake_chat), per flavor."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from chatmock.testing.fake_chat import FakeChat
from chatmock.testing.fake_chat_flavors import FLAVORS, OPENROUTER_KEY, XAI_KEY
from chatmock.testing.fake_codex import FakeReply

JSON = dict[str, Any]
KEYS = {"xai": XAI_KEY, "openrouter": OPENROUTER_KEY}
PNG = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
       "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")
TOOL = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}


def headers(flavor: str, **extra: bytes) -> dict[bytes, bytes]:
    found = {b"authorization": b"Bearer " + KEYS.get(flavor, "any").encode(),
             b"content-type": b"application/json"}
    found.update({k.replace("_", "-").encode(): v for k, v in extra.items()})
    return found


def body(flavor: str, text: str = "hi", **fields: Any) -> JSON:
    model = FLAVORS[flavor].models[0].id
    found: JSON = {"model": model, "stream": True,
                   "messages": [{"role": "user", "content": text}]}
    found.update(fields)
    return found


def post(fake: FakeChat, payload: object, hdrs: dict[bytes, bytes] | None = None) -> FakeReply:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    name = fake.flavor.name
    return fake.handle("POST", fake.flavor.prefix + "/chat/completions",
                       headers(name) if hdrs is None else hdrs, raw)


def raw_stream(reply: FakeReply) -> bytes:
    assert reply.status == 200, reply.body
    assert reply.chunks is not None
    return b"".join(data for _, data in reply.chunks)


def blocks(data: bytes) -> list[Any]:
    """Every SSE block: a comment string, "[DONE]", or the parsed chunk."""
    assert data == b"" or data.endswith(b"\n\n")
    found: list[Any] = []
    for block in data.split(b"\n\n")[:-1]:
        if block.startswith(b":"):
            found.append(block.decode())
            continue
        assert block.startswith(b"data: ") and b"\n" not in block, block
        payload = block[len(b"data: "):]
        found.append("[DONE]" if payload == b"[DONE]" else json.loads(payload))
    return found


def chunks_of(flavor: str, text: str = "hi", **fields: Any) -> list[Any]:
    return blocks(raw_stream(post(FakeChat(flavor), body(flavor, text, **fields))))


def deltas(found: list[Any]) -> list[JSON]:
    return [c["choices"][0]["delta"] for c in found if isinstance(c, dict) and c.get("choices")]


def error_of(reply: FakeReply) -> JSON:
    value = json.loads(reply.body)
    assert isinstance(value, dict)
    return value


def text_of(found: list[Any]) -> str:
    return "".join(d.get("content") or "" for d in deltas(found))


# -- framing shared by every flavor -------------------------------------------------------


@pytest.mark.parametrize("flavor", sorted(FLAVORS))
def test_every_flavor_streams_the_codex_fakes_answer(flavor: str) -> None:
    found = chunks_of(flavor, "hello there")
    assert text_of(found) == "Hello! You said: hello there"
    chunks = [c for c in found if isinstance(c, dict)]
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert len({c["id"] for c in chunks}) == 1
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert [f for f in finishes if f] == ["stop"]
    assert (found[-1] == "[DONE]") is FLAVORS[flavor].done_marker


@pytest.mark.parametrize("flavor", ["xai", "vllm", "ollama", "openai"])
def test_usage_comes_in_a_choiceless_chunk_after_the_finish_only_when_asked(flavor: str) -> None:
    plain = [c for c in chunks_of(flavor) if isinstance(c, dict)]
    assert not any("usage" in c for c in plain)
    asked = [c for c in chunks_of(flavor, stream_options={"include_usage": True})
             if isinstance(c, dict)]
    assert asked[-1]["choices"] == []
    assert asked[-2]["choices"][0]["finish_reason"] == "stop"
    usage = asked[-1]["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0


def test_split_tool_call_arguments_carry_index_and_the_first_delta_the_id() -> None:
    found = chunks_of("vllm", 'x fake:tool=get_weather fake:args={"city":"Paris"} fake:tool=b',
                      tools=[TOOL])
    calls = [call for d in deltas(found) for call in d.get("tool_calls", [])]
    assert calls[0] == {"id": calls[0]["id"], "type": "function", "index": 0,
                        "function": {"name": "get_weather", "arguments": ""}}
    pieces = [c["function"]["arguments"] for c in calls if c["index"] == 0]
    assert "".join(pieces) == '{"city":"Paris"}' and len(pieces) > 2
    assert all("id" not in c for c in calls[1:] if c["index"] == 0)
    assert [c["function"]["name"] for c in calls if "name" in c["function"]] == \
        ["get_weather", "b"]
    assert [c for c in found if isinstance(c, dict) and c["choices"]][-1]["choices"][0][
        "finish_reason"] == "tool_calls"


def test_tool_calls_without_text_send_no_content_deltas() -> None:
    found = chunks_of("openai", "fake:tool=b")
    assert text_of(found) == ""


@pytest.mark.parametrize("ending, last", [("fail", "error"), ("error_event", "error")])
@pytest.mark.parametrize("flavor", ["vllm", "xai"])
def test_in_stream_errors_end_the_stream_without_done(flavor: str, ending: str,
                                                      last: str) -> None:
    found = chunks_of(flavor, f"a b c d fake:{ending}")
    assert "[DONE]" not in found
    assert last in found[-1]
    if ending == "fail":
        assert text_of(found) == "Hello! You "


def test_cut_stops_after_two_deltas_and_drops_the_connection() -> None:
    reply = post(FakeChat("openai"), body("openai", "a b c d fake:cut"))
    assert reply.cut
    found = blocks(raw_stream(reply))
    assert text_of(found) == "Hello! You " and found[-1] != "[DONE]"


def test_incomplete_finishes_with_length_and_empty_sends_nothing() -> None:
    found = chunks_of("openai", "fake:incomplete")
    assert [c["choices"][0]["finish_reason"] for c in found if isinstance(c, dict)][-1] == \
        "length"
    assert chunks_of("openai", "fake:empty") == []
    assert chunks_of("openrouter", "fake:empty") == [": OPENROUTER PROCESSING"]


def test_non_streamed_answer_is_one_chat_completion() -> None:
    reply = post(FakeChat("vllm"), body("vllm", "q fake:reasoning=2 fake:tool=f", stream=False))
    assert reply.status == 200 and reply.chunks is None
    answer = json.loads(reply.body)
    assert answer["object"] == "chat.completion"
    message = answer["choices"][0]["message"]
    assert message["content"] == "Hello! You said: q"
    assert message["reasoning"] == "thought 0 thought 1 "
    assert message["tool_calls"][0]["function"] == {"name": "f", "arguments": "{}"}
    assert answer["choices"][0]["finish_reason"] == "tool_calls"
    assert answer["usage"]["completion_tokens"] == 2 + 4 + 1


def test_non_streamed_failures() -> None:
    fake = FakeChat("openai")
    assert post(fake, body("openai", "fake:fail", stream=False)).status == 502
    assert post(fake, body("openai", "fake:error_event", stream=False)).status == 429
    assert post(fake, body("openai", "fake:cut", stream=False)).cut


def test_a_tool_result_is_answered_and_directives_do_not_apply() -> None:
    messages = [{"role": "user", "content": "fake:tool=f"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f",
                                                                  "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "sunny fake:error=500"}]
    found = chunks_of("openai", messages=messages)
    assert text_of(found) == "Tool c1 returned: sunny fake:error=500"


def test_structured_output_answers_json_of_the_schema() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    found = chunks_of("openai", "x", response_format={
        "type": "json_schema", "json_schema": {"name": "w", "schema": schema}})
    assert json.loads(text_of(found)) == {"city": "Hello! You said: x"}


def test_requests_are_recorded_and_can_be_cleared() -> None:
    fake = FakeChat("openrouter")
    hdrs = headers("openrouter", http_referer=b"https://example.org/app",
                   x_openrouter_title=b"ChatMock")
    post(fake, body("openrouter"), hdrs)
    post(fake, b"not json", hdrs)
    listed = json.loads(fake.handle("GET", "/__fake__/requests", {}, b"").body)
    assert [r["body"] is None for r in listed] == [False, True]
    assert listed[0]["headers"]["http-referer"] == "https://example.org/app"
    assert listed[0]["headers"]["x-openrouter-title"] == "ChatMock"
    assert listed[0]["path"] == "/api/v1/chat/completions"
    assert fake.handle("DELETE", "/__fake__/requests", {}, b"").status == 204
    assert fake.requests == []


def test_unknown_paths_and_methods() -> None:
    fake = FakeChat("openai")
    assert fake.handle("GET", "/v2/nothing", {}, b"").status == 404
    assert fake.handle("GET", "/v1/chat/completions", {}, b"").status == 405


# -- what every flavor refuses -------------------------------------------------------------


def msg(role: str, content: Any = "x", **extra: Any) -> JSON:
    return {"role": role, "content": content, **extra}


def call(call_id: str) -> JSON:
    return {"id": call_id, "type": "function", "function": {"name": "f", "arguments": "{}"}}


@pytest.mark.parametrize("fields, needle", [
    ({"messages": []}, "non-empty"),
    ({"messages": [msg("robot")]}, "role"),
    ({"messages": [msg("user", None)]}, "content"),
    ({"messages": [msg("user", 5)]}, "content"),
    ({"messages": [msg("system", [{"type": "image_url", "image_url": {"url": PNG}}])]},
     "content"),
    ({"messages": [msg("user", [{"type": "audio"}])]}, "content part"),
    ({"messages": [msg("user", [{"type": "image_url", "image_url": {"url": "data:x"}}])]},
     "image URL"),
    ({"messages": [msg("assistant", None, tool_calls=[{"id": "c"}])]}, "tool_calls[0]"),
    ({"messages": [msg("tool", "r")]}, "tool_call_id"),
    ({"tools": [{"type": "function", "function": {"name": "bad name"}}]}, "tools[0]"),
    ({"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
     "tool_choice"),
    ({"stream": False, "stream_options": {"include_usage": True}}, "stream_options"),
    ({"model": None}, "model"),
])
def test_bad_requests_are_refused(fields: JSON, needle: str) -> None:
    reply = post(FakeChat("openai"), body("openai", **fields))
    assert reply.status == 400
    assert needle in error_of(reply)["error"]["message"]


@pytest.mark.parametrize("flavor, strict", [("openai", True), ("xai", True),
                                            ("openrouter", True), ("vllm", False),
                                            ("ollama", False)])
def test_tool_messages_must_answer_an_earlier_call_on_strict_servers(flavor: str,
                                                                     strict: bool) -> None:
    orphan = [msg("user"), msg("tool", "r", tool_call_id="c9")]
    unanswered = [msg("user"), msg("assistant", None, tool_calls=[call("c1")]), msg("user")]
    for messages in (orphan, unanswered):
        reply = post(FakeChat(flavor), body(flavor, messages=messages))
        assert reply.status == (400 if strict else 200), reply.body


def test_images_need_a_vision_model() -> None:
    image = [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": PNG}}]
    assert post(FakeChat("ollama"), body("ollama", model="llama3.2-vision:11b",
                                         messages=[msg("user", image)])).status == 200
    reply = post(FakeChat("ollama"), body("ollama", messages=[msg("user", image)]))
    assert reply.status == 400 and "image" in error_of(reply)["error"]["message"]


@pytest.mark.parametrize("text, status", [("fake:error=503", 503), ("fake:error=418", 418),
                                          ("fake:websearch=x", 400), ("fake:commentary", 400),
                                          ("fake:retry_after=soon fake:error=429", 400),
                                          ("fake:bogus", 400)])
def test_directive_errors(text: str, status: int) -> None:
    assert post(FakeChat("openai"), body("openai", text)).status == status


def test_retry_after_directive_is_taken_out_of_the_answer() -> None:
    found = chunks_of("openai", "hello fake:retry_after=3")
    assert text_of(found) == "Hello! You said: hello"


# -- xAI ------------------------------------------------------------------------------------


def test_xai_sends_each_tool_call_whole_in_one_chunk() -> None:
    found = chunks_of("xai", 'x fake:tool=a fake:args={"k":"v"} fake:tool=b', tools=[TOOL])
    calls = [d["tool_calls"] for d in deltas(found) if "tool_calls" in d]
    assert calls == [[{"id": calls[0][0]["id"], "type": "function", "index": 0,
                       "function": {"name": "a", "arguments": '{"k":"v"}'}}],
                     [{"id": calls[1][0]["id"], "type": "function", "index": 1,
                       "function": {"name": "b", "arguments": "{}"}}]]


def test_xai_streams_reasoning_text_only_for_grok_3_mini() -> None:
    mini = chunks_of("xai", "q fake:reasoning=2", model="grok-3-mini", reasoning_effort="high")
    assert [d["reasoning_content"] for d in deltas(mini) if "reasoning_content" in d] == \
        ["thought 0 ", "thought 1 "]
    grok4 = chunks_of("xai", "q fake:reasoning=2", model="grok-4",
                      stream_options={"include_usage": True})
    assert not any("reasoning_content" in d for d in deltas(grok4))
    assert grok4[-2]["usage"]["completion_tokens_details"]["reasoning_tokens"] == 2


@pytest.mark.parametrize("model, effort, ok", [
    ("grok-4", "low", False), ("grok-code-fast-1", "high", False),
    ("grok-4.20-0309-reasoning", "low", False), ("grok-3-mini", "low", True),
    ("grok-3-mini", "medium", False), ("grok-4.3", "none", True), ("grok-4.5", "none", False),
])
def test_xai_reasoning_effort_per_model(model: str, effort: str, ok: bool) -> None:
    reply = post(FakeChat("xai"), body("xai", model=model, reasoning_effort=effort))
    assert reply.status == (200 if ok else 400)
    if model == "grok-4":
        assert error_of(reply) == {"code": "Client specified an invalid argument",
                                   "error": "Model grok-4 does not support parameter "
                                            "reasoningEffort"}


def test_xai_reasoning_models_refuse_penalties_and_stop() -> None:
    assert post(FakeChat("xai"), body("xai", stop=["x"])).status == 400
    reply = post(FakeChat("xai"), body("xai", model="grok-4.20-0309-non-reasoning",
                                       presence_penalty=0.5))
    assert reply.status == 200


def test_xai_key_errors_have_a_string_error() -> None:
    fake = FakeChat("xai")
    wrong = post(fake, body("xai"), {b"authorization": b"Bearer xai-wrong-key",
                                     b"content-type": b"application/json"})
    assert wrong.status == 400
    assert error_of(wrong)["error"].startswith("Incorrect API key provided: xa***ey")
    missing = post(fake, body("xai"), {b"content-type": b"application/json"})
    assert missing.status == 401 and isinstance(error_of(missing)["error"], str)


@pytest.mark.parametrize("content_type, raw", [(b"text/plain", b"{}"), (None, b"{}"),
                                               (b"application/json", b"")])
def test_xai_wants_a_json_content_type_and_a_body(content_type: bytes | None,
                                                  raw: bytes) -> None:
    hdrs = {b"authorization": b"Bearer " + XAI_KEY.encode()}
    if content_type is not None:
        hdrs[b"content-type"] = content_type
    assert post(FakeChat("xai"), raw, hdrs).status == 415


def test_xai_unknown_model_is_404_and_a_retired_alias_answers_as_its_successor() -> None:
    assert post(FakeChat("xai"), body("xai", model="grok-beta")).status == 404
    found = chunks_of("xai", model="grok-4-fast-reasoning")
    assert {c["model"] for c in found if isinstance(c, dict)} == {"grok-4.3"}


def test_xai_model_lists() -> None:
    fake = FakeChat("xai")
    auth = headers("xai")
    listed = json.loads(fake.handle("GET", "/v1/models", auth, b"").body)
    assert listed["object"] == "list"
    assert {"id", "created", "object", "owned_by"} == set(listed["data"][0])
    assert fake.handle("GET", "/v1/models", {}, b"").status == 401
    one = json.loads(fake.handle("GET", "/v1/models/grok-4.3", auth, b"").body)
    assert one["id"] == "grok-4.3"
    assert fake.handle("GET", "/v1/models/grok-beta", auth, b"").status == 404
    language = json.loads(fake.handle("GET", "/v1/language-models", auth, b"").body)
    assert "grok-4-fast-reasoning" not in {m["id"] for m in language["models"]}
    assert language["models"][0]["aliases"]


# -- OpenRouter --------------------------------------------------------------------------------


def test_openrouter_comments_reasoning_details_and_usage_in_the_last_chunk() -> None:
    found = chunks_of("openrouter", "q fake:reasoning=2")
    assert found[0] == ": OPENROUTER PROCESSING"
    assert found.count(": OPENROUTER PROCESSING") == 2
    reasoning = [d for d in deltas(found) if d.get("reasoning_details")]
    assert [d["reasoning"] for d in reasoning] == ["thought 0 ", "thought 1 ", None]
    assert reasoning[0]["reasoning_details"][0]["type"] == "reasoning.summary"
    assert reasoning[-1]["reasoning_details"][0]["type"] == "reasoning.encrypted"
    chunks = [c for c in found if isinstance(c, dict)]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] is None and last["usage"]["cost"] > 0
    assert last["provider"] == "OpenAI" and found[-1] == "[DONE]"


def test_openrouter_reasoning_can_be_excluded_and_is_plain_text_for_other_vendors() -> None:
    excluded = chunks_of("openrouter", "q fake:reasoning=2", reasoning={"exclude": True})
    assert not any("reasoning" in d for d in deltas(excluded))
    kimi = chunks_of("openrouter", "q fake:reasoning=1", model="moonshotai/kimi-k2-thinking")
    details = [d["reasoning_details"][0] for d in deltas(kimi) if "reasoning_details" in d]
    assert details == [{"type": "reasoning.text", "text": "thought 0 ", "format": "unknown",
                        "index": 0}]


def test_openrouter_mid_stream_error_is_a_chunk_with_finish_reason_error() -> None:
    found = chunks_of("openrouter", "a b c fake:fail")
    last = found[-1]
    assert last["error"] == {"code": "server_error",
                             "message": "The provider failed this response (fake)."}
    assert last["choices"][0]["finish_reason"] == "error"
    assert "[DONE]" not in found


def test_openrouter_402_with_and_without_retry_after() -> None:
    fake = FakeChat("openrouter")
    plain = post(fake, body("openrouter", "fake:error=402"))
    assert plain.status == 402 and error_of(plain)["error"]["code"] == 402
    assert b"retry-after" not in dict(plain.headers)
    hinted = post(fake, body("openrouter", "fake:error=402 fake:retry_after=30"))
    assert dict(hinted.headers)[b"retry-after"] == b"30"


def test_openrouter_429_carries_retry_after_seconds_in_metadata() -> None:
    reply = post(FakeChat("openrouter"), body("openrouter", "fake:error=429"))
    error = error_of(reply)["error"]
    assert reply.status == 429 and error["message"] == "Provider returned error"
    assert error["metadata"]["retry_after_seconds"] == 7
    assert "rate-limited upstream" in error["metadata"]["raw"]
    hinted = post(FakeChat("openrouter"), body("openrouter", "fake:error=429 fake:retry_after=2"))
    assert error_of(hinted)["error"]["metadata"]["retry_after_seconds"] == 2


@pytest.mark.parametrize("reasoning", [{"effort": "high", "max_tokens": 100},
                                       {"effort": "extreme"}, "high"])
def test_openrouter_reasoning_parameter_rules(reasoning: Any) -> None:
    assert post(FakeChat("openrouter"), body("openrouter", reasoning=reasoning)).status == 400


def test_openrouter_kimi_needs_reasoning_details_back_on_tool_turns() -> None:
    turn = msg("assistant", None, tool_calls=[call("c1")])
    messages = [msg("user"), turn, msg("tool", "r", tool_call_id="c1")]
    fake = FakeChat("openrouter")
    model = "moonshotai/kimi-k2-thinking"
    refused = post(fake, body("openrouter", model=model, messages=messages))
    assert refused.status == 400
    assert "reasoning_content is missing" in error_of(refused)["error"]["metadata"]["raw"]
    turn["reasoning_details"] = [{"type": "reasoning.text", "text": "t", "index": 0}]
    assert post(fake, body("openrouter", model=model, messages=messages)).status == 200


def test_openrouter_keys_models_and_generation_id() -> None:
    fake = FakeChat("openrouter")
    assert post(fake, body("openrouter"), {b"authorization": b"Bearer sk-or-v1-nope"}
                ).status == 401
    assert post(fake, body("openrouter"), {}).status == 401
    assert post(fake, body("openrouter", model="sonoma/sky")).status == 400
    listed = json.loads(fake.handle("GET", "/api/v1/models", {}, b"").body)
    entry = listed["data"][0]
    assert {"canonical_slug", "context_length", "architecture", "pricing", "top_provider",
            "supported_parameters"} <= set(entry)
    reasoning = json.loads(fake.handle("GET", "/api/v1/models?supported_parameters=reasoning",
                                       {}, b"").body)
    assert len(reasoning["data"]) < len(listed["data"])
    reply = post(fake, body("openrouter"))
    assert dict(reply.headers)[b"x-generation-id"].startswith(b"gen-")


# -- local servers ---------------------------------------------------------------------------


def test_vllm_streams_reasoning_and_refuses_a_wrong_key_when_it_has_one() -> None:
    found = chunks_of("vllm", "q fake:reasoning=1")
    assert [d["reasoning"] for d in deltas(found) if "reasoning" in d] == ["thought 0 "]
    keyed = FakeChat("vllm", api_key="secret")
    reply = post(keyed, body("vllm"))
    assert reply.status == 401 and error_of(reply) == {"error": "Unauthorized"}
    assert post(FakeChat("vllm"), body("vllm", model="other")).status == 404


def test_llamacpp_ends_without_done_with_usage_and_timings_on_the_finish_chunk() -> None:
    found = chunks_of("llamacpp", "q", model="whatever-name")
    last = found[-1]
    assert last["choices"][0]["finish_reason"] == "stop"
    assert last["usage"]["completion_tokens"] == 4 and last["timings"]["predicted_n"] == 4
    assert last["model"] == "qwen3-8b-q4_k_m.gguf"
    keyed = FakeChat("llamacpp", api_key="secret")
    assert error_of(post(keyed, body("llamacpp")))["type"] == "authentication_error"


def test_ollama_tool_calls_have_no_index_and_the_first_no_id() -> None:
    found = chunks_of("ollama", "x fake:tool=a fake:tool=b", tools=[TOOL])
    calls = [d["tool_calls"] for d in deltas(found) if "tool_calls" in d]
    assert calls[0] == [{"type": "function", "function": {"name": "a", "arguments": "{}"}}]
    assert set(calls[1][0]) == {"id", "type", "function"}
    assert post(FakeChat("ollama"), body("ollama"), {}).status == 200  # no key needed


def test_a_flavor_can_be_built_from_quirks() -> None:
    custom = dataclasses.replace(FLAVORS["vllm"], done_marker=False, usage="on_finish")
    found = blocks(raw_stream(post(FakeChat(custom), body("vllm"))))
    assert found[-1]["usage"]["prompt_tokens"] > 0


@pytest.mark.parametrize("flavor", ["vllm", "llamacpp", "ollama", "openai"])
def test_local_model_lists(flavor: str) -> None:
    listed = json.loads(FakeChat(flavor).handle("GET", "/v1/models", headers(flavor), b"").body)
    assert listed["object"] == "list"
    assert listed["data"][0]["id"] == FLAVORS[flavor].models[0].id
