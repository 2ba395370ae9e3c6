"""`chatmock serve` as a process: start-up, configuration errors, signals and drain."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from .conftest import Process, start_chatmock


@pytest.fixture
def client() -> Iterator[openai.OpenAI]:
    with openai.OpenAI(api_key="x", max_retries=0, timeout=30) as shared:
        yield shared


def slow_stream(client: openai.OpenAI, server: Process, deltas: int,
                delay_ms: int) -> openai.Stream:  # type: ignore[type-arg]
    return client.with_options(base_url=f"{server.url}/v1").chat.completions.create(
        model="gpt-5.4", stream=True,
        messages=[{"role": "user", "content": f"x fake:deltas={deltas} fake:delay_ms={delay_ms}"}])


def test_sigterm_lets_an_open_stream_finish_then_exits_0(tmp_path: Path, client: openai.OpenAI,
                                                        fake_upstream: Process) -> None:
    server = start_chatmock(tmp_path, fake_upstream, "--shutdown-timeout", "20")
    stream = slow_stream(client, server, deltas=12, delay_ms=100)
    chunks = iter(stream)
    first = next(chunks)
    assert first.choices[0].delta.role == "assistant"
    server.popen.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", server.port)) != 0, "still accepting while draining"
    rest = list(chunks)
    text = "".join(c.choices[0].delta.content or "" for c in rest if c.choices)
    assert text.count("tok") == 12
    assert rest[-1].choices[0].finish_reason == "stop"
    assert server.popen.wait(10) == 0


def test_drain_deadline_cuts_streams_that_outlive_it(tmp_path: Path, client: openai.OpenAI,
                                                     fake_upstream: Process) -> None:
    server = start_chatmock(tmp_path, fake_upstream, "--shutdown-timeout", "0.5")
    chunks = iter(slow_stream(client, server, deltas=100, delay_ms=200))
    next(chunks)
    started = time.monotonic()
    server.popen.send_signal(signal.SIGTERM)
    assert server.popen.wait(10) == 0
    assert time.monotonic() - started < 5


def test_second_signal_stops_at_once(tmp_path: Path, client: openai.OpenAI,
                                     fake_upstream: Process) -> None:
    server = start_chatmock(tmp_path, fake_upstream, "--shutdown-timeout", "60")
    chunks = iter(slow_stream(client, server, deltas=100, delay_ms=200))
    next(chunks)
    server.popen.send_signal(signal.SIGINT)
    time.sleep(0.3)
    server.popen.send_signal(signal.SIGINT)
    assert server.popen.wait(10) == 0


def test_invalid_setting_exits_2_with_a_message(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "chatmock", "serve", "--reasoning-effort",
                             "extreme"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "--reasoning-effort" in result.stderr and "extreme" in result.stderr
    result = subprocess.run([sys.executable, "-m", "chatmock", "serve", "--upstream-url",
                             "http://example.com/x"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "loopback" in result.stderr


def test_port_in_use_is_reported(tmp_path: Path, chatmock_server: Process) -> None:
    result = subprocess.run([sys.executable, "-m", "chatmock", "serve", "--port",
                             str(chatmock_server.port)], capture_output=True, text=True,
                            timeout=30)
    assert result.returncode == 1
    assert "cannot listen" in result.stderr


def test_verbose_logs_carry_no_secrets(tmp_path: Path, fake_upstream: Process) -> None:
    token = "local-access-token-1234567890"
    server = start_chatmock(tmp_path, fake_upstream, "--verbose", "--verbose-obfuscation",
                            "--access-token", token)
    secret_text = f"my key is {token} sk-abcdef123456"
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key=token, max_retries=0) as client:
        reply = client.chat.completions.create(
            model="gpt-5.4", messages=[{"role": "user", "content": secret_text}])
    assert reply.choices[0].message.content
    intruder = openai.OpenAI(base_url=f"{server.url}/v1", api_key="wrong", max_retries=0)
    with intruder, pytest.raises(openai.AuthenticationError):
        intruder.models.list()
    assert server.stop() == 0
    log = server.log.read_text()
    access_token = json.loads((tmp_path / "home" / "auth.json").read_text())["tokens"]
    assert "upstream request" in log and "upstream events" in log
    assert token not in log
    assert "sk-abcdef123456" not in log
    assert access_token["access_token"] not in log and "eyJ" not in log
