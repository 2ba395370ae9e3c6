"""The start banner: the base URL of each API, the status page, the account (never a token)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chatmock.auth.tokens import find_auth
from chatmock.banner import account_banner, base_url, start_banner
from chatmock.testing.credentials import write_auth_file


@pytest.mark.parametrize(("host", "expected"), [
    ("127.0.0.1", "http://127.0.0.1:8000"), ("0.0.0.0", "http://127.0.0.1:8000"),
    ("::", "http://[::1]:8000"), ("::1", "http://[::1]:8000"),
    ("192.168.1.5", "http://192.168.1.5:8000")])
def test_base_urls_are_ones_a_browser_can_open(host: str, expected: str) -> None:
    assert base_url(host, 8000) == expected


def test_the_banner_lists_each_api_and_keeps_its_first_line() -> None:
    text, fields = start_banner("1.2.3", "0.0.0.0", 8000, "https://chatgpt.com/backend-api/codex")
    first, *rest = text.splitlines()
    assert first == ("chatmock 1.2.3 listening on http://0.0.0.0:8000 "
                     "(upstream https://chatgpt.com/backend-api/codex)")
    assert re.search(r"listening on http://[^:]+:(\d+)", first)  # what scripts read
    assert rest == ["  OpenAI base URL     http://127.0.0.1:8000/v1",
                    "  Anthropic base URL  http://127.0.0.1:8000",
                    "  Ollama base URL     http://127.0.0.1:8000",
                    "  Status page         http://127.0.0.1:8000/ (open it in a browser)"]
    assert fields["openai_base_url"] == "http://127.0.0.1:8000/v1"
    assert fields["status_page"] == "http://127.0.0.1:8000/" and fields["port"] == 8000


def test_the_account_line_names_the_login_and_plan_never_a_token(tmp_path: Path) -> None:
    write_auth_file(tmp_path, email="ada@example.com", plan="pro")
    credentials, _ = find_auth({"CHATGPT_LOCAL_HOME": str(tmp_path)})
    assert credentials is not None
    text, fields = account_banner(credentials)
    assert text == f"signed in as ada@example.com (Pro plan), credentials from {credentials.path}"
    assert fields == {"event": "account", "email": "ada@example.com", "plan": "Pro",
                      "auth_file": str(credentials.path)}
    for secret in (credentials.access_token, credentials.id_token, credentials.refresh_token):
        assert secret not in text and secret not in str(fields)
