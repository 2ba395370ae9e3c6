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
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

AUTH_CLAIM = "https://api.openai.com/auth"
REFRESH_MARGIN_SECONDS = 300.0
STALE_AFTER_SECONDS = 55 * 60.0


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
    expires_at: float | None = None
    last_refresh: float | None = None

    @property
    def usable(self) -> bool:
        return bool(self.access_token and self.account_id)

    def refresh_due(self, now: float) -> bool:
        """auth.md §6.1: expiring within the margin, or old when the expiry is unknown."""
        if not self.refresh_token:
            return False
        if not self.access_token:
            return True
        if self.expires_at is not None:
            return self.expires_at <= now + REFRESH_MARGIN_SECONDS
        return self.last_refresh is not None and now - self.last_refresh >= STALE_AFTER_SECONDS

    def expired(self, now: float) -> bool:
        return not self.access_token or (self.expires_at is not None and self.expires_at <= now)


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

    id_token, access_token = text("id_token"), text("access_token")
    account_id = text("account_id") or account_id_from(id_token)
    expiry = decode_claims(access_token).get("exp")
    return Credentials(path, access_token, account_id, id_token, text("refresh_token"), document,
                       float(expiry) if isinstance(expiry, int | float) else None,
                       _timestamp(document.get("last_refresh")))


def _timestamp(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def merge_tokens(document: Mapping[str, Any], id_token: str, access_token: str,
                 refresh_token: str, now: datetime | None = None) -> dict[str, Any]:
    """`document` with new tokens, keeping every key it had (e.g. OPENAI_API_KEY)."""
    merged = dict(document)
    merged.setdefault("OPENAI_API_KEY", None)
    tokens = dict(merged.get("tokens") or {})
    old_refresh = tokens.get("refresh_token")
    tokens.update(id_token=id_token, access_token=access_token,
                  refresh_token=refresh_token or old_refresh or "",
                  account_id=account_id_from(id_token) or tokens.get("account_id") or "")
    merged["tokens"] = tokens
    stamp = (now or datetime.now(UTC)).astimezone(UTC)
    merged["last_refresh"] = stamp.isoformat().replace("+00:00", "Z")
    return merged


def account_id_from(id_token: str) -> str:
    auth = decode_claims(id_token).get(AUTH_CLAIM)
    value = auth.get("chatgpt_account_id") if isinstance(auth, dict) else None
    return value if isinstance(value, str) else ""


def find_auth(env: Mapping[str, str]) -> tuple[Credentials | None, list[str]]:
    """The first auth.json of the search order that exists and parses, and the
    problems of any candidate that exists but does not (each naming its file)."""
    return find_auth_in(auth_search_paths(env))


def find_auth_in(paths: list[Path]) -> tuple[Credentials | None, list[str]]:
    """The first of `paths` that exists and parses, and the problems of the others."""
    problems: list[str] = []
    for path in paths:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            continue
        except OSError as exc:
            problems.append(f"{path} cannot be read ({exc.strerror})")
            continue
        credentials, problem = _parse_file(path, raw)
        if credentials is not None:
            return credentials, problems
        problems.append(problem)
    return None, problems


def find_auth_path(paths: list[Path]) -> Path | None:
    """The path `find_auth_in(paths)` would take its credentials from, found without
    decoding the tokens (which imports pyjwt: see the module docstring)."""
    for path in paths:
        try:
            raw = path.read_bytes()
        except OSError:
            continue
        document, _ = _read_document(path, raw)
        if document is not None:
            return path
    return None


def _parse_file(path: Path, raw: bytes) -> tuple[Credentials | None, str]:
    document, problem = _read_document(path, raw)
    if document is None:
        return None, problem
    return parse_auth(path, document), ""


def _read_document(path: Path, raw: bytes) -> tuple[dict[str, Any] | None, str]:
    """The auth file's document if `parse_auth` finds credentials in it with an access
    or a refresh token, else None and why not."""
    try:
        document = json.loads(raw)
    except ValueError as exc:
        return None, f"{path} is not valid JSON ({exc})"
    tokens = document.get("tokens") if isinstance(document, dict) else None
    if not isinstance(tokens, dict):
        return None, f"{path} holds no tokens (expected a \"tokens\" object)"
    if not any(isinstance(tokens.get(key), str) and tokens[key]
               for key in ("access_token", "refresh_token")):
        return None, f"{path} holds neither an access token nor a refresh token"
    return document, ""


def read_auth_file(env: Mapping[str, str]) -> Credentials | None:
    """The first auth.json of the search order that exists and parses."""
    return find_auth(env)[0]


def read_credentials(path: Path) -> Credentials | None:
    """Credentials of one given file (None if missing or unusable)."""
    try:
        return _parse_file(path, path.read_bytes())[0]
    except OSError:
        return None

