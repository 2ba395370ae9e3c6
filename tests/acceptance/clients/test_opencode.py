"""opencode (`opencode run`) with the guide's opencode.json."""

from __future__ import annotations

import json
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
QUIET = {  # opencode's switches for what it would fetch from elsewhere at start
    "OPENCODE_DISABLE_AUTOUPDATE": "1", "OPENCODE_DISABLE_MODELS_FETCH": "1",
    "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1", "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
    "OPENCODE_DISABLE_SHARE": "1",
}


@pytest.fixture(scope="module")
def opencode() -> Path:
    return installs.npm_bin(installs.ensure("opencode"), "opencode")


def run_opencode(opencode: Path, server: Process, tmp_path: Path, *words: str) -> str:
    """`opencode run` with the prompt as separate words (it quotes a word that has a
    space in it before sending it)."""
    config = tmp_path / "opencode.json"
    config.write_text(block("opencode", "json").at(address(server)))
    env = client_env(tmp_path / "home", OPENCODE_CONFIG=str(config), **QUIET)
    return run_client([opencode, "run", *words], env, tmp_path / "work").stdout


def test_a_prompt_reaches_the_backend_and_the_answer_is_printed(
        opencode: Path, chatmock_server: Process, fake_upstream: Process, tmp_path: Path,
        marker: str) -> None:
    printed = run_opencode(opencode, chatmock_server, tmp_path, "Say", "hello", marker)

    assert f"You said: Say hello {marker}" in printed
    models = {record["body"]["model"] for record in upstream_with(fake_upstream, marker)}
    assert models == {"gpt-5.4", "gpt-5.4-mini"}  # the answer, and the title (small_model)


def test_a_tool_call_runs_and_its_result_goes_back(
        opencode: Path, chatmock_server: Process, fake_upstream: Process, tmp_path: Path,
        marker: str) -> None:
    args = f'fake:args={{"command":"echo\\u0020{marker}-ran","description":"echo"}}'
    printed = run_opencode(opencode, chatmock_server, tmp_path, "Run", "fake:tool=bash", args)

    assert f"returned: {marker}-ran" in printed
    last = upstream_with(fake_upstream, f"{marker}-ran")[-1]
    [call] = input_items(last, "function_call")
    [output] = input_items(last, "function_call_output")
    assert call["name"] == "bash" and call["call_id"] == output["call_id"]
    assert f"{marker}-ran" in json.dumps(output["output"])
