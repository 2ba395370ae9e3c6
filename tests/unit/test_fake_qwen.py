"""The fake chat.qwen.ai web API (chatmock.testing.fake_qwen)."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
import pytest

from chatmock.testing.fake_codex import FakeReply
from chatmock.testing.fake_qwen import QWEN_TOKEN, FakeQwen

JSON = dict[str, Any]
WEB = {b"user-agent": b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/140.0",
       b"bx-v": b"2.5.36", b"source": b"web", b"version": b"0.2.83",
       b"authorization": b"Bearer " + QWEN_TOKEN.encode(),
       b"cookie": b"ssxmod_itna=abc; token=" + QWEN_TOKEN.encode(),
       b"content-type": b"application/json"}


def call(fake: FakeQwen, method: str, target: str, body: object = None,
         headers: dict[bytes, bytes] | None = None) -> FakeReply:
    raw = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    return fake.handle(method, target, WEB if headers is None else headers, raw)


def ok_data(reply: FakeReply) -> Any:
    assert reply.status == 200 and reply.chunks is None, reply.body
    value = json.loads(reply.body)
    assert value["success"] is True, value
    return value["data"]


def refusal(reply: FakeReply) -> tuple[str, int]:
    """(data.code, x-actual-status-code) of a JSON error answered with HTTP 200."""
    assert reply.status == 200 and reply.chunks is None
    value = json.loads(reply.body)
    assert value["success"] is False and value["request_id"]
    return value["data"]["code"], int(dict(reply.headers)[b"x-actual-status-code"])


def new_chat(fake: FakeQwen, model: str = "qwen3.7-plus") -> str:
    data = ok_data(call(fake, "POST", "/api/v2/chats/new", {
        "title": "New Chat", "models": [model], "chat_mode": "normal", "chat_type": "t2t",
        "timestamp": 1787654027000, "project_id": "", "chatId": ""}))
    chat_id: str = data["id"]
    return chat_id


def completion(chat_id: str, text: str, parent: str | None = None, *, thinking: bool = False,
               thinking_format: str = "summary", phase: bool = True,
               incremental: bool = True, **fields: Any) -> JSON:
    features: JSON = {"thinking_enabled": thinking, "thinking_format": thinking_format,
                      "thinking_mode": "Auto", "auto_thinking": thinking,
                      "research_mode": "normal", "auto_search": False}
    if phase:
        features["output_schema"] = "phase"
    body: JSON = {
        "stream": True, "version": "2.1", "incremental_output": incremental,
        "chat_id": chat_id, "chatId": chat_id, "chat_mode": "normal", "model": "qwen3.7-plus",
        "parent_id": parent, "parentId": parent or "", "timestamp": 1787654027,
        "messages": [{"id": None, "fid": "f-1", "parentId": parent, "childrenIds": ["c-1"],
                      "role": "user", "content": text, "user_action": "chat", "files": [],
                      "timestamp": 1787654027, "models": ["qwen3.7-plus"], "model": "",
                      "chat_type": "t2t", "feature_config": features,
                      "extra": {"meta": {"subChatType": "t2t"}}, "sub_chat_type": "t2t",
                      "parent_id": parent}]}
    body.update(fields)
    return body


def send(fake: FakeQwen, chat_id: str, body: JSON) -> FakeReply:
    return call(fake, "POST", f"/api/v2/chat/completions?chat_id={chat_id}", body)


def lines(reply: FakeReply) -> list[Any]:
    assert reply.status == 200 and reply.chunks is not None, reply.body
    data = b"".join(piece for _, piece in reply.chunks)
    found: list[Any] = []
    for block in data.split(b"\n\n")[:-1]:
        assert block.startswith(b"data: ") and b"\n" not in block
        payload = block[len(b"data: "):]
        found.append("[DONE]" if payload == b"[DONE]" else json.loads(payload))
    return found


def deltas(found: list[Any]) -> list[JSON]:
    return [line["choices"][0]["delta"] for line in found
            if isinstance(line, dict) and "choices" in line]


def answer_text(found: list[Any]) -> str:
    return "".join(d["content"] for d in deltas(found) if d.get("phase") == "answer")


def test_a_turn_streams_created_answer_and_finished() -> None:
    fake = FakeQwen()
    chat_id = new_chat(fake)
    found = lines(send(fake, chat_id, completion(chat_id, "hello")))
    created = found[0]["response.created"]
    assert created["chat_id"] == chat_id and created["response_index"] == "0"
    assert answer_text(found) == "Hello! You said: hello"
    last = found[-1]
    assert last == {"choices": [{"delta": {"role": "assistant", "content": "",
                                           "phase": "answer", "status": "finished"}}],
                    "response_id": created["response_id"]}
    usages = [line["usage"] for line in found[1:-1]]
    assert [u["output_tokens"] for u in usages] == [1, 2, 3, 4]  # cumulative
    assert all("finish_reason" not in line.get("choices", [{}])[0] for line in found)


def test_the_next_turn_continues_from_the_previous_response() -> None:
    fake = FakeQwen()
    chat_id = new_chat(fake)
    first = lines(send(fake, chat_id, completion(chat_id, "one")))
    response_id = first[0]["response.created"]["response_id"]
    second = lines(send(fake, chat_id, completion(chat_id, "two", response_id)))
    assert answer_text(second) == "Hello! You said: two"
    history = ok_data(call(fake, "GET", f"/api/v2/chats/{chat_id}"))["chat"]["messages"]
    assert [m["role"] for m in history] == ["user", "assistant", "user", "assistant"]
    assert history[2]["parentId"] == response_id


def test_a_stale_parent_and_a_running_chat_are_bad_requests() -> None:
    fake = FakeQwen()
    chat_id = new_chat(fake)
    assert refusal(send(fake, chat_id, completion(chat_id, "x", "nope"))) == \
        ("Bad_Request", 400)
    running = send(fake, chat_id, completion(chat_id, "x"))
    assert running.chunks is not None
    next(running.chunks)  # the stream has started and is not finished
    busy = send(fake, chat_id, completion(chat_id, "y"))
    assert refusal(busy) == ("Bad_Request", 400)
    assert b"in progress" in busy.body
    list(running.chunks)
    assert lines(send(fake, chat_id, completion(chat_id, "y")))


def test_a_closed_stream_frees_the_chat() -> None:
    fake = FakeQwen()
    chat_id = new_chat(fake)
    reply = send(fake, chat_id, completion(chat_id, "x"))
    assert reply.chunks is not None
    next(reply.chunks)
    reply.chunks.close()  # type: ignore[attr-defined]  # the client went away
    assert lines(send(fake, chat_id, completion(chat_id, "y")))


def test_unknown_chats_are_not_found() -> None:
    fake = FakeQwen()
    assert refusal(send(fake, "00000000-dead", completion("00000000-dead", "x"))) == \
        ("Not_Found", 404)
    assert refusal(call(fake, "GET", "/api/v2/chats/nope")) == ("Not_Found", 404)


@pytest.mark.parametrize("change, needle", [
    ({"stream": False}, b"stream"),
    ({"messages": []}, b"exactly one"),
    ({"model": "qwen3-max"}, b"not available"),
    ({"chat_id": "other"}, b"does not match"),
])
def test_completion_rules(change: JSON, needle: bytes) -> None:
    fake = FakeQwen()
    chat_id = new_chat(fake)
    reply = send(fake, chat_id, {**completion(chat_id, "x"), **change})
    assert refusal(reply) == ("Bad_Request", 400) and needle in reply.body


def test_more_than_one_message_or_a_system_role_is_refused() -> None:
    fake = FakeQwen()
    chat_id = new_chat(fake)
    body = completion(chat_id, "x")
    body["messages"][0]["role"] = "system"
    assert refusal(send(fake, chat_id, body)) == ("Bad_Request", 400)
    body["messages"] = [completion(chat_id, "a")["messages"][0]] * 2
    assert refusal(send(fake, chat_id, body)) == ("Bad_Request", 400)


def test_thinking_summary_phase_carries_cumulative_snapshots() -> None:
    fake = FakeQwen()
    chat_id = new_chat(fake)
    found = lines(send(fake, chat_id, completion(chat_id, "q fake:reasoning=3", thinking=True)))
    summary = [d for d in deltas(found) if d.get("phase") == "thinking_summary"]
    assert [d["content"] for d in summary] == ["", "", "", ""]
    assert [d["extra"]["summary_thought"]["content"] for d in summary][1] == \
        ["thought 0 ", "thought 1 "]
    assert [d["status"] for d in summary] == ["typing"] * 3 + ["finished"]
    assert found[-2]["usage"]["output_tokens_details"]["reasoning_tokens"] == 3


def test_think_phase_streams_reasoning_text() -> None:
    fake = FakeQwen()
    chat_id = new_chat(fake)
    found = lines(send(fake, chat_id, completion(chat_id, "q fake:reasoning=2", thinking=True,
                                                 thinking_format="detail")))
    think = [d for d in deltas(found) if d.get("phase") == "think"]
    assert "".join(d["content"] for d in think) == "thought 0 thought 1 "
    assert think[-1]["status"] == "finished"
    no_thinking = lines(send(fake, chat_id, completion(chat_id, "q fake:reasoning=2")))
    assert not [d for d in deltas(no_thinking) if d.get("phase") != "answer"]


def test_without_phase_schema_or_incremental_output() -> None:
    fake = FakeQwen()
    chat_id = new_chat(fake)
    found = lines(send(fake, chat_id, completion(chat_id, "a b", phase=False,
                                                 incremental=False)))
    assert not any("phase" in d for d in deltas(found))
    contents = [d["content"] for d in deltas(found)]
    assert contents[:-1] == ["Hello! ", "Hello! You ", "Hello! You said: ",
                             "Hello! You said: a ", "Hello! You said: a b"]


@pytest.mark.parametrize("text, code", [("fake:error_event", "RateLimited"),
                                        ("fake:error=429", "Too_Many_Requests"),
                                        ("fake:error=503", "Server_Busy"),
                                        ("a b c fake:fail", "Internal_Server_Error")])
def test_in_stream_errors(text: str, code: str) -> None:
    fake = FakeQwen()
    chat_id = new_chat(fake)
    found = lines(send(fake, chat_id, completion(chat_id, text)))
    assert found[-1]["error"]["code"] == code
    assert found[-1]["response_id"] == found[0]["response.created"]["response_id"]


@pytest.mark.parametrize("text, expected", [("fake:error=401", ("Unauthorized", 401)),
                                            ("fake:error=404", ("Not_Found", 404)),
                                            ("fake:error=400", ("Bad_Request", 400)),
                                            ("fake:error=502", ("Bad_Request", 400)),
                                            ("fake:tool=f", ("Bad_Request", 400)),
                                            ("fake:incomplete", ("Bad_Request", 400))])
def test_json_errors_chosen_by_directive(text: str, expected: tuple[str, int]) -> None:
    fake = FakeQwen()
    chat_id = new_chat(fake)
    assert refusal(send(fake, chat_id, completion(chat_id, text))) == expected


def test_cut_and_done_marker() -> None:
    fake = FakeQwen(done_marker=True)
    chat_id = new_chat(fake)
    assert lines(send(fake, chat_id, completion(chat_id, "x")))[-1] == "[DONE]"
    cut = send(fake, chat_id, completion(chat_id, "a b c fake:cut"))
    found = lines(cut)
    assert cut.cut and [d["status"] for d in deltas(found)] == ["typing", "typing"]


def test_stop_ends_the_running_answer() -> None:
    fake = FakeQwen()
    chat_id = new_chat(fake)
    reply = send(fake, chat_id, completion(chat_id, "fake:deltas=50"))
    assert reply.chunks is not None
    created = json.loads(next(reply.chunks)[1][len(b"data: "):])["response.created"]
    ok_data(call(fake, "POST", "/api/v2/chat/completions/stop",
                 {"chat_id": chat_id, "response_id": created["response_id"]}))
    rest = b"".join(piece for _, piece in reply.chunks)
    assert rest.count(b'"phase":"answer"') == 1 and b'"finished"' in rest


@pytest.mark.parametrize("drop", [b"user-agent", b"bx-v"])
def test_missing_browser_headers_meet_the_waf_page(drop: bytes) -> None:
    headers = {k: v for k, v in WEB.items() if k != drop}
    reply = call(FakeQwen(), "GET", "/api/models", headers=headers)
    assert reply.status == 200
    assert dict(reply.headers)[b"content-type"].startswith(b"text/html")
    assert b"requestInfo" in reply.body


@pytest.mark.parametrize("drop", [b"source", b"version"])
def test_writes_need_the_web_app_headers(drop: bytes) -> None:
    headers = {k: v for k, v in WEB.items() if k != drop}
    assert refusal(call(FakeQwen(), "POST", "/api/v2/chats/new", {"models": ["qwen3.7-plus"]},
                        headers)) == ("Bad_Request", 400)


def expired_token() -> str:
    return jwt.encode({"id": "u", "exp": int(time.time()) - 10}, "k" * 32, algorithm="HS256")


@pytest.mark.parametrize("change", [
    {b"authorization": b"Bearer other"},
    {b"cookie": b"ssxmod_itna=abc"},
    {b"cookie": b"cookie=token=" + QWEN_TOKEN.encode()},
    {b"cookie": b"token=other"},
])
def test_token_and_cookie_are_checked(change: dict[bytes, bytes]) -> None:
    reply = call(FakeQwen(), "GET", "/api/models", headers={**WEB, **change})
    assert refusal(reply) == ("Unauthorized", 401)


def test_an_expired_token_is_unauthorized() -> None:
    token = expired_token()
    headers = {**WEB, b"authorization": b"Bearer " + token.encode(),
               b"cookie": b"token=" + token.encode()}
    reply = call(FakeQwen(token=token), "GET", "/api/v1/auths/", headers=headers)
    assert refusal(reply) == ("Unauthorized", 401) and b"expired" in reply.body


def test_models_auths_and_records() -> None:
    fake = FakeQwen()
    models = ok_data(call(fake, "GET", "/api/models"))["data"]
    assert {m["id"]: m["info"]["is_active"] for m in models}["qwen3-max"] is False
    assert ok_data(call(fake, "GET", "/api/v2/models/"))["data"] == models
    assert json.loads(call(fake, "GET", "/api/v1/auths/").body)["id"]
    chat_id = new_chat(fake)
    assert refusal(call(fake, "POST", "/api/v2/chats/new", {"models": ["qwen3-max"]})) == \
        ("Bad_Request", 400)
    records = json.loads(call(fake, "GET", "/__fake__/requests").body)
    assert [r["path"] for r in records] == ["/api/v2/chats/new"] * 2
    assert records[0]["headers"]["bx-v"] == "2.5.36"
    assert chat_id in fake.chats
    assert call(fake, "DELETE", "/__fake__/requests").status == 204 and fake.requests == []
