"""chatmock presents itself upstream as the Codex CLI, lets a Codex CLI client's own
session headers through (upstream.md §2; the Codex CLI 0.169 in clients.md), and sends
`--base-instructions` only when a client sends no instructions."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from .conftest import Process, last_upstream_body, recorded_requests, start_chatmock
from .wsclient import WSClient


def upstream_headers(fake: Process, marker: str) -> dict[str, str]:
    for record in reversed(recorded_requests(fake)):
        if marker in str(record.get("body")):
            headers: dict[str, str] = record["headers"]
            return headers
    raise AssertionError(f"no upstream request contained {marker!r}")


@pytest.fixture(scope="module")
def client(chatmock_server: Process) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{chatmock_server.url}/v1", api_key="x", max_retries=0,
                       timeout=20) as shared:
        yield shared


def test_default_identity_and_one_id_as_session_and_thread(client: openai.OpenAI,
                                                           fake_upstream: Process) -> None:
    client.responses.create(model="gpt-5.4", input="identity check")
    headers = upstream_headers(fake_upstream, "identity check")
    assert headers["originator"] == "codex_cli_rs" and headers["version"] == "0.169.0"
    assert headers["user-agent"].startswith("codex_cli_rs/0.169.0 (")
    session = headers["session-id"]
    assert str(uuid.UUID(session)) == session and headers["thread-id"] == session
    assert "x-client-request-id" not in headers


CODEX_HEADERS = {
    "originator": "codex_exec", "session-id": "019b2889-d0f2-7713-8046-20bdf342d5d7",
    "thread-id": "019b2889-d0f2-7713-8046-20bdf342d5d8", "x-client-request-id": "req-42",
    "x-codex-window-id": "win-7", "x-codex-beta-features": "remote_compaction_v2",
    "x-codex-turn-metadata": '{"installation_id":"inst-9","request_kind":"turn"}',
    "x-codex-installation-id": "inst-9"}


def test_a_codex_clients_own_headers_go_upstream_unchanged(client: openai.OpenAI,
                                                           fake_upstream: Process) -> None:
    client.responses.create(model="gpt-5.4", input="codex headers check",
                            extra_headers=CODEX_HEADERS)
    headers = upstream_headers(fake_upstream, "codex headers check")
    for name, value in CODEX_HEADERS.items():
        if name != "originator":
            assert headers[name] == value, name
    assert headers["originator"] == "codex_cli_rs"  # chatmock's identity stays its own


def test_other_clients_x_codex_headers_are_not_forwarded(client: openai.OpenAI,
                                                         fake_upstream: Process) -> None:
    client.responses.create(model="gpt-5.4", input="not codex check", extra_headers={
        "x-codex-window-id": "win-x", "x-client-request-id": "r-x", "thread-id": "t-x"})
    headers = upstream_headers(fake_upstream, "not codex check")
    assert "x-codex-window-id" not in headers and "x-client-request-id" not in headers
    assert headers["thread-id"] == headers["session-id"] != "t-x"


def test_a_codex_websocket_clients_headers_are_forwarded(chatmock_server: Process,
                                                        fake_upstream: Process) -> None:
    headers = [(b"originator", b"codex_exec"), (b"session-id", b"ws-session-1"),
               (b"thread-id", b"ws-thread-1"), (b"x-codex-window-id", b"ws-win")]
    with WSClient(chatmock_server.port, headers=headers) as codex:
        codex.create(model="gpt-5.4", input="codex ws headers check")
    sent = upstream_headers(fake_upstream, "codex ws headers check")
    assert (sent["session-id"], sent["thread-id"]) == ("ws-session-1", "ws-thread-1")
    assert sent["x-codex-window-id"] == "ws-win"


def test_client_version_and_originator_settings(tmp_path: Path, fake_upstream: Process) -> None:
    server = start_chatmock(tmp_path, fake_upstream, "--client-version", "0.170.2",
                            "--originator", "codex_exec")
    try:
        with openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0) as other:
            other.responses.create(model="gpt-5.4", input="configured identity check")
    finally:
        server.stop()
    headers = upstream_headers(fake_upstream, "configured identity check")
    assert headers["version"] == "0.170.2" and headers["originator"] == "codex_exec"
    assert headers["user-agent"].startswith("codex_exec/0.170.2 (")


def test_base_instructions_fill_in_only_when_the_client_sends_none(
        tmp_path: Path, fake_upstream: Process, chatmock_server: Process) -> None:
    from importlib import resources

    prompts = resources.files("chatmock.prompts")
    general = (prompts / "prompt.md").read_text(encoding="utf-8").strip()
    codex = (prompts / "prompt_codex_model.md").read_text(encoding="utf-8").strip()
    server = start_chatmock(tmp_path, fake_upstream, "--base-instructions", "codex")
    try:
        with openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0) as other:
            other.chat.completions.create(model="gpt-5.4", messages=[
                {"role": "user", "content": "base general check"}])
            other.responses.create(model="gpt-5.3-codex", input="base codex check")
            other.chat.completions.create(model="gpt-5.4", messages=[
                {"role": "system", "content": "Mine."},
                {"role": "user", "content": "base own check"}])
    finally:
        server.stop()
    assert last_upstream_body(fake_upstream, "base general check")["instructions"] == general
    assert last_upstream_body(fake_upstream, "base codex check")["instructions"] == codex
    assert last_upstream_body(fake_upstream, "base own check")["instructions"] == "Mine."
    with openai.OpenAI(base_url=f"{chatmock_server.url}/v1", api_key="x",
                       max_retries=0) as default:
        default.responses.create(model="gpt-5.4", input="base default check")
    assert "instructions" not in last_upstream_body(fake_upstream, "base default check")
