"""Token refresh through real server processes against the fake OAuth server and backend."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from chatmock.testing.credentials import auth_document, make_jwt, write_auth_document

from .conftest import Process, recorded_requests, spawn_fake, start_chatmock
from .test_login import control, redirect_location

CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[Process]:
    """A fresh fake per test: refresh counters and token families start at zero."""
    process = spawn_fake(tmp_path / "fake.log", "--check-tokens")
    yield process
    process.stop()


def issue_tokens(fake: Process) -> dict[str, Any]:
    """Sign in against the fake by hand (PKCE), as a login would."""
    verifier = "v" * 64
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    redirect = "http://localhost:1/auth/callback"
    query = urlencode({"response_type": "code", "client_id": CLIENT_ID,
                       "redirect_uri": redirect, "scope": "openid profile email offline_access",
                       "code_challenge": challenge.rstrip(b"=").decode(),
                       "code_challenge_method": "S256", "state": "s"})
    location = redirect_location(f"{fake.url}/oauth/authorize?{query}")
    code = parse_qs(urlsplit(location).query)["code"][0]
    form = urlencode({"grant_type": "authorization_code", "code": code, "client_id": CLIENT_ID,
                      "redirect_uri": redirect, "code_verifier": verifier}).encode()
    with urllib.request.urlopen(f"{fake.url}/oauth/token", data=form) as reply:
        tokens: dict[str, Any] = json.load(reply)
    return tokens


def signed_in(tmp: Path, fake: Process, *, expired: bool) -> Path:
    """auth.json with real tokens from the fake; `expired` swaps in a lapsed access token."""
    document = auth_document(issue_tokens(fake))
    document["OPENAI_API_KEY"] = "sk-keep-this"
    document["unknown_key"] = {"kept": True}
    if expired:
        document["tokens"]["access_token"] = make_jwt({"exp": int(time.time()) - 60})
    return write_auth_document(tmp / "home", document)


def server(tmp: Path, fake: Process, name: str = "chatmock", *flags: str) -> Process:
    return start_chatmock(tmp / name, fake, "--issuer", fake.url, *flags, credentials=False,
                          home=tmp / "home")


def chat(server: Process, text: str = "hello") -> tuple[int, dict[str, Any]]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    body = json.dumps({"model": "gpt-5.4", "messages": [{"role": "user", "content": text}]})
    connection.request("POST", "/v1/chat/completions", body,
                       {"content-type": "application/json"})
    response = connection.getresponse()
    result = response.status, json.loads(response.read())
    connection.close()
    return result


def oauth_state(fake: Process) -> dict[str, Any]:
    state = control(fake, "state")
    assert isinstance(state, dict)
    return state


def test_expiring_token_is_refreshed_before_use(tmp_path: Path, fake: Process) -> None:
    path = signed_in(tmp_path, fake, expired=True)
    stale = json.loads(path.read_text())["tokens"]["access_token"]
    chatmock = server(tmp_path, fake)
    try:
        assert chat(chatmock)[0] == 200
    finally:
        chatmock.stop()
    assert oauth_state(fake)["refresh_count"] == 1
    seen = [r["headers"].get("authorization", "") for r in recorded_requests(fake)]
    assert seen and all(stale not in header for header in seen)
    saved = json.loads(path.read_text())
    assert saved["tokens"]["access_token"] != stale
    assert saved["OPENAI_API_KEY"] == "sk-keep-this" and saved["unknown_key"] == {"kept": True}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_rejected_token_is_refreshed_once_and_the_request_retried(
        tmp_path: Path, fake: Process) -> None:
    signed_in(tmp_path, fake, expired=False)
    chatmock = server(tmp_path, fake)
    try:
        assert chat(chatmock)[0] == 200
        assert oauth_state(fake)["refresh_count"] == 0
        control(fake, "expire_access_tokens", {})
        status, body = chat(chatmock)
        assert status == 200, body
    finally:
        chatmock.stop()
    assert oauth_state(fake)["refresh_count"] == 1


def test_a_hundred_concurrent_requests_cause_one_refresh(tmp_path: Path,
                                                          fake: Process) -> None:
    signed_in(tmp_path, fake, expired=True)
    chatmock = server(tmp_path, fake)
    try:
        with ThreadPoolExecutor(max_workers=100) as pool:
            statuses = list(pool.map(lambda n: chat(chatmock, f"n{n}")[0], range(100)))
    finally:
        chatmock.stop()
    assert statuses == [200] * 100
    assert oauth_state(fake)["refresh_count"] == 1


def test_two_processes_sharing_one_auth_file_never_reuse_a_refresh_token(
        tmp_path: Path, fake: Process) -> None:
    signed_in(tmp_path, fake, expired=True)
    first, second = server(tmp_path, fake, "one"), server(tmp_path, fake, "two")
    try:
        for round_number in (1, 2):
            with ThreadPoolExecutor(max_workers=20) as pool:
                statuses = list(pool.map(lambda n: chat((first, second)[n % 2])[0], range(20)))
            assert statuses == [200] * 20
            state = oauth_state(fake)
            assert state["refresh_count"] == round_number
            assert all(family["status"] == "active" for family in state["families"])
            control(fake, "expire_access_tokens", {})
    finally:
        first.stop()
        second.stop()


def test_revoked_sign_in_asks_for_a_new_login(tmp_path: Path, fake: Process) -> None:
    signed_in(tmp_path, fake, expired=True)
    control(fake, "next_refresh_error", {"error": "revoked"})
    # No model discovery: its start-up fetch would be the one to meet the revoked token.
    chatmock = server(tmp_path, fake, "chatmock", "--no-model-sync")
    try:
        status, body = chat(chatmock)
    finally:
        chatmock.stop()
    assert status == 401
    assert "chatmock login" in body["error"]["message"]
    assert body["error"]["type"] == "authentication_error"


def test_info_shows_the_account_and_usage_without_tokens(tmp_path: Path,
                                                         fake: Process) -> None:
    path = signed_in(tmp_path, fake, expired=False)
    chatmock = server(tmp_path, fake)
    try:
        assert chat(chatmock)[0] == 200
    finally:
        chatmock.stop()
    env = {"CHATGPT_LOCAL_HOME": str(tmp_path / "home"), "HOME": str(tmp_path),
           "PATH": "/usr/bin:/bin"}
    as_json = subprocess.run([sys.executable, "-m", "chatmock", "info", "--json"], env=env,
                             capture_output=True, text=True, timeout=30)
    assert as_json.returncode == 0, as_json.stderr
    tokens = json.loads(path.read_text())["tokens"]
    for secret in (tokens["access_token"], tokens["refresh_token"], tokens["id_token"]):
        assert secret not in as_json.stdout
    document = json.loads(as_json.stdout)
    assert document["account"]["signed_in"] is True
    assert document["account"]["login"] == "user@example.com"
    assert document["account"]["plan"] == "Plus"
    assert document["usage_limits"]["windows"][0]["key"] == "primary"
    as_text = subprocess.run([sys.executable, "-m", "chatmock", "info"], env=env,
                             capture_output=True, text=True, timeout=30)
    assert "Plus" in as_text.stdout and "5 hour limit" in as_text.stdout
    assert tokens["access_token"] not in as_text.stdout
