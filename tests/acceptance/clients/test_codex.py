"""The Codex CLI (`codex exec`) with the guide's config.toml, over HTTP and WebSocket."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from tests.acceptance.clients import installs
from tests.acceptance.clients.conftest import (
    address,
    client_env,
    input_items,
    run_client,
    upstream_with,
)
from tests.acceptance.clients.guides import block
from tests.acceptance.conftest import Process

pytestmark = pytest.mark.clients
_SOCKETS = re.compile(rb'"GET /v1/responses" 101 ')


@pytest.fixture(scope="module")
def codex() -> Path:
    return installs.npm_bin(installs.ensure("codex"), "codex")


def guide_config(server: Process, *, websockets: bool) -> str:
    """The guide's config.toml pointed at `server`, its transport switched as asked."""
    text = block("Codex CLI", "toml").at(address(server))
    assert "supports_websockets = false" in text
    return text.replace("supports_websockets = false", f"supports_websockets = {websockets}"
                        .lower())


def run_codex(codex: Path, server: Process, tmp_path: Path, prompt: str, *,
              websockets: bool) -> str:
    config = guide_config(server, websockets=websockets)
    (tmp_path / "codex-home").mkdir()
    (tmp_path / "codex-home" / "config.toml").write_text(config)
    key_name = tomllib.loads(config)["model_providers"]["chatmock"]["env_key"]
    env = client_env(tmp_path / "home", CODEX_HOME=str(tmp_path / "codex-home"),
                     **{key_name: "unused"})
    done = run_client([codex, "exec", "--skip-git-repo-check", prompt], env, tmp_path / "work")
    assert "Reconnecting" not in done.stderr, done.stderr  # a refused socket falls back to HTTP
    return done.stdout


def sockets_opened(server: Process) -> int:
    return len(_SOCKETS.findall(server.log.read_bytes()))


@pytest.mark.parametrize("websockets", [False, True], ids=["http", "websocket"])
def test_a_prompt_reaches_the_backend_and_the_answer_is_printed(
        codex: Path, chatmock_server: Process, fake_upstream: Process, tmp_path: Path,
        marker: str, websockets: bool) -> None:
    before = sockets_opened(chatmock_server)
    printed = run_codex(codex, chatmock_server, tmp_path, f"Say hello {marker}",
                        websockets=websockets)

    assert f"You said: Say hello {marker}" in printed
    [sent] = upstream_with(fake_upstream, marker)
    assert sent["body"]["model"] == "gpt-5.4"
    assert "x-codex-turn-metadata" in sent["headers"]  # Codex's own turn ids went upstream
    assert sockets_opened(chatmock_server) == before + websockets


@pytest.mark.parametrize("websockets", [False, True], ids=["http", "websocket"])
def test_a_tool_call_runs_and_the_whole_history_goes_upstream(
        codex: Path, chatmock_server: Process, fake_upstream: Process, tmp_path: Path,
        marker: str, websockets: bool) -> None:
    """Over the WebSocket, Codex sends the second turn as `previous_response_id` plus the
    tool output only; upstream it must arrive with the whole conversation."""
    args = f'fake:args={{"cmd":"echo\\u0020{marker}-ran"}}'
    printed = run_codex(codex, chatmock_server, tmp_path, f"Run fake:tool=exec_command {args}",
                        websockets=websockets)

    assert f"Output:\n{marker}-ran" in printed  # the fake's answer quotes the tool output
    first, second = upstream_with(fake_upstream, marker)
    [call] = input_items(second, "function_call")
    [output] = input_items(second, "function_call_output")
    assert call["name"] == "exec_command" and call["call_id"] == output["call_id"]
    assert f"{marker}-ran" in str(output["output"])
    first_messages = input_items(first, "message")
    assert input_items(second, "message")[: len(first_messages)] == first_messages
