"""The guide's SDK snippets, run as they are (the prompt made unique): Python with the
test environment's openai and anthropic packages (no install, so in the default run),
JavaScript with the openai and @anthropic-ai/sdk npm packages."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.acceptance.clients import installs
from tests.acceptance.clients.conftest import address, client_env, run_client, upstream_with
from tests.acceptance.clients.guides import block
from tests.acceptance.conftest import Process

GUIDE = "OpenAI and Anthropic SDKs"


def check_answers(printed: str, fake: Process, marker: str) -> None:
    """Both halves of a snippet answered: one upstream request and one echo each."""
    assert printed.count(f"You said: Hello {marker}") == 2, printed
    assert len(upstream_with(fake, marker)) == 2


def snippet(lang: str, server: Process, marker: str) -> str:
    return block(GUIDE, lang).at(address(server)).replace("Hello!", f"Hello {marker}")


def test_the_python_snippet(chatmock_server: Process, fake_upstream: Process,
                            tmp_path: Path, marker: str) -> None:
    script = tmp_path / "guide.py"
    script.write_text(snippet("python", chatmock_server, marker))
    env = client_env(tmp_path / "home")
    printed = run_client([sys.executable, script], env, tmp_path).stdout
    check_answers(printed, fake_upstream, marker)


@pytest.mark.clients
def test_the_javascript_snippet(chatmock_server: Process, fake_upstream: Process,
                                tmp_path: Path, marker: str) -> None:
    packages = installs.ensure("js-sdks")
    (tmp_path / "node_modules").symlink_to(packages / "node_modules")
    script = tmp_path / "guide.mjs"
    script.write_text(snippet("js", chatmock_server, marker))
    printed = run_client(["node", script], client_env(tmp_path / "home"), tmp_path).stdout
    check_answers(printed, fake_upstream, marker)
