"""`chatmock login` against the fake OAuth server: browser, paste, device code, errors."""

from __future__ import annotations

import http.client
import json
import os
import socket
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .conftest import Process, spawn_fake


@pytest.fixture(scope="module")
def oauth_fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    tmp = tmp_path_factory.mktemp("oauth")
    process = spawn_fake(tmp / "fake.log", "--check-tokens")
    yield process
    process.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def control(fake: Process, name: str, body: object | None = None) -> object:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{fake.url}/__fake__/oauth/{name}", data=data,
                                     method="GET" if data is None else "POST",
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request) as reply:
        return json.load(reply)


class Login:
    """A running `chatmock login`, with its output read line by line."""

    def __init__(self, tmp: Path, fake: Process, *flags: str, port: int | None = None) -> None:
        self.home = tmp / "home"
        self.port = port or free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CHATGPT_LOCAL_",
                                                                       "CODEX_"))}
        env.update(CHATGPT_LOCAL_HOME=str(self.home), HOME=str(tmp),
                   CHATGPT_LOCAL_ISSUER=fake.url, CHATGPT_LOCAL_LOGIN_PORT=str(self.port))
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "chatmock", "login", "--no-browser", *flags], env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines: list[str] = []

    def wait_for(self, needle: str) -> str:
        assert self.popen.stdout is not None
        for raw in self.popen.stdout:
            line = raw.decode().rstrip("\n")
            self.lines.append(line)
            if needle in line:
                return line
        raise AssertionError(f"{needle!r} never printed; got {self.lines}")

    def authorize_url(self) -> str:
        return self.wait_for("/oauth/authorize?").strip()

    def paste(self, text: str) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(text.encode() + b"\n")
        self.popen.stdin.flush()

    def finish(self, timeout: float = 20) -> tuple[int, str, str]:
        out, err = self.popen.communicate(timeout=timeout)
        return self.popen.returncode, "\n".join(self.lines) + out.decode(), err.decode()

    def auth(self) -> dict[str, object]:
        document: dict[str, object] = json.loads((self.home / "auth.json").read_text())
        return document


def redirect_location(url: str) -> str:
    """Follow the authorize URL by hand: the 302's Location, not the page behind it."""
    parts = urlsplit(url)
    connect = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    assert parts.hostname
    connection = connect(parts.hostname, parts.port)
    connection.request("GET", f"{parts.path}?{parts.query}")
    response = connection.getresponse()
    assert response.status == 302, response.read()
    location = response.getheader("location")
    connection.close()
    assert location
    return location


def assert_saved(login: Login) -> None:
    document = login.auth()
    tokens = document["tokens"]
    assert isinstance(tokens, dict)
    assert tokens["access_token"] and tokens["refresh_token"] and tokens["id_token"]
    assert tokens["account_id"]
    path = login.home / "auth.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(login.home.stat().st_mode) == 0o700


def test_browser_flow_follows_the_redirect_to_the_callback(tmp_path: Path,
                                                            oauth_fake: Process) -> None:
    login = Login(tmp_path, oauth_fake)
    url = login.authorize_url()
    with urllib.request.urlopen(url) as page:  # follows the 302 to our callback server
        assert page.status == 200
        assert b"Login successful" in page.read()
    code, out, err = login.finish()
    assert code == 0, err
    assert "Login successful" in out
    assert_saved(login)


def test_paste_flow_reads_the_redirect_url_from_stdin(tmp_path: Path,
                                                      oauth_fake: Process) -> None:
    login = Login(tmp_path, oauth_fake)
    location = redirect_location(login.authorize_url())
    login.paste("not a url")
    login.paste(location)
    code, _, err = login.finish()
    assert code == 0, err
    assert_saved(login)


def test_device_code_flow(tmp_path: Path, oauth_fake: Process) -> None:
    login = Login(tmp_path, oauth_fake, "--headless")
    assert login.wait_for("Code: ").startswith("Code: ")
    code, out, err = login.finish(timeout=30)
    assert code == 0, err
    assert f"{oauth_fake.url}/codex/device" in out
    assert_saved(login)


def test_existing_keys_survive_a_new_login(tmp_path: Path, oauth_fake: Process) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "auth.json").write_text(json.dumps({"OPENAI_API_KEY": "sk-keep", "extra": [1]}))
    login = Login(tmp_path, oauth_fake)
    urllib.request.urlopen(login.authorize_url()).close()
    assert login.finish()[0] == 0
    assert login.auth()["OPENAI_API_KEY"] == "sk-keep"
    assert login.auth()["extra"] == [1]


def assert_clean_failure(result: tuple[int, str, str], code: int, *fragments: str) -> None:
    exit_code, _, err = result
    assert exit_code == code, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


def test_consent_denied(tmp_path: Path, oauth_fake: Process) -> None:
    control(oauth_fake, "next_authorize_error", {"error": "access_denied"})
    login = Login(tmp_path, oauth_fake)
    with pytest.raises(urllib.error.HTTPError) as page:
        urllib.request.urlopen(login.authorize_url())
    assert page.value.code == 400
    page.value.close()
    assert_clean_failure(login.finish(), 1, "not completed", "access_denied")
    assert not (login.home / "auth.json").exists()


def test_a_pasted_redirect_of_another_sign_in_is_refused_and_the_login_waits(
        tmp_path: Path, oauth_fake: Process) -> None:
    login = Login(tmp_path, oauth_fake)
    location = redirect_location(login.authorize_url())
    login.paste(location.replace("state=", "state=forged"))
    login.wait_for("belongs to another sign-in")
    login.paste(location)
    code, _, err = login.finish()
    assert code == 0, err
    assert_saved(login)


def callback_get(login: Login, target: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", login.port, timeout=10)
    try:
        connection.request("GET", target)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def test_stray_requests_to_the_callback_neither_complete_nor_abort_the_login(
        tmp_path: Path, oauth_fake: Process) -> None:
    login = Login(tmp_path, oauth_fake)
    location = redirect_location(login.authorize_url())
    state = location.split("state=")[1].split("&")[0]
    strays = [("/favicon.ico", 404), ("/", 404), ("/auth/callback", 400),
              ("/auth/callback?code=ac_stolen", 400),
              ("/auth/callback?code=ac_stolen&state=forged", 400),
              ("/auth/callback?error=access_denied", 400),
              ("/auth/callback?error=access_denied&state=" + "0" * len(state), 400),
              ("/auth/callback?code=x&state=%C3%A9", 400)]
    for target, status in strays:
        got, text = callback_get(login, target)
        assert got == status, (target, text)
    assert login.popen.poll() is None, "a stray request ended the login"
    got, text = callback_get(login, urlsplit(location)._replace(scheme="", netloc="").geturl())
    assert got == 200 and "Login successful" in text
    code, _, err = login.finish()
    assert code == 0, err
    assert_saved(login)


def test_a_denial_with_the_right_state_still_fails_the_login(tmp_path: Path,
                                                            oauth_fake: Process) -> None:
    login = Login(tmp_path, oauth_fake)
    state = redirect_location(login.authorize_url()).split("state=")[1].split("&")[0]
    got, text = callback_get(login, f"/auth/callback?error=access_denied"
                                    f"&error_description=%3Cb%3Eno%3C%2Fb%3E&state={state}")
    assert got == 400 and "&lt;b&gt;no&lt;/b&gt;" in text
    assert_clean_failure(login.finish(), 1, "not completed", "<b>no</b>")


def test_token_endpoint_error(tmp_path: Path, oauth_fake: Process) -> None:
    login = Login(tmp_path, oauth_fake)
    location = redirect_location(login.authorize_url())
    state = location.split("state=")[1]
    login.paste(f"http://localhost:{login.port}/auth/callback?code=bogus&state={state}")
    assert_clean_failure(login.finish(), 1, "token exchange failed (HTTP 400)")


def test_callback_port_in_use(tmp_path: Path, oauth_fake: Process) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        login = Login(tmp_path, oauth_fake, port=taken.getsockname()[1])
        assert_clean_failure(login.finish(), 13, "cannot listen", "another login")


def test_timeout(tmp_path: Path, oauth_fake: Process) -> None:
    login = Login(tmp_path, oauth_fake, "--timeout", "1")
    assert_clean_failure(login.finish(), 1, "timed out")
