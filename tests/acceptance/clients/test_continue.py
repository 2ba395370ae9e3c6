"""Continue's own CLI (`cn -p`, npm `@continuedev/cli`) with the guide's config.yaml:
the same config format and model providers as the VS Code and JetBrains extensions."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.acceptance.clients import installs
from tests.acceptance.clients.conftest import address, client_env, run_client, upstream_with
from tests.acceptance.clients.guides import block
from tests.acceptance.conftest import Process

pytestmark = pytest.mark.clients
GUIDE = "Cursor, Continue and Cline"
LOOPBACK_ONLY = Path(__file__).parent / "node" / "loopback_only.mjs"
"""cn asks api.continue.dev for its latest version at every start; no switch stops it."""


@pytest.fixture(scope="module")
def cn() -> Path:
    return installs.npm_bin(installs.ensure("continue"), "cn")


def test_a_prompt_reaches_the_backend_and_the_answer_is_printed(
        cn: Path, chatmock_server: Process, fake_upstream: Process, tmp_path: Path,
        marker: str) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(block(GUIDE, "yaml").at(address(chatmock_server)))
    env = client_env(tmp_path / "home", NODE_OPTIONS=f"--import={LOOPBACK_ONLY}",
                     CONTINUE_CLI_ENABLE_TELEMETRY="0")
    printed = run_client([cn, "-p", f"Say hello {marker}", "--config", config], env,
                         tmp_path / "work").stdout

    assert f"You said: Say hello {marker}" in printed
    [record] = upstream_with(fake_upstream, marker)
    assert record["body"]["model"] == "gpt-5.4"
