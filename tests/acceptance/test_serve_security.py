"""`chatmock serve` as a process: the bind/token rules at start, the token file, and the
browser rules seen by real clients (the Chromium test is test_browser_attack.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import openai
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect
from websockets.typing import Origin

from .conftest import Process, requests_mentioning, start_chatmock
from .wsclient import Refused, WSClient


def serve_args(*flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chatmock", "serve", *flags],
                          capture_output=True, text=True, timeout=30)


def test_a_public_bind_without_a_token_exits_2_with_one_line() -> None:
    result = serve_args("--host", "0.0.0.0", "--port", "0")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "--insecure-no-auth" in lines[0] and "--access-token" in lines[0]


@pytest.mark.parametrize(("flags", "fragment"), [
    (["--access-token-file", "/nonexistent/token"], "cannot read"),
    (["--access-token", "a", "--access-token-file", "/etc/hostname"], "mutually exclusive"),
    (["--cors-origins", "null"], "sandboxed"),
    (["--allowed-hosts", "http://x"], "not a host name"),
])
def test_bad_security_settings_exit_2(flags: list[str], fragment: str) -> None:
    result = serve_args(*flags)
    assert result.returncode == 2
    assert fragment in result.stderr and "Traceback" not in result.stderr


def test_the_token_file_guards_the_api_and_stays_out_of_ps(tmp_path: Path,
                                                           fake_upstream: Process) -> None:
    token = "file-token-0123456789"
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    server = start_chatmock(tmp_path, fake_upstream, "--access-token-file", str(token_file))
    try:
        command_line = Path(f"/proc/{server.popen.pid}/cmdline").read_bytes()
        assert token.encode() not in command_line
        with openai.OpenAI(base_url=f"{server.url}/v1", api_key=token, max_retries=0) as client:
            reply = client.chat.completions.create(
                model="gpt-5.4", messages=[{"role": "user", "content": "token file check"}])
        assert reply.choices[0].message.content
        with openai.OpenAI(base_url=f"{server.url}/v1", api_key=token + "x",
                           max_retries=0) as intruder, pytest.raises(openai.AuthenticationError):
            intruder.models.list()
    finally:
        assert server.stop() == 0
    assert token not in server.log.read_text()


def test_websocket_handshakes_from_foreign_pages_are_refused(
        chatmock_server: Process, fake_upstream: Process) -> None:
    marker = "ws from a loopback page"
    url = f"ws://127.0.0.1:{chatmock_server.port}/v1/responses"
    for origin in ("http://evil.example", "null"):
        with pytest.raises(InvalidStatus) as refused:
            ws_connect(url, origin=Origin(origin), open_timeout=10)
        assert refused.value.response.status_code == 403
    with pytest.raises(Refused) as refused_raw:
        WSClient(chatmock_server.port, headers=[(b"origin", b"https://evil.example")])
    assert refused_raw.value.status == 403
    assert b"origin_not_allowed" in refused_raw.value.body
    with ws_connect(url, origin=Origin("http://localhost:5173"), open_timeout=10) as socket:
        socket.send(json.dumps({"type": "response.create", "model": "gpt-5.4",
                                "input": marker}))
        events: list[dict[str, object]] = []
        while not events or events[-1]["type"] != "response.completed":
            events.append(json.loads(socket.recv(timeout=20)))
    assert requests_mentioning(fake_upstream, marker) == 1


def test_a_form_post_spends_nothing_and_a_curl_style_post_is_told_the_fix(
        chatmock_server: Process, fake_upstream: Process) -> None:
    marker = "a form post that must spend nothing"
    body = json.dumps({"model": "gpt-5.4", "messages": [{"role": "user", "content": marker}]})
    url = f"{chatmock_server.url}/v1/chat/completions"
    attacks = [({"origin": "http://evil.example", "content-type": "text/plain"}, 403),
               ({}, 415)]  # urllib, like `curl -d`, sends a form Content-Type by default
    for headers, status in attacks:
        request = urllib.request.Request(url, data=body.encode(), headers=headers)
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request)
        with caught.value as error:
            assert error.code == status
            message = json.load(error)["error"]["message"]
        assert ("Content-Type: application/json" in message) == (status == 415)
    assert requests_mentioning(fake_upstream, marker) == 0
