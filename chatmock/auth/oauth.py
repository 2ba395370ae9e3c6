"""OpenAI's OAuth for the Codex client: PKCE, the authorize URL, the token endpoint.

Facts from the spec (auth.md): the public Codex client id, scopes
`openid profile email offline_access`, the fixed redirect
`http://localhost:1455/auth/callback`, form-encoded token requests, and the
device-code endpoints under `/api/accounts/deviceauth/`. Every failure is an
`OAuthError`; `needs_login` tells whether only a new sign-in can help (the
refresh token was reused, invalidated or revoked, or the workspace is gone).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from chatmock.errors import ChatmockError, UpstreamError, extract_message
from chatmock.net.client import HTTPClient

SCOPES = "openid profile email offline_access"
CALLBACK_PATH = "/auth/callback"
DEFAULT_CALLBACK_PORT = 1455
MAX_BODY = 1024 * 1024
# Error codes after which refreshing cannot work any more: only a new login can.
RELOGIN_CODES = ("refresh_token_reused", "refresh_token_invalidated", "refresh_token_expired",
                 "invalidated", "revoked", "deactivated_workspace", "invalid_grant")


class OAuthError(ChatmockError):
    def __init__(self, message: str, *, needs_login: bool = False, status: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.needs_login = needs_login
        self.status = status


@dataclass(frozen=True, slots=True)
class TokenSet:
    id_token: str
    access_token: str
    refresh_token: str = ""


@dataclass(frozen=True, slots=True)
class DeviceCode:
    device_auth_id: str
    user_code: str
    interval: float
    verification_url: str


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge)."""
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def redirect_uri(port: int = DEFAULT_CALLBACK_PORT) -> str:
    # Always `localhost`, whatever the listener binds: it must match the client's registration.
    return f"http://localhost:{port}{CALLBACK_PATH}"


def authorize_url(issuer: str, client_id: str, redirect: str, challenge: str, state: str) -> str:
    query = urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect,
        "scope": SCOPES, "code_challenge": challenge, "code_challenge_method": "S256",
        "id_token_add_organizations": "true", "codex_cli_simplified_flow": "true",
        "state": state, "originator": "codex_cli_rs"})
    return f"{issuer.rstrip('/')}/oauth/authorize?{query}"


class OAuthClient:
    """Calls the issuer's token and device endpoints."""

    def __init__(self, issuer: str, client_id: str, http: HTTPClient) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.http = http

    async def exchange_code(self, code: str, verifier: str, redirect: str) -> TokenSet:
        body = await self._post("/oauth/token", form={
            "grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
            "client_id": self.client_id, "code_verifier": verifier}, action="token exchange")
        return _token_set(body, "token exchange")

    async def refresh(self, refresh_token: str) -> TokenSet:
        body = await self._post("/oauth/token", form={
            "grant_type": "refresh_token", "refresh_token": refresh_token,
            "client_id": self.client_id}, action="token refresh")
        return _token_set(body, "token refresh")

    async def start_device_login(self) -> DeviceCode:
        body = await self._post("/api/accounts/deviceauth/usercode",
                                json_body={"client_id": self.client_id}, action="device login")
        device_id = body.get("device_auth_id")
        user_code = body.get("user_code") or body.get("usercode")
        if not isinstance(device_id, str) or not isinstance(user_code, str):
            raise OAuthError("device login: the issuer sent no device code")
        interval = body.get("interval")
        seconds = max(1.0, float(interval)) if isinstance(interval, int | float) else 5.0
        return DeviceCode(device_id, user_code, seconds, f"{self.issuer}/codex/device")

    async def poll_device_login(self, device: DeviceCode) -> tuple[str, str] | None:
        """(authorization_code, code_verifier) once approved; None while pending."""
        payload = {"device_auth_id": device.device_auth_id, "user_code": device.user_code}
        status, body = await self._send("/api/accounts/deviceauth/token", json_body=payload)
        if status in (403, 404):
            return None
        document = _check(status, body, "device login")
        code, verifier = document.get("authorization_code"), document.get("code_verifier")
        if not isinstance(code, str) or not isinstance(verifier, str):
            raise OAuthError("device login: the issuer's answer lacks the authorization code")
        return code, verifier

    async def _post(self, path: str, *, action: str, form: dict[str, str] | None = None,
                    json_body: dict[str, Any] | None = None) -> dict[str, Any]:
        status, body = await self._send(path, form=form, json_body=json_body)
        return _check(status, body, action)

    async def _send(self, path: str, *, form: dict[str, str] | None = None,
                    json_body: dict[str, Any] | None = None) -> tuple[int, bytes]:
        if form is not None:
            data, kind = urlencode(form).encode(), b"application/x-www-form-urlencoded"
        else:
            data, kind = json.dumps(json_body).encode(), b"application/json"
        headers = [(b"content-type", kind), (b"accept", b"application/json"),
                   (b"user-agent", b"chatmock-login")]
        try:
            async with self.http.request("POST", self.issuer + path, headers, data) as response:
                return response.status, await response.read_all(MAX_BODY)
        except UpstreamError as exc:
            raise OAuthError(f"cannot reach {self.issuer}: {exc.message}") from None


def _check(status: int, body: bytes, action: str) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if status >= 400:
        text = body.decode("utf-8", "replace")
        message = extract_message(document) or text.strip()[:200] or "no details"
        needs_login = any(code in text for code in RELOGIN_CODES)
        raise OAuthError(f"{action} failed (HTTP {status}): {message}",
                         needs_login=needs_login, status=status)
    if not isinstance(document, dict):
        raise OAuthError(f"{action}: the issuer answered with something that is not JSON")
    return document


def _token_set(body: dict[str, Any], action: str) -> TokenSet:
    id_token, access_token = body.get("id_token"), body.get("access_token")
    if not isinstance(id_token, str) or not isinstance(access_token, str):
        raise OAuthError(f"{action}: the issuer's answer lacks id_token or access_token")
    refresh_token = body.get("refresh_token")
    return TokenSet(id_token, access_token, refresh_token if isinstance(refresh_token, str)
                    else "")
