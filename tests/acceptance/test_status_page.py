"""The status page in a real browser: headless Chromium, driven over the DevTools protocol.

chatmock runs with an access token against the fake backend, which sends its
`x-codex-*` rate-limit headers on every answer. The page must ask for the token,
keep it out of the URL, then draw the account's usage as `/status.json` reports it,
show a streamed request while the fake holds it open (`fake:delay_ms`) and drop it
once it is over, without a reload: the page refreshes itself. Its Content-Security-
Policy allows its own inline script only, so a page that draws anything also proves
the policy lets it run.

Skipped when Debian's `chromium` is not installed (`.ci/run` installs it as root).
"""

from __future__ import annotations

import itertools
import json
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from websockets.sync.client import ClientConnection, connect

from .conftest import CHROMIUM, Process, headless_chromium, start_chatmock, start_fake

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed "
                                "(Debian: apt-get install chromium); the status page test "
                                "needs it")
TOKEN = "status-page-token-0123456789"
WAIT_SECONDS = 30.0


class Page:
    """One browser tab over the DevTools protocol (only what these tests need)."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self.ids)
        self.socket.send(json.dumps({"id": number, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=WAIT_SECONDS))
            if message.get("id") == number:
                assert "error" not in message, message
                result: dict[str, Any] = message["result"]
                return result

    def evaluate(self, expression: str) -> Any:
        answer = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        assert "exceptionDetails" not in answer, answer
        return answer["result"].get("value")

    def wait_for(self, expression: str, within: float = WAIT_SECONDS) -> Any:
        deadline = time.monotonic() + within
        while not (value := self.evaluate(expression)):
            assert time.monotonic() < deadline, f"never true: {expression}"
            time.sleep(0.1)
        return value

    def text(self, element_id: str) -> str:
        value: str = self.evaluate(f"document.getElementById('{element_id}').textContent")
        return value


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    tmp = tmp_path_factory.mktemp("status-page")
    fake = start_fake(tmp)
    chatmock = start_chatmock(tmp / "chatmock", fake, "--access-token", TOKEN)
    try:
        yield chatmock
    finally:
        chatmock.stop()
        fake.stop()


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    """A headless Chromium tab on about:blank."""
    profile = tmp_path / "profile"
    with headless_chromium(tmp_path / "chromium.log", profile, "--remote-debugging-port=0",
                           "about:blank") as browser:
        url = _page_socket(profile / "DevToolsActivePort", browser)
        with connect(url, max_size=None, open_timeout=20) as socket:
            yield Page(socket)


def _page_socket(port_file: Path, browser: subprocess.Popen[bytes]) -> str:
    """The DevTools WebSocket URL of the browser's first tab."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not port_file.exists() or not port_file.read_text().strip():
        assert browser.poll() is None, "chromium exited"
        assert time.monotonic() < deadline, "chromium never opened its DevTools port"
        time.sleep(0.05)
    port = port_file.read_text().split()[0]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as reply:
        targets = json.load(reply)
    url: str = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
    return url


def status_json(server: Process) -> Any:
    request = urllib.request.Request(f"{server.url}/status.json",
                                     headers={"authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.load(reply)


def test_the_page_asks_for_the_token_then_shows_usage_and_live_streams(
        server: Process, page: Page) -> None:
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key=TOKEN, max_retries=0) as client:
        client.chat.completions.create(model="gpt-5.4",
                                       messages=[{"role": "user", "content": "hello"}])
    page.call("Page.navigate", url=f"{server.url}/")
    page.wait_for("document.readyState === 'complete' && "
                  "!document.getElementById('login').hidden")
    assert "access token" in page.text("state")
    page.evaluate(f"document.getElementById('token').value = '{TOKEN}'; "
                  "document.getElementById('login').requestSubmit()")
    page.wait_for("document.getElementById('accounts').textContent.includes('limit')")
    assert page.evaluate("location.href") == f"{server.url}/"  # the token is in no URL
    assert page.evaluate("sessionStorage.getItem('chatmock.access-token')") == TOKEN

    [account] = status_json(server)["accounts"]
    shown = page.text("accounts")
    assert "user@example.com" in shown and "Plus plan" in shown
    windows = account["usage_limits"]["windows"]
    assert len(windows) == 2
    for window in windows:
        assert f"{window['label']} " in shown and f"{window['used_percent']:.1f}% used" in shown
    assert "resets in" in shown
    widths = page.evaluate("[...document.querySelectorAll('.bar div')].map(b => b.style.width)")
    assert widths == [f"{window['used_percent']:g}%" for window in windows]
    assert "gpt-5.4" in page.text("models") and "chatgpt (default)" in page.text("providers")
    assert page.text("live") == "No request in flight."

    streaming = threading.Thread(target=_slow_stream, args=(server,), daemon=True)
    streaming.start()
    page.wait_for("document.getElementById('live').textContent"
                  ".includes('POST /v1/chat/completions')")
    assert "gpt-5.4" in page.text("live")
    streaming.join(WAIT_SECONDS)
    assert not streaming.is_alive()
    page.wait_for("document.getElementById('live').textContent === 'No request in flight.'")


def _slow_stream(server: Process) -> None:
    """A streamed answer the fake paces over about five seconds."""
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key=TOKEN, max_retries=0) as client:
        stream = client.chat.completions.create(
            model="gpt-5.4", stream=True,
            messages=[{"role": "user", "content": "slow fake:deltas=4 fake:delay_ms=400"}])
        for _ in stream:
            pass
