"""LiteLLM in front of chatmock: the guide's proxy configuration, and the SDK alone."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.acceptance.clients import installs
from tests.acceptance.clients.conftest import address, client_env, run_client, upstream_with
from tests.acceptance.clients.guides import block
from tests.acceptance.conftest import Process

pytestmark = pytest.mark.clients
PROXY_START_SECONDS = 120.0  # the proxy imports a great deal: about 20 s here


@pytest.fixture(scope="module")
def litellm() -> Path:
    return installs.ensure("litellm")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def proxy(litellm: Path, chatmock_server: Process,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The LiteLLM proxy started with the guide's litellm.yaml: (its URL, its key)."""
    tmp = tmp_path_factory.mktemp("litellm")
    (tmp / "litellm.yaml").write_text(block("LiteLLM as a front", "yaml")
                                      .at(address(chatmock_server)))
    key, port = f"sk-{secrets.token_hex(24)}", free_port()
    env = client_env(tmp / "home", LITELLM_MASTER_KEY=key, LITELLM_LOCAL_MODEL_COST_MAP="True")
    with (tmp / "proxy.log").open("wb") as log:
        server = subprocess.Popen(
            [installs.venv_bin(litellm, "litellm"), "--config", "litellm.yaml",
             "--host", "127.0.0.1", "--port", str(port)],
            cwd=tmp, env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
            start_new_session=True)
    try:
        wait_until_live(f"http://127.0.0.1:{port}", server, tmp / "proxy.log")
        yield f"http://127.0.0.1:{port}", key
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)


def wait_until_live(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + PROXY_START_SECONDS
    while time.monotonic() < deadline and server.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/health/liveliness", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"the LiteLLM proxy did not start:\n{log.read_text()[-3000:]}")


@pytest.mark.parametrize("model", ["gpt-5.4", "claude-sonnet"])
def test_the_proxy_serves_chatmock_models(proxy: tuple[str, str], fake_upstream: Process,
                                          model: str, marker: str) -> None:
    """`gpt-5.4` reaches chatmock's /v1/chat/completions, `claude-sonnet` its /v1/messages
    (as anthropic/claude-sonnet-5, which chatmock maps to sonnet's gpt-5.4)."""
    url, key = proxy
    with openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=60) as client:
        answer = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": f"Hello {marker}"}])

    assert answer.choices[0].message.content == f"Hello! You said: Hello {marker}"
    [sent] = upstream_with(fake_upstream, marker)
    assert sent["body"]["model"] == "gpt-5.4"


def test_the_sdk_alone(litellm: Path, chatmock_server: Process, fake_upstream: Process,
                       tmp_path: Path, marker: str) -> None:
    """The call the guide names, made with LiteLLM's own openai."""
    base = f"http://{address(chatmock_server)}/v1"
    code = ("import litellm, sys; answer = litellm.completion(model='openai/gpt-5.4', "
            f"api_base={base!r}, api_key='unused', "
            "messages=[{'role': 'user', 'content': sys.argv[1]}]); "
            "print(answer.choices[0].message.content)")
    env = client_env(tmp_path / "home", LITELLM_LOCAL_MODEL_COST_MAP="True")
    done = run_client([installs.venv_bin(litellm, "python"), "-c", code, f"Hi {marker}"],
                      env, tmp_path)

    assert done.stdout.strip() == f"Hello! You said: Hi {marker}"
    assert len(upstream_with(fake_upstream, marker)) == 1
