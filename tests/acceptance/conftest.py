"""Real processes for acceptance tests: the fake Codex backend and `chatmock serve`.

Both are started with `--port 0`; the bound port is read from the process's
own announcement, so tests never race for ports. Processes are stopped with
SIGTERM at the end and their logs are kept in the test's temp dir.

`CHATMOCK_TEST_UPSTREAM=h2` runs the whole suite against a fake backend behind
TLS, which offers `h2` and `http/1.1` by ALPN like the real one, so chatmock
talks HTTP/2 to it (`.ci/run` runs the directory once more that way). The
certificates come from a trustme CA, trusted by chatmock and by the tests
themselves through `SSL_CERT_FILE`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import ollama
import pytest

from chatmock.testing.credentials import write_auth_file

STARTUP_SECONDS = 20.0
CHROMIUM = shutil.which("chromium")  # Debian's package; tests that need it skip without it
_LISTENING = re.compile(rb"listening on (https?)://[^:]+:(\d+)")
UPSTREAM_H2 = os.environ.get("CHATMOCK_TEST_UPSTREAM", "") == "h2"
_TLS_FILES: list[str] = []  # cert, key of the fake backend in h2 mode


@dataclass
class Process:
    popen: subprocess.Popen[bytes]
    port: int
    log: Path
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def stop(self, timeout: float = 10.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait()


def _wait_for_port(popen: subprocess.Popen[bytes], log: Path) -> tuple[str, int]:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        found = _LISTENING.search(log.read_bytes())
        if found:
            return found.group(1).decode(), int(found.group(2))
        if popen.poll() is not None:
            break
        time.sleep(0.02)
    popen.kill()
    raise RuntimeError(f"process did not start; log:\n{log.read_text()}")


def spawn(args: list[str], log: Path, env: dict[str, str] | None = None, *,
          program: str = sys.executable) -> Process:
    """`program` (default: this Python) with `args`, its output in `log`."""
    with log.open("wb") as sink:
        popen = subprocess.Popen([program, *args], stdout=sink, stderr=subprocess.STDOUT,
                                 env=env, stdin=subprocess.DEVNULL)
    scheme, port = _wait_for_port(popen, log)
    return Process(popen, port, log, scheme)


def spawn_fake(log: Path, *flags: str) -> Process:
    """The fake backend and OAuth server (behind TLS in h2 mode, see the docstring)."""
    tls = ["--tls-cert", _TLS_FILES[0], "--tls-key", _TLS_FILES[1]] if UPSTREAM_H2 else []
    return spawn(["-m", "chatmock.testing.fake_upstream", "--port", "0", *tls, *flags], log)


@pytest.fixture(scope="session", autouse=True)
def upstream_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """In h2 mode: the fake's certificate, and its CA trusted by every process."""
    if not UPSTREAM_H2:
        yield
        return
    import trustme

    tmp = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(tmp / "ca.pem"))
    leaf.cert_chain_pems[0].write_to_path(str(tmp / "cert.pem"))
    leaf.private_key_pem.write_to_path(str(tmp / "key.pem"))
    _TLS_FILES[:] = [str(tmp / "cert.pem"), str(tmp / "key.pem")]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SSL_CERT_FILE", str(tmp / "ca.pem"))
        yield


def start_chatmock(tmp: Path, upstream: Process | None, *flags: str,
                   credentials: bool = True, home: Path | None = None) -> Process:
    """A server logging into `tmp`; its auth home is `home` (default `tmp/home`)."""
    tmp.mkdir(parents=True, exist_ok=True)
    home = home or tmp / "home"
    if credentials:
        write_auth_file(home)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("CHATGPT_LOCAL_", "CODEX_"))}
    env.update(CHATGPT_LOCAL_HOME=str(home), HOME=str(tmp))
    upstream_url = f"{upstream.url}/backend-api/codex" if upstream else "http://127.0.0.1:9/x"
    return spawn(["-m", "chatmock", "serve", "--port", "0", "--upstream-url", upstream_url,
                  *flags], tmp / "chatmock.log", env)


def start_fake(tmp: Path) -> Process:
    """The fake backend and OAuth server, logging into `tmp` (behind TLS in h2 mode)."""
    return spawn_fake(tmp / "fake.log")


@pytest.fixture(scope="session")
def fake_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    process = start_fake(tmp_path_factory.mktemp("fake"))
    yield process
    if UPSTREAM_H2:  # chatmock did talk HTTP/2 to it (the tests' own reads are HTTP/1.1)
        with urllib.request.urlopen(f"{process.url}/__fake__/protocols") as reply:
            assert json.load(reply).get("2", 0) > 0, "chatmock never used HTTP/2 upstream"
    process.stop()


@pytest.fixture(scope="session")
def chatmock_server(tmp_path_factory: pytest.TempPathFactory,
                    fake_upstream: Process) -> Iterator[Process]:
    process = start_chatmock(tmp_path_factory.mktemp("chatmock"), fake_upstream)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def anthropic_client(chatmock_server: Process) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=chatmock_server.url, api_key="sk-ant-unused",
                             max_retries=0, timeout=20) as shared:
        yield shared


@pytest.fixture(scope="module")
def ollama_client(chatmock_server: Process) -> Iterator[ollama.Client]:
    shared = ollama.Client(host=chatmock_server.url, timeout=20)
    yield shared
    shared.close()  # type: ignore[no-untyped-call]


def recorded_requests(fake: Process) -> list[dict[str, Any]]:
    """What the fake backend received, oldest first."""
    with urllib.request.urlopen(f"{fake.url}/__fake__/requests") as reply:
        result: list[dict[str, Any]] = json.load(reply)
    return result


def requests_mentioning(fake: Process, marker: str) -> int:
    """How many recorded upstream bodies contain `marker` (a count that other tests,
    sharing the fake, cannot move)."""
    return sum(marker in json.dumps(record.get("body")) for record in recorded_requests(fake))


def last_upstream_body(fake: Process, marker: str) -> dict[str, Any]:
    """The newest recorded upstream body whose JSON text contains `marker`."""
    for record in reversed(recorded_requests(fake)):
        if marker in json.dumps(record.get("body")):
            body: dict[str, Any] = record["body"]
            return body
    raise AssertionError(f"no upstream request contained {marker!r}")


@contextmanager
def headless_chromium(log: Path, profile: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """Headless Chromium with its own profile and `args`, its output in `log`; its whole
    process group is stopped when the block ends."""
    assert CHROMIUM is not None
    with log.open("wb") as sink:
        browser = subprocess.Popen([
            CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-default-apps", f"--user-data-dir={profile}", *args],
            stdin=subprocess.DEVNULL, stdout=sink, stderr=sink, start_new_session=True)
    try:
        yield browser
    finally:
        os.killpg(browser.pid, signal.SIGTERM)
        try:
            browser.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(browser.pid, signal.SIGKILL)
            browser.wait()
