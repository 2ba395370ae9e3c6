"""Unit tests for the sans-I/O fake Codex backend (chatmock.testing.fake_codex)."""

from __future__ import annotations

import json
import time
from itertools import islice
from typing import Any

import pytest

from chatmock.testing.credentials import codex_headers
from chatmock.testing.fake_codex import FakeCodex, FakeReply
from chatmock.testing.fake_mint import encrypted_reasoning
from chatmock.testing.fake_rules import MODEL_EFFORTS

RESPONSES = "/backend-api/codex/responses"
AUTH = codex_headers("test-token", "acct-1")
RATE_HEADERS = {
    f"x-codex-{w}-{k}".encode()
    for w in ("primary", "secondary")
    for k in ("used-percent", "window-minutes", "reset-after-seconds")
}
PNG_1PX = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwAD"
    "hgGAWjR9awAAAABJRU5ErkJggg=="
)

JSON = dict[str, Any]


def user(text: str) -> JSON:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def payload(text: str = "hi", **fields: Any) -> JSON:
    body: JSON = {"model": "gpt-5.4", "stream": True, "store": False, "input": [user(text)]}
    body.update(fields)
    return body


def post(fake: FakeCodex, body: object, headers: dict[bytes, bytes] | None = None) -> FakeReply:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return fake.handle("POST", RESPONSES, AUTH if headers is None else headers, raw)


def stream_bytes(reply: FakeReply) -> bytes:
    assert reply.status == 200, reply.body
    assert reply.chunks is not None
    return b"".join(data for _, data in reply.chunks)


def parse_sse(data: bytes) -> list[JSON]:
    """Split ``event:``/``data:`` blocks and check that both lines agree."""
    assert data == b"" or data.endswith(b"\n\n")
    events = []
    for block in data.split(b"\n\n")[:-1]:
        event_line, data_line = block.split(b"\n")
        assert event_line.startswith(b"event: ") and data_line.startswith(b"data: ")
        event = json.loads(data_line[len(b"data: ") :])
        assert event["type"] == event_line[len(b"event: ") :].decode()
        events.append(event)
    return events


def run(text: str, **fields: Any) -> list[JSON]:
    return parse_sse(stream_bytes(post(FakeCodex(), payload(text, **fields))))


def types(events: list[JSON]) -> list[str]:
    return [e["type"] for e in events]


def deltas(events: list[JSON], kind: str = "response.output_text.delta") -> list[str]:
    return [e["delta"] for e in events if e["type"] == kind]


def header(reply: FakeReply, name: bytes) -> bytes:
    values = [v for k, v in reply.headers if k == name]
    assert len(values) == 1, (name, reply.headers)
    return values[0]


def error_body(reply: FakeReply) -> JSON:
    assert reply.chunks is None
    assert header(reply, b"content-type") == b"application/json"
    result: JSON = json.loads(reply.body)
    return result


def detail(reply: FakeReply) -> str:
    assert reply.status == 400, reply.body
    text: str = error_body(reply)["detail"]
    return text


MESSAGE_EVENTS = [
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
]


def squash(event_types: list[str]) -> list[str]:
    """Collapse runs of the same event type, to compare shapes."""
    return [t for i, t in enumerate(event_types) if i == 0 or event_types[i - 1] != t]


# --- authentication and body -------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {b"chatgpt-account-id": b"acct"},
        {b"authorization": b"Bearer ", b"chatgpt-account-id": b"acct"},
        {b"authorization": b"Basic abc", b"chatgpt-account-id": b"acct"},
    ],
)
def test_missing_bearer_is_401(headers: dict[bytes, bytes]) -> None:
    reply = post(FakeCodex(), payload(), headers)
    assert reply.status == 401
    error = error_body(reply)["error"]
    assert error["message"] == "Missing bearer or basic authentication in header"
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize("name", [b"chatgpt-account-id", b"originator", b"user-agent",
                                  b"session-id"])
def test_missing_client_header_is_400(name: bytes) -> None:
    headers = {key: value for key, value in AUTH.items() if key != name}
    assert detail(post(FakeCodex(), payload(), headers)) == \
        f"Missing required header: {name.decode()}"
    assert detail(post(FakeCodex(), payload(), {**headers, name: b" "})) == \
        f"Missing required header: {name.decode()}"


def test_session_id_under_either_spelling() -> None:
    headers = {key: value for key, value in AUTH.items() if key != b"session-id"}
    assert post(FakeCodex(), payload(), {**headers, b"session_id": b"s"}).status == 200


def test_auth_is_checked_before_the_body() -> None:
    assert post(FakeCodex(), b"not json", {}).status == 401


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"{nope", "Invalid JSON body"),
        (b"", "Invalid JSON body"),
        (b"\xff\xfe\x00", "Invalid JSON body"),
        (b"[1, 2]", "Request body must be a JSON object"),
    ],
)
def test_body_must_be_a_json_object(raw: bytes, expected: str) -> None:
    assert detail(post(FakeCodex(), raw)) == expected


@pytest.mark.parametrize("stream", [None, False, "true", 1])
def test_stream_must_be_true(stream: object) -> None:
    body = payload(stream=stream)
    if stream is None:
        del body["stream"]
    assert detail(post(FakeCodex(), body)) == "Stream must be set to true"


@pytest.mark.parametrize("store", [None, True, 0])
def test_store_must_be_false(store: object) -> None:
    body = payload(store=store)
    if store is None:
        del body["store"]
    assert detail(post(FakeCodex(), body)) == "Store must be set to false"


SPEC_UNSUPPORTED = ("max_output_tokens", "max_tokens", "metadata", "user", "temperature",
                    "top_p", "stream_options", "prompt_cache_retention", "truncation",
                    "background", "response_format", "reasoning_effort", "messages", "X")


@pytest.mark.parametrize("name", SPEC_UNSUPPORTED)
def test_unsupported_parameters(name: str) -> None:
    body = payload()
    body[name] = 1
    assert detail(post(FakeCodex(), body)) == f"Unsupported parameter: {name}"


def test_previous_response_id_is_unknown_with_store_false() -> None:
    assert "resp_x" in detail(post(FakeCodex(), payload(previous_response_id="resp_x")))


# --- models and reasoning ---------------------------------------------------------------


@pytest.mark.parametrize("model", sorted(MODEL_EFFORTS))
def test_every_catalog_model_is_accepted(model: str) -> None:
    assert post(FakeCodex(), payload(model=model)).status == 200


@pytest.mark.parametrize("model", [None, 5, ""])
def test_model_must_be_a_known_string(model: object) -> None:
    assert "model" in detail(post(FakeCodex(), payload(model=model)))


@pytest.mark.parametrize("model", ["gpt-4o", "codex-mini", "gpt-5.4-high", "GPT-5.4"])
def test_unknown_model(model: str) -> None:
    assert detail(post(FakeCodex(), payload(model=model))) == (
        f"The '{model}' model is not supported when using Codex with a ChatGPT account."
    )


@pytest.mark.parametrize(
    ("model", "effort", "ok"),
    [
        ("gpt-5.4", "none", True),
        ("gpt-5.4", "minimal", False),
        ("gpt-5.2", "none", False),
        ("gpt-5.2", "xhigh", True),
        ("gpt-5.1-codex-max", "max", False),
        ("gpt-5.6-sol", "ultra", True),
        ("gpt-5.6-luna", "ultra", False),
        ("codex-mini-latest", "minimal", True),
    ],
)
def test_effort_must_be_allowed_for_the_model(model: str, effort: str, ok: bool) -> None:
    reply = post(FakeCodex(), payload(model=model, reasoning={"effort": effort}))
    if ok:
        assert reply.status == 200
    else:
        assert f"does not support '{effort}'" in detail(reply)


@pytest.mark.parametrize(("summary", "ok"), [("auto", True), ("detailed", True), ("none", False)])
def test_reasoning_summary_values(summary: str, ok: bool) -> None:
    reply = post(FakeCodex(), payload(reasoning={"effort": "low", "summary": summary}))
    assert (reply.status == 200) is ok


def test_reasoning_must_be_an_object() -> None:
    assert "reasoning" in detail(post(FakeCodex(), payload(reasoning="high")))


# --- input items ------------------------------------------------------------------------


def input_detail(*items: object) -> str:
    return detail(post(FakeCodex(), payload(input=list(items))))


def input_ok(*items: object) -> None:
    assert post(FakeCodex(), payload(input=list(items))).status == 200


def test_input_must_be_a_list_of_objects() -> None:
    assert "input" in detail(post(FakeCodex(), payload(input="hi")))
    assert "input[0]" in input_detail("hi")


def test_system_messages_are_rejected() -> None:
    item = {"role": "system", "content": "be nice"}
    assert input_detail(item, user("hi")).startswith("System messages are not allowed")


def test_unknown_role_is_rejected() -> None:
    assert "input[0].role" in input_detail({"type": "message", "role": "tool", "content": "x"})


def test_message_without_type_and_string_content() -> None:
    input_ok({"role": "developer", "content": "rules"}, {"role": "user", "content": "hi"})


@pytest.mark.parametrize(
    "part",
    [
        {"type": "output_text", "text": "x"},
        {"type": "input_text"},
        {"type": "input_text", "text": 3},
        {"type": "input_image", "image_url": "data:image/png;base64,@@@"},
        {"type": "input_image", "image_url": "data:text/plain;base64,aGk="},
        {"type": "input_image", "image_url": "ftp://example.com/a.png"},
        {"type": "input_image"},
        {"type": "input_file", "filename": "a.txt"},
        {"text": "no type"},
        "plain",
    ],
)
def test_bad_user_content_parts(part: object) -> None:
    item = {"type": "message", "role": "user", "content": [part]}
    assert "input[0].content[0]" in input_detail(item)


@pytest.mark.parametrize(
    "part",
    [
        {"type": "input_image", "image_url": f"data:image/png;base64,{PNG_1PX}"},
        {"type": "input_image", "image_url": "https://example.com/cat.png"},
        {
            "type": "input_file",
            "file_data": "data:application/pdf;base64,JVBERi0=",
            "filename": "a",
        },
        {"type": "input_file", "file_id": "file_1"},
    ],
)
def test_good_user_content_parts(part: JSON) -> None:
    input_ok(
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x"}, part]}
    )


def test_assistant_parts() -> None:
    good = [{"type": "output_text", "text": "a"}, {"type": "refusal", "refusal": "no"}]
    input_ok(user("q"), {"type": "message", "role": "assistant", "content": good}, user("r"))
    bad = {"type": "message", "role": "assistant", "content": [{"type": "input_text", "text": "a"}]}
    assert "input[0].content[0].type" in input_detail(bad)


CALL = {"type": "function_call", "call_id": "call_a", "name": "f", "arguments": "{}"}
OUTPUT = {"type": "function_call_output", "call_id": "call_a", "output": "ok"}


@pytest.mark.parametrize("missing", ["call_id", "name", "arguments"])
def test_function_call_fields(missing: str) -> None:
    call = {k: v for k, v in CALL.items() if k != missing}
    assert f"input[1].{missing}" in input_detail(user("q"), call)


def test_function_call_output_needs_an_earlier_call() -> None:
    expected = "No tool call found for function call output with call_id call_a."
    assert input_detail(user("q"), OUTPUT) == expected
    assert input_detail(user("q"), OUTPUT, CALL) == expected
    assert "output" in input_detail(user("q"), CALL, {**OUTPUT, "output": None})
    input_ok(user("q"), CALL, OUTPUT)


def test_custom_tool_calls_and_passthrough_items() -> None:
    custom = {"type": "custom_tool_call", "call_id": "call_p", "name": "patch", "input": "x"}
    result = {"type": "custom_tool_call_output", "call_id": "call_p", "output": "done"}
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": [],
                 "encrypted_content": encrypted_reasoning("rs_1", "acct-1")}
    search = {"type": "web_search_call", "id": "ws_1", "status": "completed"}
    input_ok(user("q"), reasoning, search, custom, result)
    assert "summary" in input_detail({"type": "reasoning", "id": "rs_1"})
    assert "input[0].type" in input_detail({"type": "mystery"})


# --- other options ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"instructions": 5}, "instructions"),
        ({"instructions": None}, "instructions"),
        ({"tools": {}}, "tools"),
        ({"tools": [{"type": "retrieval"}]}, "tools[0].type"),
        ({"tools": [{"type": "function", "parameters": {}}]}, "tools[0].name"),
        ({"tools": ["function"]}, "tools[0].type"),
        ({"tool_choice": "any"}, "tool_choice"),
        ({"tool_choice": {"name": "f"}}, "tool_choice"),
        ({"include": "reasoning.encrypted_content"}, "include"),
        ({"include": [1]}, "include"),
        ({"service_tier": "fast"}, "service_tier"),
        # Unhashable values: the fake crashed on these instead of refusing them.
        ({"tools": [{"type": ["function"]}]}, "tools[0].type"),
        ({"tool_choice": ["auto"]}, "tool_choice"),
        ({"service_tier": {}}, "service_tier"),
        ({"reasoning": {"summary": ["auto"]}}, "reasoning.summary"),
        ({"input": [{"type": {"t": 1}}]}, "input[0].type"),
    ],
)
def test_invalid_options(fields: JSON, needle: str) -> None:
    assert needle in detail(post(FakeCodex(), payload(**fields)))


def test_valid_options() -> None:
    tools = [
        {"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}},
        {"type": "custom", "name": "ApplyPatch"},
        {"type": "web_search"},
        {"type": "local_shell"},
    ]
    body = payload(
        instructions="be brief",
        tools=tools,
        tool_choice={"type": "function", "name": "f"},
        include=["reasoning.encrypted_content"],
        service_tier="priority",
        parallel_tool_calls=False,
        prompt_cache_key="k",
        client_metadata={"x-codex-installation-id": "i"},
        reasoning={"effort": "high", "summary": "auto"},
    )
    events = parse_sse(stream_bytes(post(FakeCodex(), body)))
    response = events[0]["response"]
    assert response["instructions"] == "be brief"
    assert response["tools"] == tools
    assert response["reasoning"] == {"effort": "high", "summary": "auto"}
    assert response["service_tier"] == "priority"


def test_unknown_directive_is_rejected() -> None:
    assert "fake:bogus" in detail(post(FakeCodex(), payload("hi fake:bogus")))
    assert "deltas" in detail(post(FakeCodex(), payload("fake:deltas=many")))
    assert "fail" in detail(post(FakeCodex(), payload("fake:fail=1")))
    assert "tool" in detail(post(FakeCodex(), payload("fake:tool=")))


# --- the default answer ------------------------------------------------------------------


def test_default_text_answer() -> None:
    events = run("how are you  doing?")
    assert squash(types(events)) == [
        "response.created",
        "response.in_progress",
        *MESSAGE_EVENTS,
        "response.completed",
    ]
    text = "Hello! You said: how are you  doing?"
    pieces = deltas(events)
    assert len(pieces) == 7 and "".join(pieces) == text
    assert events[-4]["text"] == text
    item = events[-2]["item"]
    assert item["content"][0]["text"] == text and item["phase"] == "final_answer"
    assert events[-1]["response"]["output"] == [item]


def test_event_framing_and_field_order() -> None:
    raw = stream_bytes(post(FakeCodex(), payload("café fake:deltas=14")))
    assert "é".encode() in raw and b"\\u00e9" not in raw
    assert "😀".encode() in raw
    assert b": " not in raw.replace(b"event: ", b"").replace(b"data: ", b"")
    events = parse_sse(raw)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    delta = next(e for e in events if e["type"] == "response.output_text.delta")
    assert list(delta) == [
        "type",
        "sequence_number",
        "item_id",
        "output_index",
        "content_index",
        "delta",
        "logprobs",
    ]
    assert delta["logprobs"] == []


def test_response_objects() -> None:
    fake = FakeCodex()
    reply = post(fake, payload("hello there", model="gpt-5.5"))
    assert header(reply, b"content-type") == b"text/event-stream"
    events = parse_sse(stream_bytes(reply))
    created, completed = events[0]["response"], events[-1]["response"]
    assert created["id"].startswith("resp_") and created["id"] == completed["id"]
    assert created["object"] == "response" and created["status"] == "in_progress"
    assert created["model"] == "gpt-5.5" and created["output"] == []
    assert abs(created["created_at"] - time.time()) < 60
    assert completed["status"] == "completed"
    usage = completed["usage"]
    assert usage["output_tokens"] == 5
    assert usage["input_tokens"] == len(json.dumps(payload("hello there", model="gpt-5.5"))) // 4
    assert usage["input_tokens_details"] == {"cached_tokens": 0}
    assert usage["output_tokens_details"] == {"reasoning_tokens": 0}
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


def test_ids_are_deterministic() -> None:
    def ids() -> list[str]:
        fake = FakeCodex()
        found = []
        for text in ("a fake:tool=f", "b fake:reasoning"):
            for event in parse_sse(stream_bytes(post(fake, payload(text)))):
                if event["type"] == "response.output_item.done":
                    found.append(event["item"]["id"])
        return found

    assert ids() == ids() == ["msg_2", "fc_3", "rs_5", "msg_6"]


def test_lone_surrogates_do_not_break_encoding() -> None:
    raw = json.dumps(payload(input=[{"role": "user", "content": "\ud800"}])).encode()
    events = parse_sse(stream_bytes(post(FakeCodex(), raw)))
    assert "".join(deltas(events)) == "Hello! You said: \ud800"


# --- directives --------------------------------------------------------------------------


def test_deltas_directive() -> None:
    events = run("ignored text fake:deltas=30")
    pieces = deltas(events)
    assert len(pieces) == 30
    assert pieces[0] == "tok0 " and pieces[1] == "tok1 "
    special = [p for i, p in enumerate(pieces) if i % 7 == 6]
    assert all('"' in p and "\\" in p and "\n" in p for p in special)
    assert "é" in special[0] and "😀" in special[1]
    assert all(p == f"tok{i} " for i, p in enumerate(pieces) if i % 7 != 6)
    done = next(e for e in events if e["type"] == "response.output_text.done")
    assert done["text"] == "".join(pieces)
    assert events[-1]["response"]["usage"]["output_tokens"] == 30


def test_zero_deltas() -> None:
    events = run("fake:deltas=0")
    assert deltas(events) == []
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == ""


def test_deltas_are_generated_lazily() -> None:
    reply = post(FakeCodex(), payload("fake:deltas=1000000000000"))
    assert reply.chunks is not None
    started = time.monotonic()
    first = next(reply.chunks)
    more = list(islice(reply.chunks, 200))
    assert time.monotonic() - started < 1
    assert first[1].startswith(b"event: response.created\n")
    assert b"tok150 " in b"".join(data for _, data in more)


REASONING_PART = [
    "response.reasoning_summary_part.added",
    "response.reasoning_summary_text.delta",
    "response.reasoning_summary_text.done",
    "response.reasoning_summary_part.done",
]


@pytest.mark.parametrize(("directive", "count"), [("fake:reasoning", 3), ("fake:reasoning=5", 5)])
def test_reasoning_directive(directive: str, count: int) -> None:
    events = run(f"think {directive}")
    assert squash(types(events)) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        *REASONING_PART,
        *REASONING_PART,
        "response.output_item.done",
        *MESSAGE_EVENTS,
        "response.completed",
    ]
    summary = deltas(events, "response.reasoning_summary_text.delta")
    assert len(summary) == 2 * count
    assert [e["summary_index"] for e in events if "summary_index" in e][:1] == [0]
    item = next(e for e in events if e["type"] == "response.output_item.done")["item"]
    assert item["type"] == "reasoning" and item["id"].startswith("rs_")
    assert "".join(p["text"] for p in item["summary"]) == "".join(summary)
    assert isinstance(item["encrypted_content"], str) and item["encrypted_content"]
    usage = events[-1]["response"]["usage"]
    assert usage["output_tokens_details"]["reasoning_tokens"] == 2 * count
    assert "".join(deltas(events)) == "Hello! You said: think"


def test_reasoning_text_directive() -> None:
    events = run("fake:reasoning_text fake:reasoning=2")
    raw = deltas(events, "response.reasoning_text.delta")
    assert raw == ["raw0 ", "raw1 "]
    item = next(e for e in events if e["type"] == "response.output_item.done")["item"]
    assert item["content"] == [{"type": "reasoning_text", "text": "raw0 raw1 "}]
    assert len(deltas(events, "response.reasoning_summary_text.delta")) == 4


TOOL_EVENTS = [
    "response.output_item.added",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.output_item.done",
]


def test_tool_directive() -> None:
    args = '{"city":"Paris","days":[1,2,3]}'
    events = run(f"fake:tool=get_weather fake:args={args}")
    assert squash(types(events)) == [
        "response.created",
        "response.in_progress",
        *TOOL_EVENTS,
        "response.completed",
    ]
    added = events[2]["item"]
    assert added["arguments"] == "" and added["name"] == "get_weather"
    assert added["call_id"].startswith("call_") and added["id"].startswith("fc_")
    assert added["call_id"][5:] == added["id"][3:]
    pieces = deltas(events, "response.function_call_arguments.delta")
    assert len(pieces) == 4 and "".join(pieces) == args
    assert events[-3]["arguments"] == args
    done = events[-2]["item"]
    assert done["arguments"] == args and done["status"] == "completed"
    assert [o["type"] for o in events[-1]["response"]["output"]] == ["function_call"]


def test_several_tools_pair_with_args() -> None:
    events = run("fake:tool=a fake:args=[1] fake:tool=b fake:tool=c fake:args=[2]")
    items = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert [(i["name"], i["arguments"]) for i in items] == [("a", "[1]"), ("b", "[2]"), ("c", "{}")]
    assert len({i["call_id"] for i in items}) == 3


def test_tool_with_text_keeps_the_message() -> None:
    events = run("look fake:tool=f")
    items = [e["item"]["type"] for e in events if e["type"] == "response.output_item.done"]
    assert items == ["message", "function_call"]


def test_websearch_directive() -> None:
    events = run("news fake:websearch=weather+paris")
    assert squash(types(events))[2:8] == [
        "response.output_item.added",
        "response.web_search_call.in_progress",
        "response.web_search_call.searching",
        "response.web_search_call.completed",
        "response.output_item.done",
        "response.output_item.added",
    ]
    assert all(e["item_id"] == events[2]["item"]["id"] for e in events[3:6])
    assert events[6]["item"] == {
        "type": "web_search_call",
        "id": events[2]["item"]["id"],
        "status": "completed",
        "action": {"type": "search", "query": "weather+paris"},
    }
    assert "".join(deltas(events)) == "Hello! You said: news"


def test_commentary_directive() -> None:
    events = run("go fake:commentary")
    items = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert [i["phase"] for i in items] == ["commentary", "final_answer"]
    assert [e["output_index"] for e in events if e["type"] == "response.output_item.added"] == [
        0,
        1,
    ]
    assert items[0]["content"][0]["text"] and items[1]["content"][0]["text"].endswith("go")


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, {"detail": "Bad request from fake"}),
        (401, {"error": {"code": "token_expired"}}),
        (429, {"error": {"type": "usage_limit_reached", "resets_in_seconds": 120}}),
        (500, {"error": {"type": "server_error"}}),
        (502, {"error": {"message": "Upstream overloaded (fake)"}}),
        (503, {"error": {"type": "server_error"}}),
        (418, {"detail": "Fake error 418"}),
    ],
)
def test_error_directive(status: int, expected: JSON) -> None:
    reply = post(FakeCodex(), payload(f"x fake:error={status}"))
    assert reply.status == status
    body = error_body(reply)
    for key, value in expected.items():
        if isinstance(value, dict):
            assert value.items() <= body[key].items()
        else:
            assert body[key] == value
    assert {name for name, _ in reply.headers} >= RATE_HEADERS


def test_429_has_retry_after_and_403_is_html() -> None:
    assert header(post(FakeCodex(), payload("fake:error=429")), b"retry-after") == b"120"
    reply = post(FakeCodex(), payload("fake:error=403"))
    assert reply.status == 403
    assert header(reply, b"content-type").startswith(b"text/html")
    assert reply.body.startswith(b"<!DOCTYPE html>")


def test_error_directive_must_be_an_error_status() -> None:
    assert "fake:error=200" in detail(post(FakeCodex(), payload("fake:error=200")))


def test_fail_directive() -> None:
    events = run("one two three four fake:fail")
    assert types(events) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.failed",
    ]
    failed = events[-1]["response"]
    assert failed["status"] == "failed"
    assert failed["error"] == {
        "code": "server_error",
        "message": "The fake backend failed this response",
    }


def test_cut_directive() -> None:
    reply = post(FakeCodex(), payload("one two three fake:cut"))
    assert reply.cut
    events = parse_sse(stream_bytes(reply))
    assert types(events)[-2:] == ["response.output_text.delta"] * 2
    assert post(FakeCodex(), payload("one")).cut is False


def test_incomplete_directive() -> None:
    events = run("a b c fake:incomplete")
    assert squash(types(events))[-2:] == ["response.output_item.done", "response.incomplete"]
    assert "".join(deltas(events)) == "Hello! You said: a b c"
    response = events[-1]["response"]
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert response["output"][0]["status"] == "incomplete"


def test_empty_directive() -> None:
    reply = post(FakeCodex(), payload("fake:empty"))
    assert stream_bytes(reply) == b""
    reply = post(FakeCodex(), payload("fake:empty fake:first_delay_ms=50"))
    assert reply.chunks is not None and list(reply.chunks) == [(0.05, b"")]


def test_error_event_directive() -> None:
    events = run("fake:error_event")
    assert types(events) == ["response.created", "error"]
    assert events[1]["code"] == "rate_limit_exceeded" and events[1]["message"]


def test_tool_round_trip_answer() -> None:
    items = [user("weather? fake:tool=get_weather"), CALL, {**OUTPUT, "output": "22C sunny"}]
    events = run("unused", input=items)
    assert "".join(deltas(events)) == "Tool call_a returned: 22C sunny"
    assert "function_call" not in json.dumps(events[-1]["response"]["output"])


def test_directives_come_from_the_last_user_message() -> None:
    items = [
        user("fake:error=500"),
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "a"}]},
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "first"},
            {"type": "input_image", "image_url": "https://example.com/x.png"},
            {"type": "input_text", "text": "fake:deltas=2"},
        ]},
        {"role": "developer", "content": "fake:error=500"},
    ]  # fmt: skip
    assert deltas(run("", input=items)) == ["tok0 ", "tok1 "]


# --- other routes ------------------------------------------------------------------------


def test_recording() -> None:
    fake = FakeCodex(record_limit=3)
    post(fake, payload("one"), {**AUTH, b"x-extra": b"v\xe9"})
    post(fake, b"{broken")
    reply = fake.handle("GET", "/__fake__/requests", {}, b"")
    assert reply.status == 200
    records = json.loads(reply.body)
    assert [r["path"] for r in records] == [RESPONSES, RESPONSES]
    assert records[0]["headers"]["chatgpt-account-id"] == "acct-1"
    assert records[0]["headers"]["x-extra"] == "vé"
    assert records[0]["body"]["input"][0]["content"][0]["text"] == "one"
    assert records[1]["body"] is None
    for text in ("two", "three", "four"):
        post(fake, payload(text))
    texts = [r["body"]["input"][0]["content"][0]["text"] for r in fake.requests]
    assert texts == ["two", "three", "four"]
    assert fake.handle("DELETE", "/__fake__/requests", {}, b"").status == 204
    assert json.loads(fake.handle("GET", "/__fake__/requests", {}, b"").body) == []


def test_models_endpoint() -> None:
    fake = FakeCodex()
    target = "/backend-api/codex/models?client_version=0.146.0"
    reply = fake.handle("GET", target, {b"authorization": b"Bearer t"}, b"")
    assert reply.status == 200
    models = error_body(reply)["models"]
    slugs = [m["slug"] for m in models]
    assert {"gpt-5.4", "gpt-5.4-mini", "gpt-5.5", "gpt-5.3-codex", "gpt-5.2"} <= set(slugs)
    assert {"gpt-5.1-codex-max", "gpt-5.6-sol"} <= set(slugs)
    assert sum(m["visibility"] == "hide" for m in models) == 1
    for model in models:
        assert set(model) >= {
            "slug",
            "display_name",
            "description",
            "default_reasoning_level",
            "supported_reasoning_levels",
            "visibility",
            "supported_in_api",
            "priority",
            "service_tiers",
        }
        efforts = [level["effort"] for level in model["supported_reasoning_levels"]]
        assert efforts == list(MODEL_EFFORTS[model["slug"]])
        assert model["default_reasoning_level"] in efforts
    gpt54 = models[slugs.index("gpt-5.4")]
    assert gpt54["service_tiers"] == [{"id": "priority"}]
    etag = header(reply, b"etag")
    again = fake.handle("GET", target, {b"authorization": b"Bearer t", b"if-none-match": etag}, b"")
    assert again.status == 304 and again.body == b""


def test_models_needs_a_bearer_token() -> None:
    assert FakeCodex().handle("GET", "/backend-api/codex/models", {}, b"").status == 401


def test_health_404_and_405() -> None:
    fake = FakeCodex()
    health = fake.handle("GET", "/health", {}, b"")
    assert health.status == 200 and json.loads(health.body) == {"status": "ok"}
    missing = fake.handle("GET", "/nope", {}, b"")
    assert missing.status == 404 and json.loads(missing.body) == {"detail": "Not Found"}
    wrong = fake.handle("GET", RESPONSES, AUTH, b"")
    assert wrong.status == 405 and header(wrong, b"allow") == b"POST"
    assert (
        fake.handle("post", RESPONSES + "?x=1", AUTH, json.dumps(payload()).encode()).status == 200
    )


# --- rate-limit headers -------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_",
    [
        ("POST", RESPONSES, {}, b"{}"),
        ("POST", RESPONSES, AUTH, b"{}"),
        ("GET", "/missing", {}, b""),
        ("GET", "/health", {}, b""),
        ("POST", RESPONSES, AUTH, json.dumps(payload()).encode()),
    ],
)
def test_rate_limit_headers_on_every_reply(
    request_: tuple[str, str, dict[bytes, bytes], bytes],
) -> None:
    reply = FakeCodex().handle(*request_)
    names = [name for name, _ in reply.headers]
    assert set(names) >= RATE_HEADERS
    assert b"x-request-id" in names and b"content-type" in names
    assert all(name == name.lower() for name in names)
    assert header(reply, b"x-codex-primary-window-minutes") == b"300"
    assert header(reply, b"x-codex-secondary-window-minutes") == b"10080"
    assert int(header(reply, b"x-codex-primary-reset-after-seconds")) > 0


def test_usage_grows_per_stream() -> None:
    fake = FakeCodex()
    used = [float(header(post(fake, payload()), b"x-codex-primary-used-percent")) for _ in range(3)]
    assert used == [12.0, 12.5, 13.0]
    request_ids = {header(post(fake, payload()), b"x-request-id") for _ in range(3)}
    assert len(request_ids) == 3
