"""`chatmock login --account`, `chatmock accounts` and `chatmock logout` on real processes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from .conftest import Process
from .test_login import Login, oauth_fake  # noqa: F401 (the fixture)


def chatmock(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHATGPT_LOCAL_", "CODEX_",
                                                                   "CHATMOCK_"))}
    env.update(CHATGPT_LOCAL_HOME=str(home), HOME=str(home.parent))
    return subprocess.run([sys.executable, "-m", "chatmock", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def test_login_with_an_account_name_adds_an_account_file(tmp_path: Path,
                                                         oauth_fake: Process) -> None:  # noqa: F811
    login = Login(tmp_path, oauth_fake, "--headless", "--account", "work")
    code, out, err = login.finish(timeout=30)
    assert code == 0, err
    path = login.home / "accounts" / "work.json"
    assert f"Tokens saved to {path}" in out
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["tokens"]["refresh_token"]
    assert not (login.home / "auth.json").exists()


def test_login_with_account_but_no_name_names_it_by_email_then_list_and_logout(
        tmp_path: Path, oauth_fake: Process) -> None:  # noqa: F811
    login = Login(tmp_path, oauth_fake, "--headless", "--account")
    code, _, err = login.finish(timeout=30)
    assert code == 0, err
    assert [p.name for p in (login.home / "accounts").iterdir()] == ["user@example.com.json"]
    listed = chatmock(login.home, "accounts", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)["accounts"]
    assert [(r["name"], r["email"], r["plan"], r["state"]) for r in rows] == [
        ("user@example.com", "user@example.com", "Plus", "ok")]
    assert "access_token" not in listed.stdout and "eyJ" not in listed.stdout
    text = chatmock(login.home, "accounts")
    assert text.stdout.startswith("user@example.com") and " ok" in text.stdout
    gone = chatmock(login.home, "logout", "user@example.com")
    assert gone.returncode == 0, gone.stderr
    assert not (login.home / "accounts" / "user@example.com.json").exists()
    again = chatmock(login.home, "logout", "user@example.com")
    assert again.returncode == 1 and "no account named" in again.stderr


def test_a_name_that_cannot_be_a_file_is_refused(tmp_path: Path) -> None:
    result = chatmock(tmp_path / "home", "login", "--account", "../evil", "--headless")
    assert result.returncode == 1 and "cannot name an account" in result.stderr
