"""Sans-I/O fake of OpenAI's OAuth server (auth.openai.com) for the Codex CLI client.

``FakeOAuth.handle`` takes one parsed HTTP request and returns a ``FakeReply``
(auth.md sections 1, 2 and 6); ``chatmock.testing.fake_upstream`` serves it
next to ``FakeCodex``.  The user "consents" at once, so a browser login is one
redirect, and the state below is what tests inspect or steer.

Routes:

* ``GET /oauth/authorize`` checks client id, ``response_type=code``, an
  absolute ``redirect_uri``, ``openid`` and ``offline_access`` in the scope
  and an S256 challenge, then answers 302 to ``<redirect_uri>?code=..&state=..``.
  Problems found before the redirect URI is known get a 400 text page; later
  ones (and ``next_authorize_error``) redirect with ``error=..``.
* ``POST /oauth/token`` (form or JSON body):
  ``grant_type=authorization_code`` redeems a single-use code (10 minutes,
  bound to redirect URI, client id and PKCE challenge), errors are 400
  ``{"error": "invalid_grant", "error_description": ..}``;
  ``grant_type=refresh_token`` rotates the refresh token.  A reused one
  answers 401 ``refresh_token_reused`` and revokes its whole family (its
  descendants then get ``refresh_token_invalidated``, its access tokens are
  revoked); unknown ones get ``refresh_token_invalidated``.
* ``POST /api/accounts/deviceauth/usercode`` and ``.../deviceauth/token``:
  the device-code flow; polls answer 403 until ``approve_device`` or until
  ``auto_approve_after_polls`` pending polls have been answered.
  ``GET /codex/device`` is the verification page.
* ``/__fake__/oauth/``: ``GET state``; ``POST next_refresh_error``,
  ``next_authorize_error`` (JSON ``{"error": "code" | null}``),
  ``expire_access_tokens``, ``revoke_all`` and ``approve_device``
  (JSON ``{"user_code": ..}``).

Ids and codes come from one counter, so a sequence of requests always
produces the same values; tokens are HS256 JWTs with a throwaway key.
Not thread-safe; meant for one event loop.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from chatmock.testing.credentials import TEST_ACCOUNT_ID, make_jwt
from chatmock.testing.fake_codex import FakeReply, FakeRequest
from chatmock.testing.fake_events import JSON
from chatmock.testing.fake_oauth_wire import (
    NO_STORE,
    absolute_url,
    api_error,
    control_error,
    fake_user_code,
    form_params,
    grant_error,
    json_body,
    json_reply,
    query_params,
    redirect_reply,
    refresh_error,
    require_params,
    text_page,
)
from chatmock.testing.fake_rules import Rejected

CODEX_CLIENT_ID = "app_EMoamEEZ73f0CkXaXp7hrann"
DEFAULT_ISSUER = "https://auth.openai.com"
AUTH_CLAIM = "https://api.openai.com/auth"
PROFILE_CLAIM = "https://api.openai.com/profile"
CODE_TTL = 600.0
DEVICE_TTL = 900.0
ID_TOKEN_TTL = 3600.0

AUTHORIZE_PATH = "/oauth/authorize"
TOKEN_PATH = "/oauth/token"
USERCODE_PATH = "/api/accounts/deviceauth/usercode"
DEVICE_TOKEN_PATH = "/api/accounts/deviceauth/token"
DEVICE_PAGE_PATH = "/codex/device"
DEVICE_CALLBACK_PATH = "/deviceauth/callback"
CONTROL_PREFIX = "/__fake__/oauth/"
OAUTH_PREFIXES = ("/oauth/", "/api/accounts/", CONTROL_PREFIX)

_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")


def is_oauth_path(path: str) -> bool:
    """Whether a request path belongs to the fake OAuth server (vs. the Codex backend)."""
    return path.startswith(OAUTH_PREFIXES) or path == DEVICE_PAGE_PATH


def s256(verifier: str) -> str:
    """The PKCE S256 challenge: base64url(sha256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(slots=True)
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    expires_at: float
    used: bool = False


@dataclass(slots=True)
class _Family:
    revoked: bool = False
    refreshes: int = 0


@dataclass(slots=True)
class _RefreshToken:
    family: str
    used: bool = False


@dataclass(slots=True)
class _AccessToken:
    family: str
    expires_at: float


@dataclass(slots=True)
class _Device:
    device_auth_id: str
    user_code: str
    client_id: str
    expires_at: float
    pending_polls: int = 0
    approved: bool = False
    redeemed: bool = False


_Handler = Callable[[FakeRequest], FakeReply]


class FakeOAuth:
    """The fake OAuth server's state: codes, token families, device codes, counters.

    ``issuer`` may be set after construction (the port is known only after
    binding); empty means ``https://auth.openai.com``.
    """

    def __init__(self, *, issuer: str = "", access_ttl: float = 3600.0,
                 clock: Callable[[], float] = time.time, client_id: str = CODEX_CLIENT_ID,
                 account_id: str = TEST_ACCOUNT_ID, email: str = "user@example.com",
                 plan: str = "plus", user_id: str = "user-FakeUser000000000000001") -> None:
        self.issuer = issuer
        self.access_ttl = access_ttl
        self.client_id = client_id
        self.account_id = account_id
        self.email = email
        self.plan = plan
        self.user_id = user_id
        self.next_authorize_error: str | None = None
        self.next_refresh_error: str | None = None
        self.auto_approve_after_polls: int | None = 2
        self.device_interval = 1
        self.refresh_count = 0
        self.refresh_attempts = 0
        self._clock = clock
        self._serial = itertools.count(1)
        self._codes: dict[str, _Code] = {}
        self._families: dict[str, _Family] = {}
        self._refresh_tokens: dict[str, _RefreshToken] = {}
        self._access_tokens: dict[str, _AccessToken] = {}
        self._devices: dict[str, _Device] = {}
        self._routes: dict[str, dict[str, _Handler]] = {
            AUTHORIZE_PATH: {"GET": self._authorize},
            TOKEN_PATH: {"POST": self._token},
            USERCODE_PATH: {"POST": self._device_usercode},
            DEVICE_TOKEN_PATH: {"POST": self._device_token},
            DEVICE_PAGE_PATH: {"GET": self._device_page},
            CONTROL_PREFIX + "state": {"GET": lambda _: json_reply(200, self.snapshot())},
            CONTROL_PREFIX + "next_refresh_error": {"POST": self._set_refresh_error},
            CONTROL_PREFIX + "next_authorize_error": {"POST": self._set_authorize_error},
            CONTROL_PREFIX + "expire_access_tokens": {"POST": self._expire_control},
            CONTROL_PREFIX + "revoke_all": {"POST": self._revoke_control},
            CONTROL_PREFIX + "approve_device": {"POST": self._approve_control},
        }

    # --- public API ------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: Mapping[bytes, bytes],
               body: bytes) -> FakeReply:
        """Answer one request; ``target`` is the raw path plus optional query."""
        path, _, query = target.partition("?")
        methods = self._routes.get(path)
        if methods is None:
            return json_reply(404, {"detail": "Not Found"})
        handler = methods.get(method.upper())
        if handler is None:
            allow = (b"allow", ", ".join(methods).encode())
            return json_reply(405, {"detail": "Method Not Allowed"}, allow)
        try:
            return handler(FakeRequest(method.upper(), path, query, headers, body))
        except Rejected as exc:
            return FakeReply(exc.status, [*exc.headers, NO_STORE], exc.body)

    @property
    def base_url(self) -> str:
        """The issuer in use: ``issuer`` without a trailing slash, or the real one."""
        return self.issuer.rstrip("/") or DEFAULT_ISSUER

    def access_token_status(self, token: str) -> str | None:
        """None for a valid access token, else "unknown", "revoked" or "expired"."""
        record = self._access_tokens.get(token)
        if record is None:
            return "unknown"
        if self._families[record.family].revoked:
            return "revoked"
        if self._clock() >= record.expires_at:
            return "expired"
        return None

    def approve_device(self, user_code: str) -> None:
        """The user enters ``user_code`` on the verification page; KeyError if unknown."""
        for device in self._devices.values():
            if device.user_code == user_code and not device.redeemed:
                device.approved = True
                return
        raise KeyError(user_code)

    def expire_access_tokens(self) -> int:
        """Every access token issued so far expires now; returns how many were live."""
        now = self._clock()
        live = [t for t in self._access_tokens.values() if t.expires_at > now]
        for token in live:
            token.expires_at = now
        return len(live)

    def revoke_all(self) -> int:
        """Revoke every token family (as a sign-out everywhere); returns how many."""
        active = [name for name, family in self._families.items() if not family.revoked]
        for name in active:
            self._families[name].revoked = True
        return len(active)

    def snapshot(self) -> JSON:
        """Counters and state, as served by ``GET /__fake__/oauth/state``."""
        families = [{"id": name, "status": "revoked" if f.revoked else "active",
                     "refreshes": f.refreshes} for name, f in self._families.items()]
        return {
            "issuer": self.base_url,
            "refresh_count": self.refresh_count,
            "refresh_attempts": self.refresh_attempts,
            "access_tokens_issued": len(self._access_tokens),
            "codes_issued": len(self._codes),
            "families": families,
            "pending_device_codes": [_device_state(d) for d in self._pending_devices()],
            "next_refresh_error": self.next_refresh_error,
            "next_authorize_error": self.next_authorize_error,
            "auto_approve_after_polls": self.auto_approve_after_polls,
        }

    # --- authorize -------------------------------------------------------------------

    def _authorize(self, request: FakeRequest) -> FakeReply:
        params = query_params(request.query)
        if params.get("client_id") != self.client_id:
            raise text_page(400, "Unknown or missing client_id.")
        redirect_uri = params.get("redirect_uri", "")
        if not absolute_url(redirect_uri):
            raise text_page(400, "Missing or invalid redirect_uri.")
        state = params.get("state")
        problem = self._authorize_problem(params)
        if problem is not None:
            error, description = problem
            return redirect_reply(redirect_uri, error=error, error_description=description,
                             state=state)
        code = self._new_code(self.client_id, redirect_uri, params["code_challenge"])
        return redirect_reply(redirect_uri, code=code, state=state)

    def _authorize_problem(self, params: Mapping[str, str]) -> tuple[str, str] | None:
        """(error, description) for a request to refuse by redirect, else None."""
        if params.get("response_type") != "code":
            return "unsupported_response_type", "response_type must be 'code'."
        if not {"openid", "offline_access"} <= set(params.get("scope", "").split()):
            return "invalid_scope", "scope must include openid and offline_access."
        if params.get("code_challenge_method") != "S256":
            return "invalid_request", "code_challenge_method must be S256."
        if not _CHALLENGE.fullmatch(params.get("code_challenge", "")):
            return "invalid_request", "Missing or malformed code_challenge."
        forced, self.next_authorize_error = self.next_authorize_error, None
        if forced:
            return forced, f"The authorization request was refused ({forced})."
        return None

    def _new_code(self, client_id: str, redirect_uri: str, challenge: str) -> str:
        code = f"ac_fake_{next(self._serial):08d}"
        expires_at = self._clock() + CODE_TTL
        self._codes[code] = _Code(client_id, redirect_uri, challenge, expires_at)
        return code

    # --- token endpoint --------------------------------------------------------------

    def _token(self, request: FakeRequest) -> FakeReply:
        form = form_params(request.headers, request.body)
        grant = form.get("grant_type", "")
        if grant == "authorization_code":
            return self._exchange_code(form)
        if grant == "refresh_token":
            return self._refresh(form)
        raise grant_error(400, "unsupported_grant_type", f"Unsupported grant_type: {grant!r}")

    def _exchange_code(self, form: Mapping[str, str]) -> FakeReply:
        require_params(form, "code", "redirect_uri", "client_id", "code_verifier")
        code = self._codes.get(form["code"])
        if code is None:
            raise grant_error(400, "invalid_grant", "Unknown authorization code.")
        problem = self._code_problem(code, form)
        if problem is not None:
            raise grant_error(400, "invalid_grant", problem)
        code.used = True
        family = f"fam_{next(self._serial):08d}"
        self._families[family] = _Family()
        return self._issue(family)

    def _code_problem(self, code: _Code, form: Mapping[str, str]) -> str | None:
        if code.used:
            return "Authorization code has already been used."
        if self._clock() >= code.expires_at:
            return "Authorization code has expired."
        if form["client_id"] != code.client_id:
            return "client_id does not match the authorization request."
        if form["redirect_uri"] != code.redirect_uri:
            return "redirect_uri does not match the authorization request."
        verifier = form["code_verifier"]
        if not _VERIFIER.fullmatch(verifier) or s256(verifier) != code.challenge:
            return "code_verifier does not match the code_challenge."
        return None

    def _refresh(self, form: Mapping[str, str]) -> FakeReply:
        self.refresh_attempts += 1
        forced, self.next_refresh_error = self.next_refresh_error, None
        if forced:
            raise refresh_error(forced)
        require_params(form, "refresh_token")
        if form.get("client_id") != self.client_id:
            raise refresh_error("invalid_client", "Unknown or missing client_id.")
        token = self._refresh_tokens.get(form["refresh_token"])
        if token is None:
            raise refresh_error("refresh_token_invalidated")
        family = self._families[token.family]
        if token.used:
            family.revoked = True
            raise refresh_error("refresh_token_reused")
        if family.revoked:
            raise refresh_error("refresh_token_invalidated")
        token.used = True
        family.refreshes += 1
        self.refresh_count += 1
        return self._issue(token.family)

    def _issue(self, family: str) -> FakeReply:
        """New id, access and refresh tokens of ``family``, as a token response."""
        now = self._clock()
        serial = next(self._serial)
        expires_at = math.ceil(now + self.access_ttl)
        access_token = make_jwt(self._access_claims(now, expires_at, serial))
        refresh_token = f"rt_fake_{serial:08d}"
        self._access_tokens[access_token] = _AccessToken(family, expires_at)
        self._refresh_tokens[refresh_token] = _RefreshToken(family)
        return json_reply(200, {
            "id_token": make_jwt(self._id_claims(now)),
            "access_token": access_token,
            "refresh_token": refresh_token,
            "token_type": "Bearer",
            "expires_in": int(self.access_ttl),
            "scope": "openid profile email offline_access",
        }, NO_STORE)

    def _auth_claim(self) -> JSON:
        return {"chatgpt_account_id": self.account_id, "chatgpt_plan_type": self.plan,
                "chatgpt_user_id": self.user_id, "user_id": self.user_id}

    def _id_claims(self, now: float) -> JSON:
        return {
            "iss": self.base_url, "aud": [self.client_id], "sub": f"auth0|{self.user_id}",
            "email": self.email, "email_verified": True,
            "iat": int(now), "auth_time": int(now), "exp": math.ceil(now + ID_TOKEN_TTL),
            AUTH_CLAIM: self._auth_claim(),
        }

    def _access_claims(self, now: float, expires_at: int, serial: int) -> JSON:
        return {
            "iss": self.base_url, "aud": ["https://api.openai.com/v1"],
            "sub": f"auth0|{self.user_id}", "client_id": self.client_id,
            "iat": int(now), "nbf": int(now), "exp": expires_at, "jti": f"at_fake_{serial:08d}",
            "scp": ["openid", "profile", "email", "offline_access"],
            PROFILE_CLAIM: {"email": self.email, "email_verified": True},
            AUTH_CLAIM: self._auth_claim(),
        }

    # --- device code -----------------------------------------------------------------

    def _device_usercode(self, request: FakeRequest) -> FakeReply:
        payload = json_body(request.body)
        if payload.get("client_id") != self.client_id:
            raise api_error(400, "invalid_client", "Unknown or missing client_id.")
        serial = next(self._serial)
        device = _Device(f"deviceauth_fake_{serial:08d}", fake_user_code(serial), self.client_id,
                         self._clock() + DEVICE_TTL)
        self._devices[device.device_auth_id] = device
        return json_reply(200, {"device_auth_id": device.device_auth_id,
                           "user_code": device.user_code, "interval": self.device_interval,
                           "verification_uri": self.base_url + DEVICE_PAGE_PATH})

    def _device_token(self, request: FakeRequest) -> FakeReply:
        payload = json_body(request.body)
        device = self._devices.get(str(payload.get("device_auth_id", "")))
        if device is None or payload.get("user_code") != device.user_code:
            raise api_error(400, "invalid_device_auth", "Unknown device_auth_id or user_code.")
        if device.redeemed:
            raise api_error(400, "invalid_device_auth", "This device code was already used.")
        if self._clock() >= device.expires_at:
            raise api_error(400, "device_code_expired", "The device code has expired.")
        if not self._approved(device):
            device.pending_polls += 1
            raise api_error(403, "deviceauth_authorization_pending",
                             "The user has not yet authorized this device.")
        device.redeemed = True
        verifier = hashlib.sha256(f"fake-device-verifier-{device.device_auth_id}".encode())
        code_verifier = verifier.hexdigest()
        challenge = s256(code_verifier)
        redirect_uri = self.base_url + DEVICE_CALLBACK_PATH
        code = self._new_code(device.client_id, redirect_uri, challenge)
        return json_reply(200, {"authorization_code": code, "code_challenge": challenge,
                           "code_verifier": code_verifier}, NO_STORE)

    def _approved(self, device: _Device) -> bool:
        auto = self.auto_approve_after_polls
        if auto is not None and device.pending_polls >= auto:
            device.approved = True
        return device.approved

    def _pending_devices(self) -> list[_Device]:
        now = self._clock()
        return [d for d in self._devices.values() if not d.redeemed and d.expires_at > now]

    def _device_page(self, _: FakeRequest) -> FakeReply:
        return FakeReply(200, [(b"content-type", b"text/html; charset=utf-8")], _DEVICE_PAGE)

    # --- test control ----------------------------------------------------------------

    def _set_refresh_error(self, request: FakeRequest) -> FakeReply:
        self.next_refresh_error = control_error(request.body)
        return json_reply(200, {"next_refresh_error": self.next_refresh_error})

    def _set_authorize_error(self, request: FakeRequest) -> FakeReply:
        self.next_authorize_error = control_error(request.body)
        return json_reply(200, {"next_authorize_error": self.next_authorize_error})

    def _expire_control(self, _: FakeRequest) -> FakeReply:
        return json_reply(200, {"expired": self.expire_access_tokens()})

    def _revoke_control(self, _: FakeRequest) -> FakeReply:
        return json_reply(200, {"revoked": self.revoke_all()})

    def _approve_control(self, request: FakeRequest) -> FakeReply:
        user_code = str(json_body(request.body).get("user_code", ""))
        try:
            self.approve_device(user_code)
        except KeyError:
            return json_reply(404, {"detail": f"No pending device code {user_code!r}"})
        return json_reply(200, {"approved": user_code})


def _device_state(device: _Device) -> JSON:
    return {"device_auth_id": device.device_auth_id, "user_code": device.user_code,
            "pending_polls": device.pending_polls, "approved": device.approved}


_DEVICE_PAGE = (
    b"<!DOCTYPE html><html><head><title>Sign in to Codex</title></head><body>"
    b"<h1>Enter your one-time code</h1><p>Enter the code shown in your terminal to sign "
    b"in to Codex with ChatGPT. (Fake server: tests approve codes through "
    b"<code>approve_device</code>.)</p></body></html>"
)
