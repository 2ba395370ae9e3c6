"""`/v1/responses` over a WebSocket, against the real server process and the fake backend.

Two clients: openai-python's own `responses.connect()` (on the `websockets`
package, a test dependency), and wsproto over a plain socket
(tests/acceptance/wsclient.py) for what the SDK cannot send: Codex's
headers and deflate offer, broken frames, a close handshake on demand.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types.responses import ResponsesServerEvent

from .conftest import Process, last_upstream_body, recorded_requests, start_chatmock
from .wsclient import CODEX_HEADERS, CodexDeflate, Refused, WSClient, done_items, output_text

MODEL = "gpt-5.4"
WEATHER = {"type": "function", "name": "get_weather", "description": "Weather for a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
           "strict": False}
TOOL_PROMPT = 'weather please fake:tool=get_weather fake:args={"city":"Paris"}'
DEVELOPER = {"type": "message", "role": "developer",
             "content": [{"type": "input_text", "text": "You are Codex (ws prewarm check)."}]}


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


@pytest.fixture
def client(chatmock_server: Process) -> Iterator[WSClient]:
    with WSClient(chatmock_server.port) as socket:
        yield socket


def test_three_turn_tool_loop_chained_on_one_socket(client: WSClient,
                                                    fake_upstream: Process) -> None:
    first = client.create(model=MODEL, input=TOOL_PROMPT, tools=[WEATHER])
    assert [first[0]["type"], first[-1]["type"]] == ["response.created", "response.completed"]
    call = next(item for item in done_items(first) if item["type"] == "function_call")
    assert json.loads(call["arguments"]) == {"city": "Paris"}

    second = client.create(model=MODEL, tools=[WEATHER],
                           previous_response_id=first[-1]["response"]["id"],
                           input=[{"type": "function_call_output", "call_id": call["call_id"],
                                   "output": "22C"}])
    assert second[-1]["type"] == "response.completed"
    assert output_text(second) == f"Tool {call['call_id']} returned: 22C"

    third = client.create(model=MODEL, previous_response_id=second[-1]["response"]["id"],
                          input="thanks, ws chain check")
    assert output_text(third) == "Hello! You said: thanks, ws chain check"
    sent = last_upstream_body(fake_upstream, "thanks, ws chain check")
    kinds = [(item.get("type"), item.get("role")) for item in sent["input"]]
    assert kinds[0] == ("message", "user")
    assert ("function_call", None) in kinds and ("function_call_output", None) in kinds
    assert kinds[-2:] == [("message", "assistant"), ("message", "user")]
    assert "previous_response_id" not in sent and "generate" not in sent


def sdk_turn(connection: Any, **create: Any) -> list[ResponsesServerEvent]:
    """Send one `response.create` and collect its events up to the terminal one."""
    connection.response.create(**create)
    events: list[ResponsesServerEvent] = []
    for event in connection:
        events.append(event)
        if event.type in ("response.completed", "response.failed", "error"):
            return events
    raise AssertionError(f"the socket closed after {[e.type for e in events]}")


# openai-python calls websockets' connect() the way websockets 17.1 deprecated.
@pytest.mark.filterwarnings("ignore:connect\\(\\) must be used as a context manager")
def test_openai_sdk_connect_runs_a_chained_tool_loop(chatmock_server: Process,
                                                      fake_upstream: Process) -> None:
    client = openai.OpenAI(base_url=f"{chatmock_server.url}/v1", api_key="x", max_retries=0)
    with client.responses.connect() as connection:
        first = sdk_turn(connection, model=MODEL, input=TOOL_PROMPT, tools=[WEATHER])
        assert first[-1].type == "response.completed"
        call = next(event.item for event in first if event.type == "response.output_item.done"
                    and event.item.type == "function_call")
        assert json.loads(call.arguments) == {"city": "Paris"}

        second = sdk_turn(connection, model=MODEL, tools=[WEATHER],
                          previous_response_id=first[-1].response.id,
                          input=[{"type": "function_call_output", "call_id": call.call_id,
                                  "output": "18C"}])
        assert second[-1].type == "response.completed"
        assert second[-1].response.output_text == f"Tool {call.call_id} returned: 18C"

        bad = sdk_turn(connection, model=MODEL, input="x", previous_response_id="resp_gone")
        assert bad[-1].type == "error"  # an error frame; the socket stays open

        third = sdk_turn(connection, model=MODEL, previous_response_id=second[-1].response.id,
                         input="thanks, sdk socket check")
        assert third[-1].type == "response.completed"
        assert third[-1].response.output_text == "Hello! You said: thanks, sdk socket check"
    sent = last_upstream_body(fake_upstream, "thanks, sdk socket check")
    kinds = [(item.get("type"), item.get("role")) for item in sent["input"]]
    assert ("function_call", None) in kinds and ("function_call_output", None) in kinds
    assert kinds[-1] == ("message", "user") and "previous_response_id" not in sent


def test_codex_prewarm_then_chained_turn_with_deflate(chatmock_server: Process,
                                                      fake_upstream: Process) -> None:
    with WSClient(chatmock_server.port, headers=CODEX_HEADERS,
                  extensions=[CodexDeflate()]) as codex:
        accepted = [extension.name for extension in codex.accepted.extensions]
        assert accepted == ["permessage-deflate"]
        upstream_calls = len(recorded_requests(fake_upstream))
        prewarm = codex.create(model=MODEL, input=[DEVELOPER], tools=[WEATHER], generate=False,
                               stream=True, store=False)
        assert [event["type"] for event in prewarm] == ["response.created",
                                                        "response.completed"]
        prewarm_id = prewarm[-1]["response"]["id"]
        assert prewarm_id.startswith("resp_") and prewarm[-1]["response"]["output"] == []
        assert len(recorded_requests(fake_upstream)) == upstream_calls  # nothing went upstream

        turn = codex.create(model=MODEL, tools=[WEATHER], previous_response_id=prewarm_id,
                            input=[user("first codex turn")], stream=True, store=False)
        assert output_text(turn) == "Hello! You said: first codex turn"
        sent = last_upstream_body(fake_upstream, "first codex turn")
        assert [item.get("role") for item in sent["input"]] == ["developer", "user"]

        follow = codex.create(model=MODEL, previous_response_id=turn[-1]["response"]["id"],
                              input=[user("second codex turn " + "padding " * 2000)])
        assert output_text(follow).startswith("Hello! You said: second codex turn")


def test_invalid_frames_get_error_frames_and_the_socket_stays_open(client: WSClient) -> None:
    client.send_text("{not json")
    error = client.receive_json()
    assert error["type"] == "error" and error["status_code"] == 400
    assert error["error"]["code"] == "invalid_json" and error["error"]["message"]

    client.send_json({"type": "session.update"})
    assert client.receive_json()["error"]["code"] == "unsupported_frame_type"

    unknown = client.create(model=MODEL, input="x", previous_response_id="resp_nope")
    assert unknown[-1]["status_code"] == 400 and "resp_nope" in unknown[-1]["error"]["message"]
    assert unknown[-1]["error"]["code"] == "previous_response_not_found"

    ok = client.create(model=MODEL, input="still here")
    assert output_text(ok) == "Hello! You said: still here"


def test_upstream_429_is_an_error_frame(client: WSClient) -> None:
    events = client.create(model=MODEL, input="busy fake:error=429")
    assert len(events) == 1
    error = events[0]
    assert error["type"] == "error" and error["status_code"] == 429
    assert "usage limit" in error["error"]["message"]
    assert error["headers"]["retry-after"]
    assert output_text(client.create(model=MODEL, input="after 429")) == \
        "Hello! You said: after 429"


def test_failed_and_cut_streams_end_with_one_terminal_frame(client: WSClient) -> None:
    failed = client.create(model=MODEL, input="x fake:fail")
    assert failed[-1]["type"] == "response.failed"  # the backend's own event, relayed
    cut = client.create(model=MODEL, input="x fake:cut")
    assert cut[-1]["type"] == "error" and cut[-1]["status_code"] == 502
    assert cut[-1]["error"]["code"] == "upstream_truncated"
    # Nothing stale is left in front of the next answer.
    assert client.create(model=MODEL, input="after cut")[0]["type"] == "response.created"


def test_missing_credentials_are_a_401_error_frame(tmp_path: Path,
                                                   fake_upstream: Process) -> None:
    server = start_chatmock(tmp_path, fake_upstream, credentials=False)
    try:
        with WSClient(server.port) as socket:
            events = socket.create(model=MODEL, input="hello")
            assert events[-1]["type"] == "error" and events[-1]["status_code"] == 401
    finally:
        server.stop()


def test_plain_get_is_a_426_in_openai_shape(chatmock_server: Process) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{chatmock_server.url}/v1/responses", timeout=10)
    assert caught.value.code == 426
    assert caught.value.headers["upgrade"] == "websocket"
    assert json.load(caught.value)["error"]["code"] == "upgrade_required"


def test_access_token_is_checked_before_the_upgrade(tmp_path: Path,
                                                    fake_upstream: Process) -> None:
    server = start_chatmock(tmp_path, fake_upstream, "--access-token", "sekret")
    try:
        with pytest.raises(Refused) as caught:
            WSClient(server.port)
        assert caught.value.status == 401
        assert json.loads(caught.value.body)["error"]["code"] == "invalid_access_token"
        with WSClient(server.port, token="sekret") as socket:
            assert output_text(socket.create(model=MODEL, input="token ok")) == \
                "Hello! You said: token ok"
    finally:
        server.stop()


def test_server_answers_the_close_handshake(chatmock_server: Process) -> None:
    socket = WSClient(chatmock_server.port)
    assert socket.close() == 1000


def test_a_backend_silent_mid_answer_ends_in_one_error_frame_with_its_status(
        tmp_path: Path, fake_upstream: Process) -> None:
    """The relay's read timeout cuts the stream (a 504 `UpstreamError` mid-answer): the
    frames relayed so far, then exactly one terminal frame, ours, with that status."""
    server = start_chatmock(tmp_path, fake_upstream, "--upstream-read-timeout", "1")
    try:
        with WSClient(server.port) as socket:
            events = socket.create(model=MODEL, input="x fake:burst=4 fake:delay_ms=4000")
            kinds = [event["type"] for event in events]
            assert kinds[0] == "response.created" and len(kinds) == 5, kinds
            assert kinds[:-1].count("error") == 0
            assert events[-1]["status_code"] == 504
            assert events[-1]["error"]["code"] == "upstream_error"
            assert "sent nothing for 1 s" in events[-1]["error"]["message"]
            after = socket.create(model=MODEL, input="after silence")
            assert after[0]["type"] == "response.created"  # nothing stale in front
            assert output_text(after) == "Hello! You said: after silence"
    finally:
        server.stop()


def test_the_sockets_access_line_counts_its_answers(tmp_path: Path,
                                                    fake_upstream: Process) -> None:
    """One line for the socket (status 101), as a stream: the answers' tokens added up,
    the latest error (an error frame of ours) named."""
    server = start_chatmock(tmp_path, fake_upstream, "--log-format", "json")
    try:
        with WSClient(server.port) as socket:
            first = socket.create(model=MODEL, input="one")
            second = socket.create(model=MODEL, input="two two")
            refused = socket.create(model=MODEL, input="x", previous_response_id="resp_nope")
            assert refused[-1]["type"] == "error"
    finally:
        server.stop()
    usages = [turn[-1]["response"]["usage"] for turn in (first, second)]
    line = next(record for record in access_records(server)
                if record.get("path") == "/v1/responses")
    assert line["status"] == 101 and line["stream"] is True
    assert line["input_tokens"] == sum(usage["input_tokens"] for usage in usages)
    assert line["output_tokens"] == sum(usage["output_tokens"] for usage in usages)
    assert "resp_nope" in line["error"]


def access_records(server: Process) -> list[dict[str, Any]]:
    """The JSON log's access lines (those with a path), in order."""
    records = [json.loads(line) for line in server.log.read_text().splitlines()
               if line.startswith("{")]
    return [record for record in records if "path" in record]
