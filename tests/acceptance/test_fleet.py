"""Fleet mode: two chatmock processes sharing one Redis act as one server.

Each process has its own home (its own auth.json, its own files), as two
machines would; only the Redis is shared.
"""

from __future__ import annotations

import http.client
import json
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openai
import pytest

from chatmock.testing.credentials import write_auth_file
from chatmock.testing.redis_server import RedisServer

from .conftest import Process, last_upstream_body, start_chatmock
from .test_login import control
from .test_openai_responses import TOOL_PROMPT, WEATHER, client_for
from .test_refresh import chat, oauth_state, signed_in
from .test_refresh import fake as fake  # the fixture: a fresh fake per test
from .test_responses_repairs import stripped, user
from .test_responses_websocket import sdk_turn

MODEL = "gpt-5.4"
WS_WARNING = pytest.mark.filterwarnings("ignore:connect\\(\\) must be used as a context manager")


def start_fleet(tmp: Path, fake: Process, redis: RedisServer, *flags: str,
                homes: list[Path] | None = None) -> list[Process]:
    """Two servers on one Redis; each home gets its own copy of one auth.json."""
    homes = homes or [tmp / "one", tmp / "two"]
    if not (homes[0] / "auth.json").exists():
        write_auth_file(homes[0])
    for home in homes[1:]:
        home.mkdir(parents=True, exist_ok=True)
        shutil.copy(homes[0] / "auth.json", home / "auth.json")
    return [start_chatmock(tmp / f"run-{home.name}", fake, "--state", redis.url, *flags,
                           credentials=False, home=home) for home in homes]


@pytest.fixture
def fleet(tmp_path: Path, fake_upstream: Process,
          redis_server: RedisServer) -> Iterator[list[Process]]:
    servers = start_fleet(tmp_path, fake_upstream, redis_server)
    yield servers
    for server in servers:
        server.stop()


@pytest.fixture
def clients(fleet: list[Process]) -> Iterator[list[openai.OpenAI]]:
    opened = [client_for(server) for server in fleet]
    yield opened
    for client in opened:
        client.close()


def health(server: Process) -> dict[str, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", "/health")
    document: dict[str, Any] = json.loads(connection.getresponse().read())
    connection.close()
    return document


@WS_WARNING
def test_a_chained_conversation_alternates_between_the_processes(
        fleet: list[Process], clients: list[openai.OpenAI], fake_upstream: Process) -> None:
    one, two = clients
    first = one.responses.create(model=MODEL, input=TOOL_PROMPT + " fake:reasoning",
                                 tools=[WEATHER])
    call = next(item for item in first.output if item.type == "function_call")
    events = list(two.responses.create(model=MODEL, previous_response_id=first.id, stream=True,
                                       tools=[WEATHER], input=[{"type": "function_call_output",
                                                                "call_id": call.call_id,
                                                                "output": "22C"}]))
    second = events[-1].response  # type: ignore[union-attr]
    assert second.output_text == f"Tool {call.call_id} returned: 22C"
    third = one.responses.create(model=MODEL, previous_response_id=second.id,
                                 input="fleet turn three")
    with two.responses.connect() as connection:
        fourth = sdk_turn(connection, model=MODEL, previous_response_id=third.id,
                          input="fleet turn four")[-1].response  # type: ignore[union-attr]
    fifth = one.responses.create(model=MODEL, previous_response_id=fourth.id,
                                 input="fleet turn five")
    assert fifth.output_text == "Hello! You said: fleet turn five"
    sent = last_upstream_body(fake_upstream, "fleet turn five")["input"]
    texts = [part.get("text") for item in sent if item.get("type") == "message"
             for part in item["content"]]
    assert [item.get("type") for item in sent] == [
        "message", "reasoning", "message", "function_call", "function_call_output",
        "message", "message", "message", "message", "message", "message"]
    assert texts[0].startswith("weather please") and texts[1:] == [
        "Hello! You said: weather please", f"Tool {call.call_id} returned: 22C", "fleet turn three",
        "Hello! You said: fleet turn three", "fleet turn four",
        "Hello! You said: fleet turn four", "fleet turn five"]
    assert sent[1]["encrypted_content"] == next(
        item.encrypted_content for item in first.output if item.type == "reasoning")


def test_replayed_items_are_restored_by_the_other_process(
        clients: list[openai.OpenAI], fake_upstream: Process) -> None:
    one, two = clients
    first = one.responses.create(model=MODEL, input=[user("fleet think fake:reasoning")])
    minted = next(item.encrypted_content for item in first.output if item.type == "reasoning")
    second = two.responses.create(model=MODEL, input=[user("fleet think fake:reasoning"),
                                                      *stripped(first.output),
                                                      user("fleet items restored")])
    assert second.output_text == "Hello! You said: fleet items restored"
    sent = last_upstream_body(fake_upstream, "fleet items restored")["input"]
    assert [item["encrypted_content"] for item in sent if item["type"] == "reasoning"] == [
        minted]


def test_every_process_shows_the_same_usage_figures(fleet: list[Process],
                                                    clients: list[openai.OpenAI]) -> None:
    clients[0].responses.create(model=MODEL, input="usage for the fleet")
    deadline = time.monotonic() + 15  # shared at most once per 5 s
    figures = [health(server)["usage_limits"] for server in fleet]
    while (figures[1] is None or figures[1] != figures[0]) and time.monotonic() < deadline:
        time.sleep(0.2)
        figures = [health(server)["usage_limits"] for server in fleet]
    assert figures[0] is not None and figures[0] == figures[1]
    assert figures[0]["primary"]["used_percent"] >= 0
    store = health(fleet[1])["responses_store"]
    assert store["kind"] == "redis" and store["available"] is True


def retry_until(deadline_seconds: float, attempt: Callable[[], Any]) -> Any:
    """`attempt()` again while it answers 503 (the client backing off), up to a deadline."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        try:
            return attempt()
        except openai.InternalServerError as error:
            if error.status_code != 503 or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@WS_WARNING
def test_redis_down_chains_get_a_503_and_nothing_is_lost(
        fleet: list[Process], clients: list[openai.OpenAI], redis_server: RedisServer) -> None:
    one, two = clients
    before = one.responses.create(model=MODEL, input="before the outage")
    redis_server.stop()
    plain = two.responses.create(model=MODEL, input="no shared state needed")
    assert plain.output_text == "Hello! You said: no shared state needed"
    with pytest.raises(openai.InternalServerError) as refused:
        two.responses.create(model=MODEL, previous_response_id=before.id, input="chained")
    assert refused.value.status_code == 503
    assert refused.value.response.headers["retry-after"].isdigit()
    body = refused.value.response.json()
    assert body["error"]["code"] == "state_unavailable" and "Redis" in body["error"]["message"]
    with two.responses.connect() as connection:  # the same answer as an error frame
        frame = sdk_turn(connection, model=MODEL, previous_response_id=before.id,
                         input="chained over the socket")[-1]
    assert frame.type == "error" and frame.status_code == 503  # type: ignore[attr-defined]
    assert frame.error.code == "state_unavailable"
    during = one.responses.create(model=MODEL, input="during the outage")
    kept = one.responses.create(model=MODEL, previous_response_id=during.id, input="same one")
    assert kept.output_text == "Hello! You said: same one"  # kept in process one meanwhile
    assert health(fleet[0])["responses_store"]["unsent"] == 2
    redis_server.start()  # empty: what was stored before the outage is gone with it
    deadline = time.monotonic() + 15  # process one sends its two turns once Redis answers
    while health(fleet[0])["responses_store"]["unsent"] and time.monotonic() < deadline:
        time.sleep(0.1)
    chained = retry_until(15, lambda: two.responses.create(
        model=MODEL, previous_response_id=during.id, input="written once Redis was back"))
    assert chained.output_text == "Hello! You said: written once Redis was back"
    after = two.responses.create(model=MODEL, previous_response_id=kept.id, input="and on")
    assert after.output_text == "Hello! You said: and on"


def test_both_processes_refresh_one_account_exactly_once(
        tmp_path: Path, fake: Process, redis_server: RedisServer) -> None:
    signed_in(tmp_path, fake, expired=True)  # tmp/home/auth.json, the access token lapsed
    home = tmp_path / "home"
    servers = start_fleet(tmp_path, fake, redis_server, "--issuer", fake.url,
                          "--no-model-sync", homes=[home, tmp_path / "elsewhere"])
    try:
        for round_number in (1, 2):
            with ThreadPoolExecutor(max_workers=20) as pool:
                statuses = list(pool.map(lambda n: chat(servers[n % 2], f"r{n}")[0],
                                         range(20)))
            assert statuses == [200] * 20
            state = oauth_state(fake)
            assert state["refresh_count"] == round_number
            assert all(family["status"] == "active" for family in state["families"])
            saved = [json.loads((path / "auth.json").read_text())["tokens"]
                     for path in (home, tmp_path / "elsewhere")]
            assert saved[0]["access_token"] == saved[1]["access_token"]
            assert saved[0]["refresh_token"] == saved[1]["refresh_token"]
            control(fake, "expire_access_tokens", {})
    finally:
        for server in servers:
            server.stop()
