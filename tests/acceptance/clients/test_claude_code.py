"""Claude Code (the native binary from npm) in print mode, set up as the guide says."""

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
from tests.acceptance.clients.guides import block, exported
from tests.acceptance.conftest import Process

pytestmark = pytest.mark.clients


@pytest.fixture(scope="module")
def claude() -> Path:
    return installs.npm_bin(installs.ensure("claude-code"), "claude")


def run_claude(claude: Path, server: Process, tmp_path: Path, *args: str) -> dict[str, object]:
    """`claude -p ... --output-format json` with the guide's variables; its result."""
    guide = exported(block("Claude Code", "sh").at(address(server)))
    env = client_env(tmp_path / "home", **guide, DISABLE_AUTOUPDATER="1",
                     CLAUDE_CODE_MAX_RETRIES="0")
    done = run_client([claude, "-p", *args, "--output-format", "json"], env, tmp_path / "work")
    result: dict[str, object] = json.loads(done.stdout)
    assert result["is_error"] is False, result
    return result


def test_a_prompt_reaches_the_backend_and_the_answer_is_printed(
        claude: Path, chatmock_server: Process, fake_upstream: Process, tmp_path: Path,
        marker: str) -> None:
    result = run_claude(claude, chatmock_server, tmp_path, f"Say hello {marker}")

    assert marker in str(result["result"])  # the fake echoes the prompt
    [sent] = upstream_with(fake_upstream, marker)
    # Claude Code's default model (claude-opus-4-8[1m]) maps to opus's gpt-5.5-high.
    assert (sent["body"]["model"], sent["body"]["reasoning"]["effort"]) == ("gpt-5.5", "high")
    assert len(sent["body"]["tools"]) > 10  # its tools went upstream with the prompt


def test_a_tool_call_runs_and_its_result_goes_back(
        claude: Path, chatmock_server: Process, fake_upstream: Process, tmp_path: Path,
        marker: str) -> None:
    command = f'fake:args={{"command":"echo\\u0020{marker}-ran","description":"echo"}}'
    result = run_claude(claude, chatmock_server, tmp_path, f"Run it fake:tool=Bash {command}",
                        "--allowedTools", "Bash(echo:*)", "--model", "sonnet")

    assert result["num_turns"] == 2
    assert f"returned: {marker}-ran" in str(result["result"])
    first, second = upstream_with(fake_upstream, marker)
    assert first["body"]["model"] == "gpt-5.4"  # sonnet
    [call] = input_items(second, "function_call")
    [output] = input_items(second, "function_call_output")
    assert call["name"] == "Bash" and call["call_id"] == output["call_id"]
    assert f"{marker}-ran" in json.dumps(output["output"])
