"""chatmock.dialects.qwen_request: Codex payloads → chat.qwen.ai web completions.

Payloads come from the dialects' parsers; bodies and headers are sent to the
fake Qwen web API, which applies the real one's rules."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from chatmock.catalog import Catalog
from chatmock.dialects.anthropic import parse_messages_request
from chatmock.dialects.chat import parse_chat_request
from chatmock.dialects.options import Options
from chatmock.dialects.qwen_request import (
    can_continue,
    completion_body,
    fold_content,
    new_chat_body,
    web_headers,
)
from chatmock.errors import ClientError
from chatmock.testing.fake_qwen import QWEN_TOKEN, FakeQwen

JSON = dict[str, Any]
CATALOG = Catalog()
BASE = "http://127.0.0.1:9"
AUTH = [(b"authorization", b"Bearer " + QWEN_TOKEN.encode()),
        (b"cookie", b"token=" + QWEN_TOKEN.encode())]


def from_chat(messages: list[JSON], **fields: Any) -> JSON:
    settings = Options(**fields.pop("settings", {}))
    body = {"model": "gpt-5.4", "messages": messages, **fields}
    return parse_chat_request(body, CATALOG, settings).payload


def user(text: str) -> JSON:
    return {"role": "user", "content": text}


def headers(chat_id: str | None, stream: bool) -> dict[bytes, bytes]:
    return dict([*web_headers(BASE, chat_id, stream=stream, now=0.0, request_id="r"), *AUTH])


def new_chat(fake: FakeQwen, model: str = "qwen3.7-plus") -> str:
    reply = fake.handle("POST", "/api/v2/chats/new", headers(None, False),
                        json.dumps(new_chat_body(model, 1787654027.5)).encode())
    chat_id: str = json.loads(reply.body)["data"]["id"]
    return chat_id


def send(fake: FakeQwen, chat_id: str, body: JSON) -> list[Any]:
    reply = fake.handle("POST", f"/api/v2/chat/completions?chat_id={chat_id}",
                        headers(chat_id, True), json.dumps(body).encode())
    assert reply.status == 200 and reply.chunks is not None, reply.body
    data = b"".join(piece for _, piece in reply.chunks)
    return [json.loads(block[6:]) for block in data.split(b"\n\n") if block]


def answer(events: list[Any]) -> str:
    return "".join(e["choices"][0]["delta"]["content"] for e in events
                   if "choices" in e and e["choices"][0]["delta"].get("phase") == "answer")


def ids() -> Any:
    counter = itertools.count(1)
    return lambda: f"id-{next(counter)}"


def test_a_first_turn_is_accepted_by_the_web_api() -> None:
    fake = FakeQwen()
    chat_id = new_chat(fake)
    payload = from_chat([user("hello")])
    body = completion_body(payload, model="qwen3.7-plus", chat_id=chat_id, now=1787654027.9,
                           new_id=ids())
    message = body["messages"][0]
    assert message["content"] == "hello" and message["fid"] == "id-1"
    assert message["childrenIds"] == ["id-2"] and message["timestamp"] == 1787654027
    assert body["parent_id"] is None and body["parentId"] == ""
    assert message["feature_config"]["output_schema"] == "phase"
    events = send(fake, chat_id, body)
    assert answer(events) == "Hello! You said: hello"


def test_continuing_a_chat_sends_only_the_new_message() -> None:
    fake = FakeQwen()
    chat_id = new_chat(fake)
    first = from_chat([user("one")])
    events = send(fake, chat_id, completion_body(first, model="qwen3.7-plus", chat_id=chat_id))
    parent = events[0]["response.created"]["response_id"]
    second = from_chat([user("one"), {"role": "assistant", "content": answer(events)},
                        user("two")])
    assert can_continue(second, 2) and not can_continue(second, 1)
    assert not can_continue(second, 0) and not can_continue(second, 3)
    body = completion_body(second, model="qwen3.7-plus", chat_id=chat_id, parent_id=parent,
                           since=2)
    assert body["messages"][0]["content"] == "two"
    assert body["parent_id"] == body["parentId"] == body["messages"][0]["parentId"] == parent
    assert answer(send(fake, chat_id, body)) == "Hello! You said: two"


def test_a_fresh_chat_folds_instructions_and_history() -> None:
    call = {"id": "call_1", "type": "function",
            "function": {"name": "lookup", "arguments": '{"q":"x"}'}}
    payload = from_chat([{"role": "system", "content": "Be brief."}, user("Find x"),
                         {"role": "assistant", "content": "Looking.", "tool_calls": [call]},
                         {"role": "tool", "tool_call_id": "call_1", "content": "x is 4"},
                         user("So?")])
    folded = fold_content(payload)
    assert folded == (
        "[System instructions]\nBe brief.\n\n"
        "[Conversation so far]\nUser: Find x\n\nAssistant: Looking.\n\n"
        'Assistant: (called tool lookup with {"q":"x"}, call id call_1)\n\n'
        "[New message]\nTool: (result of call call_1) x is 4\n\nSo?")
    fake = FakeQwen()
    chat_id = new_chat(fake)
    body = completion_body(payload, model="qwen3.7-plus", chat_id=chat_id)
    assert send(fake, chat_id, body)[0]["response.created"]["chat_id"] == chat_id


def test_anthropic_payloads_fold_too() -> None:
    body = {"model": "claude-sonnet-4-5", "max_tokens": 10, "system": "S",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]}
    payload = parse_messages_request(body, {b"anthropic-version": b"1", b"x-api-key": b"k"},
                                     CATALOG, Options()).payload
    assert fold_content(payload) == "[System instructions]\nS\n\n[New message]\nhi"


@pytest.mark.parametrize("effort, mode, thinking", [
    ("none", "Fast", False), ("minimal", "Fast", False), ("low", "Auto", True),
    ("medium", "Auto", True), ("high", "Thinking", True), ("xhigh", "Thinking", True)])
def test_effort_picks_the_thinking_mode(effort: str, mode: str, thinking: bool) -> None:
    payload = {"input": [{"role": "user", "content": "x"}], "reasoning": {"effort": effort}}
    features = completion_body(payload, model="m", chat_id="c")["messages"][0]["feature_config"]
    assert (features["thinking_mode"], features["thinking_enabled"]) == (mode, thinking)
    assert features["thinking_format"] == "detail"


def test_thinking_reaches_the_think_phase() -> None:
    fake = FakeQwen()
    chat_id = new_chat(fake)
    payload = from_chat([user("q fake:reasoning=2")], reasoning_effort="high")
    events = send(fake, chat_id, completion_body(payload, model="qwen3.7-plus",
                                                 chat_id=chat_id))
    think = [e["choices"][0]["delta"] for e in events if "choices" in e
             and e["choices"][0]["delta"].get("phase") == "think"]
    assert "".join(d["content"] for d in think) == "thought 0 thought 1 "


def test_web_search_and_structured_output() -> None:
    payload = {"input": [{"role": "user", "content": "news?"}],
               "tools": [{"type": "web_search"}],
               "text": {"format": {"type": "json_schema", "name": "n",
                                   "schema": {"type": "object"}}}}
    body = completion_body(payload, model="m", chat_id="c")
    message = body["messages"][0]
    assert message["chat_type"] == message["sub_chat_type"] == "search"
    assert message["content"].startswith("[System instructions]\nReply with one JSON value")
    assert '{"type": "object"}' in message["content"]
    assert fold_content({"input": [{"role": "user", "content": "x"}],
                         "text": {"format": {"type": "json_object"}}}).startswith(
        "[System instructions]\nReply with one JSON object only")


def test_tools_are_refused_unless_switched_off() -> None:
    tools = [{"type": "function", "name": "f", "parameters": {}}]
    payload = {"input": [{"role": "user", "content": "x"}], "tools": tools}
    with pytest.raises(ClientError, match="cannot call tools"):
        completion_body(payload, model="m", chat_id="c")
    quiet = {**payload, "tool_choice": "none"}
    assert completion_body(quiet, model="m", chat_id="c")["messages"][0]["chat_type"] == "t2t"
    with pytest.raises(ClientError, match="custom"):
        completion_body({**payload, "tools": [{"type": "custom", "name": "x"}]}, model="m",
                        chat_id="c")


@pytest.mark.parametrize("part", [
    {"type": "input_image", "image_url": "data:image/png;base64,AA=="},
    {"type": "input_file", "file_id": "f"}])
def test_images_and_files_are_refused(part: JSON) -> None:
    payload = {"input": [{"type": "message", "role": "user", "content": [part]}]}
    with pytest.raises(ClientError, match="text only"):
        fold_content(payload)


def test_unknown_items_are_refused() -> None:
    with pytest.raises(ClientError, match="item_reference"):
        fold_content({"input": [{"type": "item_reference", "id": "x"}]})


def test_web_headers_pass_the_waf_and_name_the_chat() -> None:
    found = dict(web_headers("https://chat.qwen.ai/", "c1", stream=True, now=0.0,
                             request_id="rid"))
    assert found[b"referer"] == b"https://chat.qwen.ai/c/c1"
    assert found[b"origin"] == b"https://chat.qwen.ai"
    assert found[b"timezone"] == b"Thu Jan 01 1970 00:00:00 GMT+0000"
    assert found[b"accept"] == b"text/event-stream" and found[b"x-request-id"] == b"rid"
    assert found[b"user-agent"].startswith(b"Mozilla/5.0")
    assert dict(web_headers(BASE, None, stream=False))[b"referer"] == BASE.encode() + b"/"


def test_conversation_keys_follow_speakers_and_texts_not_shapes() -> None:
    from chatmock.dialects.qwen_request import conversation_keys, extend_key

    items = {"input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "one"}]},
        {"type": "reasoning", "summary": []},
        {"type": "message", "role": "assistant",
         "content": [{"type": "output_text", "text": "answer"}]},
        {"type": "message", "role": "user", "content": "two"}]}
    keys = conversation_keys(items)
    assert len(keys) == 5 and keys[0] == ""
    assert keys[1] == keys[2] == extend_key("", "User", "one")  # reasoning adds no text
    assert keys[3] == extend_key(keys[1], "Assistant", "answer")
    chat_shape = {"input": [{"role": "user", "content": "one"},
                            {"role": "assistant", "content": "answer"}]}
    assert conversation_keys(chat_shape)[-1] == keys[3]
