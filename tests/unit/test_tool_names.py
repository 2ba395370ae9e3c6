"""Tool names the backend refuses: renamed on the way up, the client's name back in every
dialect's translation (chatmock.dialects.tool_names)."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatmock.catalog import Catalog
from chatmock.dialects.anthropic import parse_messages_request
from chatmock.dialects.anthropic_stream import message_object
from chatmock.dialects.chat import parse_chat_request
from chatmock.dialects.chat_stream import ChatStreamTranslator
from chatmock.dialects.collectors import MessagesCollector
from chatmock.dialects.ollama import OllamaRequest, parse_chat
from chatmock.dialects.ollama_stream import OllamaStreamTranslator
from chatmock.dialects.options import Options
from chatmock.dialects.responses import parse_responses_request
from chatmock.dialects.responses_stream import RenamingRelay, ResponsesObserver, observer_for
from chatmock.dialects.tool_names import (
    restore_event,
    restore_item,
    restore_response,
    shorten_tool_names,
    upstream_name,
)

from .helpers import AUTH, RESPONSES_PATH, accepted_upstream, fake_stream, run_bytes
from .helpers import chunked as split_at

VALID = re.compile(r"[a-zA-Z0-9_-]{1,64}")
LONG = "mcp__claude_ai_Atlassian_Rovo__getConfluencePageDescendantsWithAllTheirMetadata"
DOTTED = "files.read"
SCHEMA = {"type": "object", "properties": {}}


def tool(name: str) -> dict[str, Any]:
    return {"type": "function", "name": name, "parameters": SCHEMA}


def call(name: str, call_id: str = "call_1") -> dict[str, Any]:
    return {"type": "function_call", "call_id": call_id, "name": name, "arguments": "{}"}


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def payload(*names: str, history: tuple[str, ...] = (), choice: str = "") -> dict[str, Any]:
    items: list[dict[str, Any]] = [user("q")]
    for number, name in enumerate(history):
        items += [call(name, f"c{number}"),
                  {"type": "function_call_output", "call_id": f"c{number}", "output": "ok"}]
    body: dict[str, Any] = {"model": "gpt-5.4", "stream": True, "store": False, "input": items,
                            "tools": [tool(name) for name in names]}
    if choice:
        body["tool_choice"] = {"type": "function", "name": choice}
    return body


def test_valid_names_are_left_alone_at_no_cost() -> None:
    body = payload("get_weather", "Read-File_2", "a" * 64, history=("get_weather",))
    before = copy.deepcopy(body)
    tools, items = body["tools"], body["input"]
    assert shorten_tool_names(body) == {}
    assert body == before and body["tools"] is tools and body["input"] is items


def test_refused_names_are_renamed_everywhere_and_restored_by_the_map() -> None:
    body = payload(LONG, DOTTED, "ok", history=(LONG, DOTTED), choice=LONG)
    client = copy.deepcopy(body)
    kept_items = body["input"]
    names = shorten_tool_names(body)
    long_up, dotted_up = upstream_name(LONG), upstream_name(DOTTED)
    assert names == {long_up: LONG, dotted_up: DOTTED}
    assert dotted_up == "files_read"
    assert len(long_up) == 64 and long_up.startswith("mcp__claude_ai_Atlassian_Rovo__getConf")
    assert [t["name"] for t in body["tools"]] == [long_up, dotted_up, "ok"]
    assert body["tool_choice"]["name"] == long_up
    assert [i.get("name") for i in body["input"] if i["type"] == "function_call"] == [
        long_up, dotted_up]
    assert kept_items == client["input"]  # the caller's list and items are not mutated
    accepted_upstream(body)


def test_unrenamed_payload_is_refused_by_the_fake_backend() -> None:
    from chatmock.testing.fake_codex import FakeCodex

    for name in (LONG, DOTTED):
        reply = FakeCodex().handle("POST", RESPONSES_PATH, AUTH,
                                   json.dumps(payload(name)).encode())
        assert reply.status == 400


def test_clashes_get_a_hash_and_the_mapping_is_deterministic() -> None:
    body = payload("a.b", "a_b", "a/b")
    names = shorten_tool_names(body)
    upstream = [t["name"] for t in body["tools"]]
    assert upstream[1] == "a_b" and len(set(upstream)) == 3
    assert all(VALID.fullmatch(name) for name in upstream)
    again = payload("a/b", "a_b", "a.b")  # same names, any order: same renaming
    assert shorten_tool_names(again) == names


@given(st.lists(st.text(min_size=1, max_size=120), min_size=1, max_size=6, unique=True))
def test_any_names_become_distinct_valid_names_that_map_back(names: list[str]) -> None:
    body = payload(*names, history=tuple(names[:2]))
    restore = shorten_tool_names(body)
    upstream = [t["name"] for t in body["tools"]]
    assert all(VALID.fullmatch(name) for name in upstream)
    assert len(set(upstream)) == len(names)
    assert [restore.get(name, name) for name in upstream] == names


def test_restore_touches_only_tool_calls_and_tool_lists() -> None:
    names = {"files_read": DOTTED}
    assert restore_item(call("files_read"), names)["name"] == DOTTED
    message = {"type": "message", "name": "files_read"}
    assert restore_item(message, names) is message
    response: dict[str, Any] = {
        "id": "r", "output": [call("files_read"), message],
        "tools": [tool("files_read"), {"type": "web_search"}],
        "tool_choice": {"type": "function", "name": "files_read"}}
    restored = restore_response(response, names)
    assert restored["output"][0]["name"] == DOTTED and restored["output"][1] is message
    assert restored["tools"][0]["name"] == DOTTED and restored["tool_choice"]["name"] == DOTTED
    assert response["output"][0]["name"] == "files_read"  # not mutated
    event = {"type": "response.function_call_arguments.done", "name": "files_read"}
    assert restore_event(event, names)["name"] == DOTTED


# -- every dialect, streamed and not ------------------------------------------------------


CALL_TEXT = 'use it fake:tool={} fake:args={{"path":"a"}}'


def fake_call_stream(client_name: str) -> bytes:
    return fake_stream(CALL_TEXT.format(upstream_name(client_name)))


def test_chat_request_and_stream() -> None:
    body = {"model": "gpt-5.4", "stream": True, "tools": [
        {"type": "function", "function": {"name": DOTTED, "parameters": SCHEMA}}],
        "tool_choice": {"type": "function", "function": {"name": DOTTED}},
        "messages": [{"role": "user", "content": "q"},
                     {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                      "function": {"name": DOTTED, "arguments": "{}"}}]},
                     {"role": "tool", "tool_call_id": "c1", "content": "ok"}]}
    chat = parse_chat_request(body, Catalog(), Options())
    assert chat.tool_names == {"files_read": DOTTED}
    assert chat.client_tools[0]["name"] == "files_read"  # the retry without extra tools too
    accepted_upstream(chat.payload)

    def translator() -> ChatStreamTranslator:
        made = ChatStreamTranslator(model="m", created=0, compat="o3", include_usage=False)
        made.tool_names = chat.tool_names
        return made

    stream = fake_call_stream(DOTTED)
    for cuts in ([], [7, 300, 301, 900]):
        out = run_bytes(translator, split_at(stream, cuts))
        assert b'"name":"files.read"' in out and b'"name":"files_read"' not in out


def test_responses_request_relay_and_collection() -> None:
    body = {"model": "gpt-5.4", "input": [user("q"), call(LONG)], "tools": [tool(LONG)]}
    parsed = parse_responses_request(
        {**body, "input": [*body["input"], {"type": "function_call_output",
                                            "call_id": "call_1", "output": "ok"}]},
        Catalog(), Options())
    up = upstream_name(LONG)
    assert parsed.tool_names == {up: LONG} and parsed.context[1]["name"] == LONG
    accepted_upstream(parsed.payload)
    stream = fake_call_stream(LONG)
    relay = observer_for(relay=True, tool_names=parsed.tool_names)
    assert isinstance(relay, RenamingRelay)
    out = run_bytes(lambda: observer_for(relay=True, tool_names=parsed.tool_names),
                    split_at(stream, [11, 400, 401, 1500]))
    assert out.count(f'"name":"{LONG}"'.encode()) >= 3  # added, done, completed output
    assert up.encode() not in out
    assert out.replace(LONG.encode(), up.encode()).count(b"\n\n") == stream.count(b"\n\n")
    plain = observer_for(relay=True, tool_names={})
    assert type(plain) is ResponsesObserver and run_bytes(lambda: plain, [stream]) == stream
    collector = ResponsesObserver(relay=False, tool_names=parsed.tool_names)
    collector.feed(stream)
    calls = [item for item in collector.final_response()["output"]
             if item["type"] == "function_call"]
    assert [item["name"] for item in calls] == [LONG]
    assert [item.get("name") for item in collector.output_items()
            if item["type"] == "function_call"] == [LONG]


def test_anthropic_request_and_collection() -> None:
    body = {"model": "claude-opus-4-8", "max_tokens": 100,
            "tools": [{"name": LONG, "input_schema": SCHEMA}],
            "tool_choice": {"type": "tool", "name": LONG},
            "messages": [{"role": "user", "content": "q"},
                         {"role": "assistant", "content": [
                             {"type": "tool_use", "id": "t1", "name": LONG, "input": {}}]},
                         {"role": "user", "content": [
                             {"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]}]}
    parsed = parse_messages_request(body, {}, Catalog(), Options())
    assert parsed.tool_names == {upstream_name(LONG): LONG}
    accepted_upstream(parsed.payload)
    collector = MessagesCollector()
    collector.tool_names = parsed.tool_names
    collector.feed(fake_call_stream(LONG))
    message = message_object(collector, model="claude-opus-4-8", thinking=False)
    assert message["content"][-1]["name"] == LONG


def test_ollama_request_and_stream() -> None:
    body = {"model": "gpt-5.4", "tools": [{"type": "function", "function": {
        "name": DOTTED, "parameters": SCHEMA}}],
        "messages": [{"role": "user", "content": "q"},
                     {"role": "assistant", "tool_calls": [{"function": {
                         "name": DOTTED, "arguments": {}}}]},
                     {"role": "tool", "content": "ok", "tool_name": DOTTED}]}
    parsed = parse_chat(body, Catalog(), Options())
    assert isinstance(parsed, OllamaRequest)
    chat = parsed.chat
    assert chat.tool_names == {"files_read": DOTTED}
    accepted_upstream(chat.payload)
    translator = OllamaStreamTranslator(model="gpt-5.4", created_at="t", think=None,
                                        compat="think-tags", generate=False, started=0)
    translator.tool_names = chat.tool_names
    out = translator.feed(fake_call_stream(DOTTED)) + translator.finish()
    calls = [json.loads(line)["message"].get("tool_calls") for line in out.splitlines()]
    assert [c[0]["function"]["name"] for c in calls if c] == [DOTTED]


@pytest.mark.parametrize("name", [LONG, DOTTED])
def test_upstream_name_is_stable(name: str) -> None:
    assert upstream_name(name) == upstream_name(name)
    assert VALID.fullmatch(upstream_name(name))
