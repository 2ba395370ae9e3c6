"""auth.json: where it lives, what it holds, and the claims inside its tokens.

Layout and search order follow the Codex CLI and the reference proxies, so a
user already signed in with any of them is signed in here too:

* written to `$CHATGPT_LOCAL_HOME`, else `$CODEX_HOME`, else `~/.chatgpt-local`;
* read from the first of `$CHATGPT_LOCAL_HOME/auth.json`,
  `$CODEX_HOME/auth.json`, `~/.chatgpt-local/auth.json`,
  `~/.codex/auth.json` that exists and parses.

JWT claims are read with pyjwt without verifying signatures: the tokens come
from our own file and are checked by the backend anyway; we only need the
account id, the expiry and display data. pyjwt (with cryptography behind it)
is imported on first use so that it does not slow the server's start.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

AUTH_CLAIM = "https://api.openai.com/auth"


def home_dir(env: Mapping[str, str]) -> Path:
    """Where chatmock writes its files."""
    for name in ("CHATGPT_LOCAL_HOME", "CODEX_HOME"):
        if env.get(name):
            return Path(env[name]).expanduser()
    return Path.home() / ".chatgpt-local"


def auth_search_paths(env: Mapping[str, str]) -> list[Path]:
    paths = [Path(env[name]).expanduser() / "auth.json"
             for name in ("CHATGPT_LOCAL_HOME", "CODEX_HOME") if env.get(name)]
    paths += [Path.home() / ".chatgpt-local" / "auth.json", Path.home() / ".codex" / "auth.json"]
    return paths


def decode_claims(token: str) -> dict[str, Any]:
    """Claims of a JWT without signature checks; {} for anything that is not one."""
    if not token or token.count(".") != 2:
        return {}
    import jwt  # deferred: see the module docstring

    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return claims if isinstance(claims, dict) else {}


@dataclass(frozen=True, slots=True)
class Credentials:
    """The tokens of one auth.json and what they say."""

    path: Path
    access_token: str = field(repr=False)
    account_id: str
    id_token: str = field(default="", repr=False)
    refresh_token: str = field(default="", repr=False)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def usable(self) -> bool:
        return bool(self.access_token and self.account_id)


def parse_auth(path: Path, document: Any) -> Credentials | None:
    """Credentials from a parsed auth.json, or None if it holds no tokens."""
    if not isinstance(document, dict):
        return None
    tokens = document.get("tokens")
    if not isinstance(tokens, dict):
        return None

    def text(key: str) -> str:
        value = tokens.get(key)
        return value if isinstance(value, str) else ""

    id_token = text("id_token")
    account_id = text("account_id") or account_id_from(id_token)
    return Credentials(path, text("access_token"), account_id, id_token,
                       text("refresh_token"), document)


def account_id_from(id_token: str) -> str:
    auth = decode_claims(id_token).get(AUTH_CLAIM)
    value = auth.get("chatgpt_account_id") if isinstance(auth, dict) else None
    return value if isinstance(value, str) else ""


def read_auth_file(env: Mapping[str, str]) -> Credentials | None:
    """The first auth.json of the search order that exists and parses."""
    for path in auth_search_paths(env):
        try:
            document = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue
        credentials = parse_auth(path, document)
        if credentials is not None:
            return credentials
    return None


class CredentialStore:
    """Hands out current credentials, re-reading auth.json only when it changed.

    Every candidate path is checked, not just the cached file, since a new login
    may write an auth.json earlier in the search order; the check itself (a few
    `stat` calls) runs at most once per `recheck_seconds`, not per request.
    """

    def __init__(self, env: Mapping[str, str] | None = None,
                 recheck_seconds: float = 1.0) -> None:
        self._env = dict(os.environ if env is None else env)
        self._cached: Credentials | None = None
        self._stamps: list[tuple[int, int] | None] | None = None
        self._recheck = recheck_seconds
        self._checked_at = -recheck_seconds

    def current(self) -> Credentials | None:
        """The credentials (None when signed out), from a cache checked once per interval."""
        now = time.monotonic()
        if now - self._checked_at < self._recheck:
            return self._cached
        self._checked_at = now
        stamps = [_stamp(path) for path in auth_search_paths(self._env)]
        if stamps == self._stamps:
            return self._cached
        found = read_auth_file(self._env)
        self._cached = found
        self._stamps = stamps
        return found


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size)
