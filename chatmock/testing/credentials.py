"""Fake ChatGPT credentials for tests and the bench: JWTs with the claims chatmock reads."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt

from chatmock.auth.tokens import AUTH_CLAIM

TEST_ACCOUNT_ID = "7c0e2f0a-1111-2222-3333-444455556666"


def make_jwt(claims: dict[str, Any]) -> str:
    """An HS256 token signed with a throwaway key (chatmock never checks signatures)."""
    return jwt.encode(claims, "fake-signing-key-for-tests-only-0123456789", algorithm="HS256")


def fake_tokens(account_id: str = TEST_ACCOUNT_ID, email: str = "user@example.com",
                plan: str = "plus", expires_in: float = 3600.0) -> dict[str, str]:
    exp = int(time.time() + expires_in)
    auth = {"chatgpt_account_id": account_id, "chatgpt_plan_type": plan}
    return {
        "id_token": make_jwt({"email": email, "exp": exp, AUTH_CLAIM: auth}),
        "access_token": make_jwt({"exp": exp, AUTH_CLAIM: auth}),
        "refresh_token": "rt_fake_refresh_token",
        "account_id": account_id,
    }


def write_auth_file(home: Path, **kwargs: Any) -> Path:
    """Write `<home>/auth.json` in the Codex CLI layout; returns its path."""
    document = {"OPENAI_API_KEY": None, "tokens": fake_tokens(**kwargs),
                "last_refresh": "2026-11-21T00:00:00.000000Z"}
    return write_auth_document(home, document)


def write_account_file(home: Path, name: str, **kwargs: Any) -> Path:
    """Write a pool account, `<home>/accounts/<name>.json` (as `login --account`)."""
    document = {"OPENAI_API_KEY": None, "tokens": fake_tokens(**kwargs),
                "last_refresh": "2026-11-21T00:00:00.000000Z"}
    path = home / "accounts" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2))
    path.chmod(0o600)
    return path


def auth_document(token_response: dict[str, Any],
                  last_refresh: str = "2026-11-21T00:00:00.000000Z") -> dict[str, Any]:
    """An auth.json document (Codex CLI layout) holding the tokens of an OAuth token
    response such as `FakeOAuth` issues; `account_id` comes from the id_token."""
    id_token = str(token_response.get("id_token", ""))
    claims = jwt.decode(id_token, options={"verify_signature": False}) if id_token else {}
    auth = claims.get(AUTH_CLAIM)
    account_id = auth.get("chatgpt_account_id", "") if isinstance(auth, dict) else ""
    tokens = {"id_token": id_token,
              "access_token": str(token_response.get("access_token", "")),
              "refresh_token": str(token_response.get("refresh_token", "")),
              "account_id": str(account_id)}
    return {"OPENAI_API_KEY": None, "tokens": tokens, "last_refresh": last_refresh}


def write_auth_document(home: Path, document: dict[str, Any]) -> Path:
    """Write `document` as `<home>/auth.json` (2-space indent, mode 0600); returns its path."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "auth.json"
    path.write_text(json.dumps(document, indent=2))
    path.chmod(0o600)
    return path


def codex_headers(token: str = "x", account_id: str = "acc") -> dict[bytes, bytes]:
    """The headers a Codex client sends with every `/responses` request (what the fake
    backend requires), for tests and the bench that call the fake directly."""
    return {b"authorization": f"Bearer {token}".encode(),
            b"chatgpt-account-id": account_id.encode(),
            b"originator": b"codex_cli_rs",
            b"user-agent": b"codex_cli_rs/0.169.0 (Linux 6.8.0; x86_64) chatmock-tests",
            b"session-id": b"00000000-0000-4000-8000-00000000feed"}
