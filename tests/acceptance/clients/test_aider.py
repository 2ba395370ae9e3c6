"""aider (from PyPI, in its own virtual environment) with the guide's command line."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from tests.acceptance.clients import installs
from tests.acceptance.clients.conftest import address, client_env, run_client, upstream_with
from tests.acceptance.clients.guides import block
from tests.acceptance.conftest import Process

pytestmark = pytest.mark.clients
ONE_SHOT = ["--yes-always", "--no-git", "--no-check-update", "--analytics-disable",
            "--no-pretty", "--chat-mode", "ask"]


@pytest.fixture(scope="module")
def aider() -> Path:
    return installs.venv_bin(installs.ensure("aider"), "aider")


def quiet_home(home: Path) -> Path:
    """A home whose model-price cache is fresh, so aider does not download litellm's
    price list at start (the only outside request it makes with the switches above)."""
    caches = home / ".aider" / "caches"
    caches.mkdir(parents=True)
    # Not empty: aider takes an empty cache for a missing one.
    (caches / "model_prices_and_context_window.json").write_text('{"none": {}}')
    return home


def test_a_message_reaches_the_backend_and_the_answer_is_printed(
        aider: Path, chatmock_server: Process, fake_upstream: Process, tmp_path: Path,
        marker: str) -> None:
    guide = shlex.split(block("aider", "sh").at(address(chatmock_server)).replace("\\\n", " "))
    assert guide[0] == "aider"
    env = client_env(quiet_home(tmp_path / "home"), LITELLM_LOCAL_MODEL_COST_MAP="True")
    done = run_client([aider, *guide[1:], *ONE_SHOT, "--message", f"Say hello {marker}"],
                      env, tmp_path / "work")

    assert f"You said: Say hello {marker}" in done.stdout
    [sent] = upstream_with(fake_upstream, marker)
    assert sent["body"]["model"] == "gpt-5.4"
    printed = done.stdout + done.stderr
    assert "Unknown context window" not in printed
    assert "githubusercontent" not in printed  # the price list was not fetched
