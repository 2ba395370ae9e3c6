"""The account pool end to end: two ChatGPT accounts on one fake backend, the official SDKs.

The fake backend knows each request's account (its `chatgpt-account-id` and
the account in its JWT), mints encrypted reasoning for that account and
refuses another's, and is put over a usage limit or revoked per account
through `/__fake__/accounts` (chatmock/testing/fake_accounts.py).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anthropic
import ollama
import openai
import pytest

from chatmock.testing.credentials import (
    TEST_ACCOUNT_ID,
    write_account_file,
    write_auth_file,
)
from chatmock.testing.redis_server import RedisServer

from .conftest import Process, recorded_requests, spawn_fake, start_chatmock
from .test_accounts_cli import chatmock
from .test_openai_responses import client_for
from .test_responses_websocket import sdk_turn

FIRST = TEST_ACCOUNT_ID  # the default account: <home>/auth.json
SECOND = "9d1e3f0a-2222-3333-4444-555566667777"  # <home>/accounts/second.json
MODEL = "gpt-5.4"


def pool_home(home: Path) -> Path:
    write_auth_file(home)
    write_account_file(home, "second", account_id=SECOND, email="second@example.com")
    return home


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[Process]:
    process = spawn_fake(tmp_path / "fake.log")
    yield process
    process.stop()


@pytest.fixture
def server(tmp_path: Path, fake: Process) -> Iterator[Process]:
    process = start_chatmock(tmp_path / "run", fake, "--issuer", fake.url,
                             credentials=False, home=pool_home(tmp_path / "home"))
    yield process
    process.stop()


def control(fake: Process, path: str, body: object | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{fake.url}/__fake__/accounts{path}", data=data,
                                     method="GET" if data is None else "POST")
    with urllib.request.urlopen(request) as reply:
        return json.load(reply)


def accounts_asked(fake: Process) -> list[str]:
    """The account of every /responses request the fake received, oldest first."""
    return [record["headers"].get("chatgpt-account-id", "") for record in
            recorded_requests(fake)]


def account_rows(home: Path) -> dict[str, dict[str, Any]]:
    listed = chatmock(home, "accounts", "--json")
    assert listed.returncode == 0, listed.stderr
    return {row["name"]: row for row in json.loads(listed.stdout)["accounts"]}


def test_a_conversation_fails_over_mid_way_and_leaves_the_other_accounts_reasoning(
        server: Process, fake: Process, tmp_path: Path) -> None:
    with client_for(server) as client:
        first = client.responses.create(model=MODEL, input="Plan it. fake:reasoning",
                                        include=["reasoning.encrypted_content"])
        assert accounts_asked(fake) == [FIRST]
        control(fake, "/limit", {"account": FIRST, "seconds": 600})
        second = client.responses.create(model=MODEL, previous_response_id=first.id,
                                         input="And now? fake:reasoning")
        assert second.status == "completed" and second.output_text
        # the same turn resent by hand, replaying the first account's reasoning
        resent: Any = [{"role": "user", "content": "Plan it. fake:reasoning"},
                       *[item.model_dump(exclude_none=True) for item in first.output],
                       {"role": "user", "content": "Once more"}]
        replayed = client.responses.create(model=MODEL, input=resent)
        assert replayed.status == "completed"
    assert accounts_asked(fake) == [FIRST, FIRST, SECOND, SECOND]
    moved = recorded_requests(fake)[2]["body"]["input"]
    assert "reasoning" in {item.get("type") for item in recorded_requests(fake)[1]["body"][
        "input"]}  # what the first account was sent (and refused with its 429)
    assert "reasoning" not in {item.get("type") for item in moved}
    log = (tmp_path / "run" / "chatmock.log").read_text()
    assert "conversation moved from default to account second; dropped 1 reasoning" in log
    rows = account_rows(tmp_path / "home")
    assert rows["default"]["state"] == "cooling down" and rows["second"]["state"] == "ok"
    assert rows["second"]["usage_limits"]["windows"]  # usage recorded per account
    with urllib.request.urlopen(f"{server.url}/status.json") as reply:
        shown = {a["name"]: a for a in json.load(reply)["accounts"]}
    assert shown["default"]["state"].startswith("cooling down until ")
    assert shown["second"]["state"] == "ok" and shown["second"]["login"] == "second@example.com"


@pytest.mark.parametrize("shape", ["failed", "error"])
def test_a_usage_limit_said_in_the_stream_fails_over_before_anything_is_streamed(
        server: Process, fake: Process, tmp_path: Path, shape: str) -> None:
    control(fake, "/limit", {"account": FIRST, "seconds": 600, "in_stream": shape})
    with client_for(server) as client:
        events = list(client.responses.create(model=MODEL, input="Hello", stream=True))
        kinds = [event.type for event in events]
        assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
        assert "error" not in kinds and "response.failed" not in kinds
        assert events[-1].response.output_text  # type: ignore[union-attr]
        chunks = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Another one"}], stream=True)
        text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks
                       if chunk.choices)
        assert text
    assert accounts_asked(fake) == [FIRST, SECOND, SECOND]  # cooled down after the first
    rows = account_rows(tmp_path / "home")
    assert rows["default"]["state"] == "cooling down" and rows["second"]["state"] == "ok"
    with urllib.request.urlopen(f"{server.url}/status.json") as reply:
        shown = {a["name"]: a for a in json.load(reply)["accounts"]}
    until = datetime.fromisoformat(shown["default"]["state"].removeprefix(
        "cooling down until "))
    assert 590 <= (until - datetime.now(UTC)).total_seconds() <= 600  # the event's reset
    assert "reached its usage limit: cooling down for 600 s" in (
        tmp_path / "run" / "chatmock.log").read_text()


def test_every_account_cooling_is_a_429_with_the_earliest_reset_in_each_dialect(
        server: Process, fake: Process) -> None:
    control(fake, "/limit", {"account": FIRST, "seconds": 900})
    control(fake, "/limit", {"account": SECOND, "seconds": 120})
    with client_for(server) as client, pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x"}])
    assert int(caught.value.response.headers["retry-after"]) in range(110, 121)
    asked = len(accounts_asked(fake))
    assert asked == 2  # each account once; the next requests are answered at once
    with anthropic.Anthropic(base_url=server.url, api_key="x", max_retries=0) as claude, \
            pytest.raises(anthropic.RateLimitError) as refused:
        claude.messages.create(model="claude-sonnet-4-5", max_tokens=50,
                               messages=[{"role": "user", "content": "x"}])
    assert refused.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert 0 < int(refused.value.response.headers["retry-after"]) <= 120
    llama = ollama.Client(host=server.url, timeout=20)
    with pytest.raises(ollama.ResponseError) as failed:
        llama.chat(model=MODEL, messages=[{"role": "user", "content": "x"}])
    llama.close()  # type: ignore[no-untyped-call]
    assert failed.value.status_code == 429
    assert len(accounts_asked(fake)) == asked


def test_a_revoked_account_is_refreshed_once_then_needs_login(
        server: Process, fake: Process, tmp_path: Path) -> None:
    control(fake, "/revoke", {"account": FIRST})
    with client_for(server) as client:
        answer = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hello"}])
        assert answer.choices[0].message.content
        client.chat.completions.create(model=MODEL,
                                       messages=[{"role": "user", "content": "again"}])
    assert accounts_asked(fake) == [FIRST, SECOND, SECOND]
    with urllib.request.urlopen(f"{fake.url}/__fake__/oauth/state") as reply:
        oauth = json.load(reply)
    assert oauth["refresh_attempts"] == 1  # refreshed once, refused: needs a new sign-in
    rows = account_rows(tmp_path / "home")
    assert rows["default"]["state"] == "needs login" and rows["second"]["state"] == "ok"
    assert "needs `chatmock login --account default`" in (
        tmp_path / "run" / "chatmock.log").read_text()


def test_an_account_added_or_removed_while_serving_joins_or_leaves_the_pool(
        tmp_path: Path, fake: Process) -> None:
    home = tmp_path / "home"
    write_auth_file(home)
    server = start_chatmock(tmp_path / "run", fake, credentials=False, home=home)
    try:
        with client_for(server) as client:
            client.responses.create(model=MODEL, input="one account")
            control(fake, "/limit", {"account": FIRST, "seconds": 600})
            with pytest.raises(openai.RateLimitError):
                client.responses.create(model=MODEL, input="still one account")
            write_account_file(home, "second", account_id=SECOND, email="second@example.com")
            time.sleep(1.2)  # the directory is looked at once a second
            answer = client.responses.create(model=MODEL, input="two accounts now")
            assert answer.status == "completed"
            assert accounts_asked(fake) == [FIRST, FIRST, FIRST, SECOND]
            assert chatmock(home, "logout", "second").returncode == 0
            time.sleep(1.2)
            with pytest.raises(openai.RateLimitError):
                client.responses.create(model=MODEL, input="one account again")
        assert accounts_asked(fake)[4:] == [FIRST]
        log = (tmp_path / "run" / "chatmock.log").read_text()
        assert "account pool changed on disk: added second; now default, second" in log
        assert "account pool changed on disk: removed second; now default" in log
    finally:
        server.stop()


@pytest.fixture
def round_robin(tmp_path: Path, fake: Process) -> Iterator[Process]:
    process = start_chatmock(tmp_path / "run", fake, "--account-strategy", "round-robin",
                             credentials=False, home=pool_home(tmp_path / "home"))
    yield process
    process.stop()


@pytest.mark.filterwarnings("ignore:connect\\(\\) must be used as a context manager")
def test_a_websocket_connection_stays_on_its_account(round_robin: Process,
                                                     fake: Process) -> None:
    with client_for(round_robin) as client:
        for n in range(2):  # over HTTP, new conversations take the accounts in turn
            client.responses.create(model=MODEL, input=f"HTTP conversation {n}")
        assert accounts_asked(fake) == [FIRST, SECOND]
        with client.responses.connect() as connection:
            for n in range(3):  # one socket: one account, whatever the conversation
                events = sdk_turn(connection, model=MODEL, input=f"socket conversation {n}")
                assert events[-1].type == "response.completed"
    assert accounts_asked(fake)[2:] == [FIRST] * 3


@pytest.fixture
def two_processes(tmp_path: Path, fake: Process,
                  redis_server: RedisServer) -> Iterator[tuple[openai.OpenAI, openai.OpenAI]]:
    """Two chatmock processes, each with its own copy of the two accounts, on one Redis,
    round-robin; an OpenAI client for each."""
    homes = [pool_home(tmp_path / name) for name in ("one", "two")]
    servers = [start_chatmock(tmp_path / f"run-{home.name}", fake, "--state", redis_server.url,
                              "--account-strategy", "round-robin", credentials=False, home=home)
               for home in homes]
    clients = [client_for(server) for server in servers]
    try:
        yield clients[0], clients[1]
    finally:
        for client, server in zip(clients, servers, strict=True):
            client.close()
            server.stop()


def test_two_processes_on_one_redis_share_cooldowns_and_affinity(
        two_processes: tuple[openai.OpenAI, openai.OpenAI], fake: Process) -> None:
    one, two = two_processes
    first = one.responses.create(model=MODEL, input="Conversation X fake:reasoning")
    other = one.responses.create(model=MODEL, input="Conversation Y fake:reasoning")
    assert accounts_asked(fake) == [FIRST, SECOND]
    # turn 2 of Y in the other process (its own round-robin would say FIRST)
    two.responses.create(model=MODEL, previous_response_id=other.id, input="next")
    assert accounts_asked(fake)[-1] == SECOND
    control(fake, "/limit", {"account": FIRST, "seconds": 600})
    one.responses.create(model=MODEL, previous_response_id=first.id, input="more")
    assert accounts_asked(fake)[-2:] == [FIRST, SECOND]  # 429, then failed over
    with urllib.request.urlopen(urllib.request.Request(f"{fake.url}/__fake__/accounts",
                                                       method="DELETE")):
        pass
    before = len(accounts_asked(fake))
    for n in range(3):  # new conversations in the other process avoid FIRST too
        two.responses.create(model=MODEL, input=f"Conversation {n} in two")
    assert accounts_asked(fake)[before:] == [SECOND] * 3


def test_a_chained_conversation_keeps_its_account_while_it_alternates_processes(
        two_processes: tuple[openai.OpenAI, openai.OpenAI], fake: Process) -> None:
    one, two = two_processes
    one.responses.create(model=MODEL, input="A short conversation")  # FIRST's turn
    previous = one.responses.create(model=MODEL, input="A long one fake:reasoning",
                                    include=["reasoning.encrypted_content"])
    for n in range(4):  # process two's own round-robin would start on FIRST
        previous = (two, one)[n % 2].responses.create(
            model=MODEL, previous_response_id=previous.id, input=f"turn {n} fake:reasoning",
            include=["reasoning.encrypted_content"])
        assert previous.status == "completed" and f"turn {n}" in previous.output_text
    assert accounts_asked(fake) == [FIRST] + [SECOND] * 5
    sent = recorded_requests(fake)[-1]["body"]["input"]
    replayed = [item for item in sent if item.get("type") == "reasoning"]
    assert len(replayed) == 4 and all(item["encrypted_content"] for item in replayed)
