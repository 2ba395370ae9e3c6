"""Model lists with discovery on and off, expiry of stored turns, web search fields."""

from __future__ import annotations

import time
from pathlib import Path

import openai
import pytest

from .conftest import Process, last_upstream_body, start_chatmock


def ids_of(server: Process) -> list[str]:
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0) as client:
        return [model.id for model in client.models.list()]


def test_models_come_from_discovery(tmp_path: Path, fake_upstream: Process) -> None:
    server = start_chatmock(tmp_path, fake_upstream, "--expose-reasoning-models")
    try:
        ids = ids_of(server)
    finally:
        server.stop()
    assert "gpt-5.4" in ids and "gpt-5.4-high" in ids
    assert "gpt-5.1-codex-mini" not in ids  # the fake lists it with visibility "hide"
    assert "codex-mini" not in ids  # only in the static table


def test_static_models_without_discovery(tmp_path: Path, fake_upstream: Process) -> None:
    server = start_chatmock(tmp_path, fake_upstream, "--no-model-sync")
    try:
        ids = ids_of(server)
    finally:
        server.stop()
    assert "codex-mini" in ids and "gpt-5.1-codex-mini" in ids
    assert "gpt-5.4-high" not in ids


def test_an_expired_previous_response_id_is_a_400(tmp_path: Path,
                                                  fake_upstream: Process) -> None:
    server = start_chatmock(tmp_path, fake_upstream, "--responses-ttl", "1")
    try:
        with openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0) as client:
            first = client.responses.create(model="gpt-5.4", input="expiring")
            time.sleep(1.5)
            with pytest.raises(openai.BadRequestError) as caught:
                client.responses.create(model="gpt-5.4", input="too late",
                                        previous_response_id=first.id)
    finally:
        server.stop()
    assert first.id in caught.value.message


def test_web_search_reaches_the_backend(tmp_path: Path, fake_upstream: Process) -> None:
    server = start_chatmock(tmp_path, fake_upstream, "--enable-web-search")
    try:
        with openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0) as client:
            client.responses.create(model="gpt-5.4", input="search default check")
            client.chat.completions.create(
                model="gpt-5.4", messages=[{"role": "user", "content": "chat search check"}],
                extra_body={"responses_tools": [{"type": "web_search_preview"}],
                            "responses_tool_choice": "auto"})
            client.chat.completions.create(
                model="gpt-5.4", messages=[{"role": "user", "content": "no search check"}],
                extra_body={"responses_tool_choice": "none"})
    finally:
        server.stop()
    assert last_upstream_body(fake_upstream, "search default check")["tools"] == [
        {"type": "web_search"}]
    chat_sent = last_upstream_body(fake_upstream, "chat search check")
    assert chat_sent["tools"] == [{"type": "web_search_preview"}]
    assert chat_sent["tool_choice"] == "auto"
    assert last_upstream_body(fake_upstream, "no search check")["tools"] == []
