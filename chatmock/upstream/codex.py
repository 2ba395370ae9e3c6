"""Talking to the Codex backend: headers, credentials, and its errors.

`CodexBackend.responses` opens one `POST {base}/responses` stream. Before the
body is handed to a translator, an error status is turned into an
`UpstreamError` carrying the backend's own message (found wherever its body
keeps it, spec: upstream.md §12.1) and a status the client can act on: 429
keeps its `Retry-After`, a rejected ChatGPT token says how to sign in again.

chatmock presents itself as the Codex CLI (`ClientIdentity`, from
`--client-version` and `--originator`): `originator: codex_cli_rs`, its
User-Agent shape, and `version: <client version>`, which the backend uses to
refuse newer models to older clients ("requires a newer version of Codex").
Like the Codex CLI 0.169 it sends `session-id` and `thread-id` (the same
uuid: chatmock's session id). When the client *is* a Codex CLI (its
`originator` or User-Agent starts with `codex_`), its own `session-id`,
`thread-id`, `x-client-request-id` and `x-codex-*` headers (window id, turn
metadata, beta features) are forwarded unchanged instead (`codex_client_headers`).
"""

from __future__ import annotations

import json
import logging
import math
import platform
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatmock import __version__, jsonbytes
from chatmock.auth.store import CredentialStore
from chatmock.auth.tokens import Credentials
from chatmock.config import DEFAULT_CLIENT_VERSION, DEFAULT_ORIGINATOR
from chatmock.errors import UpstreamError, extract_message
from chatmock.net.client import HTTPClient
from chatmock.net.response import UpstreamResponse
from chatmock.state import exchanges
from chatmock.upstream.accounts import Account, AccountPool
from chatmock.upstream.instructions import NO_INSTRUCTIONS, BaseInstructions
from chatmock.upstream.stream_start import read_start

log = logging.getLogger("chatmock.upstream")

CODEX_CLIENT_VERSION = DEFAULT_CLIENT_VERSION
ORIGINATOR = DEFAULT_ORIGINATOR
_CODEX_CLIENT_PREFIX = b"codex_"  # codex_cli_rs, codex_exec, codex_vscode, ...
_CODEX_CLIENT_IDS = (b"session-id", b"thread-id", b"x-client-request-id")
_REQUEST_ID_HEADERS = (b"x-request-id", b"x-openai-request-id", b"x-oai-request-id",
                       b"openai-request-id", b"request-id", b"cf-ray")
MAX_ERROR_BODY = 1024 * 1024


def user_agent(originator: str = ORIGINATOR, version: str = CODEX_CLIENT_VERSION) -> str:
    """The Codex CLI's User-Agent shape; chatmock's name where the CLI names the terminal."""
    system = {"Darwin": "Mac OS"}.get(platform.system(), platform.system() or "unknown")
    return (f"{originator}/{version} ({system} {platform.release()}; "
            f"{platform.machine() or 'unknown'}) chatmock/{__version__}")


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    """Who chatmock says it is upstream (see the module docstring)."""

    version: str = CODEX_CLIENT_VERSION
    originator: str = ORIGINATOR

    def headers(self) -> list[tuple[bytes, bytes]]:
        return [(b"originator", self.originator.encode()),
                (b"user-agent", user_agent(self.originator, self.version).encode()),
                (b"version", self.version.encode())]


def codex_client_headers(headers: Mapping[bytes, bytes]) -> tuple[tuple[bytes, bytes], ...]:
    """The headers of a Codex CLI client that go upstream as they are (none for others)."""
    if not (headers.get(b"originator", b"").startswith(_CODEX_CLIENT_PREFIX)
            or headers.get(b"user-agent", b"").startswith(_CODEX_CLIENT_PREFIX)):
        return ()
    return tuple((name, value) for name, value in headers.items()
                 if name in _CODEX_CLIENT_IDS or name.startswith(b"x-codex-"))


def installation_id(home: Path) -> str:
    """The stable per-install UUID in `<home>/installation_id`, created on first use."""
    path = home / "installation_id"
    try:
        return str(uuid.UUID(path.read_text().strip()))
    except (OSError, ValueError):
        pass
    value = str(uuid.uuid4())
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.write_text(value)
    except OSError:
        pass
    return value


class CodexBackend:
    def __init__(self, base_url: str, http: HTTPClient, credentials: CredentialStore,
                 install_id: str, *, identity: ClientIdentity = ClientIdentity(),
                 base_instructions: BaseInstructions = NO_INSTRUCTIONS,
                 log_bodies: bool = False, log_events: bool = False) -> None:
        self.responses_url = base_url.rstrip("/") + "/responses"
        self.log_bodies = log_bodies
        self.log_events = log_events
        # Called with the headers of every backend answer (rate-limit recording).
        self.on_headers: Callable[[list[tuple[bytes, bytes]]], object] | None = None
        self.http = http
        self.credentials = credentials  # the default account's (model discovery, status)
        self.pool = AccountPool([Account("default", credentials,
                                         record_headers=self._record_headers)])
        self.install_id = install_id
        self.identity = identity
        self.base_instructions = base_instructions
        self._fixed_headers = [
            (b"content-type", b"application/json"),
            (b"accept", b"text/event-stream"),
            (b"openai-beta", b"responses=experimental"),
            *identity.headers(),
            (b"x-codex-installation-id", install_id.encode()),
        ]

    def _record_headers(self, headers: list[tuple[bytes, bytes]]) -> None:
        if self.on_headers is not None:
            self.on_headers(headers)

    def _headers(self, credentials: Credentials, session_id: str,
                 forwarded: tuple[tuple[bytes, bytes], ...]) -> list[tuple[bytes, bytes]]:
        """Per request: credentials, the session (`session-id` and `thread-id`, a Codex
        client's own when it sent them), then the fixed set; forwarded headers win."""
        session = session_id.encode("latin-1", "replace")
        given = dict(forwarded)
        ids = [(b"session-id", given.get(b"session-id", session)),
               (b"thread-id", given.get(b"thread-id", given.get(b"session-id", session)))]
        return [(b"authorization", b"Bearer " + credentials.access_token.encode()),
                (b"chatgpt-account-id", credentials.account_id.encode()), *ids,
                *[header for header in self._fixed_headers if header[0] not in given],
                *[header for header in forwarded if header[0] not in (b"session-id",
                                                                      b"thread-id")]]

    def account_id(self) -> str:
        """The signed-in ChatGPT account ('' when signed out), from the cached credentials."""
        credentials = self.credentials.current()
        return credentials.account_id if credentials is not None else ""

    def model_headers(self, credentials: Credentials) -> list[tuple[bytes, bytes]]:
        """Headers of `GET /models` (spec: upstream.md §2.5): no body, JSON back."""
        return [(b"authorization", b"Bearer " + credentials.access_token.encode()),
                (b"chatgpt-account-id", credentials.account_id.encode()),
                (b"accept", b"application/json"),
                *self.identity.headers(),
                (b"x-codex-installation-id", self.install_id.encode())]

    def finish_payload(self, payload: dict[str, Any], session_id: str) -> None:
        """Fields every Codex request carries: cache key and installation metadata, and
        the base instructions (if configured) when the request has none."""
        if not payload.get("instructions"):
            base = self.base_instructions.for_model(str(payload.get("model") or ""))
            if base:
                payload["instructions"] = base
        payload.setdefault("prompt_cache_key", session_id)
        metadata = payload.setdefault("client_metadata", {})
        if isinstance(metadata, dict):
            metadata.setdefault("x-codex-installation-id", self.install_id)

    @asynccontextmanager
    async def responses(self, payload: dict[str, Any], session_id: str,
                        forwarded: tuple[tuple[bytes, bytes], ...] = (), *,
                        affinity: tuple[str, ...] = ()) -> AsyncIterator[UpstreamResponse]:
        """An open SSE response of status 200, or an UpstreamError.

        `forwarded`: a Codex client's own headers (`codex_client_headers`);
        `affinity`: keys the route knows the conversation by besides its payload (a
        WebSocket connection). The account pool (`chatmock.upstream.accounts`) picks
        the account, refreshes a rejected token once and fails over to another
        account before anything is streamed."""
        exchanges.note_model(payload.get("model"), payload.get("reasoning"))  # access log
        turn = await self.pool.turn(payload, affinity)
        self.finish_payload(payload, session_id)
        read_ahead = not self.pool.single  # another account can take a limit in the stream
        # The open answer's exchange, closed on the way out. Not an AsyncExitStack: this
        # frame lives as long as the stream, and a stack costs ~1 KiB a stream (issue 13).
        held: list[AbstractAsyncContextManager[UpstreamResponse]] = []

        async def send(account: Account, credentials: Credentials) -> UpstreamResponse:
            return await self._send(held, account, credentials, payload,
                                    self._headers(credentials, session_id, forwarded),
                                    read_ahead)

        try:
            yield await turn.open(payload, send)
        finally:
            for exchange in held:
                await exchange.__aexit__(None, None, None)

    async def _send(self, held: list[AbstractAsyncContextManager[UpstreamResponse]],
                    account: Account, credentials: Credentials, payload: dict[str, Any],
                    headers: list[tuple[bytes, bytes]],
                    read_ahead: bool = False) -> UpstreamResponse:
        """One attempt: a response of status 200 whose exchange is left open in `held`
        (for the caller to close), or UpstreamError. `read_ahead`: a usage limit said
        in the stream's first event is an UpstreamError too
        (`chatmock.upstream.stream_start`)."""
        exchange = self.http.request("POST", self.responses_url, headers, self._body(payload))
        response = await exchange.__aenter__()
        try:
            account.record(response.headers)
            if response.status >= 400:
                error_body = await response.read_all(MAX_ERROR_BODY)
                if self.log_bodies:
                    log.debug("upstream %d: %s", response.status,
                              error_body[:4000].decode("utf-8", "replace"))
                raise upstream_error(response.status, response.headers, error_body)
            if self.log_events:
                response.trace = _log_events
            if read_ahead:
                response = await self._read_start(account, response)
        except BaseException:
            await exchange.__aexit__(None, None, None)
            raise
        held.append(exchange)
        return response

    def _body(self, payload: dict[str, Any]) -> bytes:
        """The request's bytes, not kept in `_send`'s frame: that frame awaits the answer,
        and the request's bytes are a whole conversation (the client keeps them once)."""
        body = jsonbytes.dumps(payload)
        if self.log_bodies:
            log.debug("upstream request: %s", body[:20000].decode("utf-8", "replace"))
        return body

    @staticmethod
    async def _read_start(account: Account, response: UpstreamResponse) -> UpstreamResponse:
        """The stream with its start read ahead, or the UpstreamError 429 of a usage
        limit said there (its wrapped `x-codex-*` headers recorded as the account's)."""
        held, refusal = await read_start(response)
        if refusal is None:
            return held
        wrapped = [(str(name).lower().encode("latin-1", "replace"),
                    str(value).encode("latin-1", "replace"))
                    for name, value in refusal.get("headers", {}).items()]
        account.record(wrapped)
        headers = [*response.headers, *wrapped]
        request_id = _request_id(headers)
        document = {"error": refusal["error"]}
        raise _usage_limit_error(document, headers, b"", _error_code(document), request_id)


def _log_events(data: bytes) -> None:
    log.debug("upstream events: %s", data.decode("utf-8", "replace"))


def upstream_error(status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> UpstreamError:
    """The UpstreamError a failed backend answer becomes."""
    document = _json_or_none(body)
    message = extract_message(document) or _text_excerpt(body) or "no error details given"
    request_id = _request_id(headers)
    if request_id:
        message += f" (request id {request_id})"
    code = _error_code(document)
    if status == 401:
        return UpstreamError(f"ChatGPT rejected chatmock's credentials: {message}. "
                             "Run `chatmock login` to sign in again.", status=401,
                             error_type="authentication_error", code=code)
    if status == 429:
        return _usage_limit_error(document, headers, body, code, request_id)
    if status < 500:
        kind = "permission_error" if status == 403 else "invalid_request_error"
        return UpstreamError(message, status=status, error_type=kind, code=code)
    return UpstreamError(message, status=status if status < 600 else 502,
                         error_type="api_error", code=code)


NOT_INCLUDED_MESSAGE = ("This ChatGPT account's plan does not include Codex, so the backend "
                        "refused the request (usage_not_included). Upgrade the plan, or run "
                        "`chatmock login` with an account whose plan includes Codex.")
LIMIT_MESSAGE = "The ChatGPT usage limit has been reached"


def _usage_limit_error(document: Any, headers: list[tuple[bytes, bytes]], body: bytes,
                       code: str | None, request_id: str) -> UpstreamError:
    """A 429: `usage_not_included` says what to do (waiting does not help, so no
    Retry-After); any other keeps the backend's message (or says the limit was reached
    when the body gives none) and gets `Retry-After` when the reset is known."""
    suffix = f" (request id {request_id})" if request_id else ""
    if code == "usage_not_included":
        return UpstreamError(NOT_INCLUDED_MESSAGE + suffix, status=429,
                             error_type="rate_limit_error", code=code)
    message = extract_message(document)
    if not message:
        excerpt = "" if document is not None else _text_excerpt(body)
        message = LIMIT_MESSAGE + (f" (the backend said: {excerpt})" if excerpt else "")
    retry = retry_after(document, headers)
    extra: tuple[tuple[bytes, bytes], ...] = ()
    if retry is not None:
        extra = ((b"retry-after", b"%d" % retry),)
        message += f"; it resets in {_duration(retry)}"
    return UpstreamError(message + suffix, status=429, error_type="rate_limit_error",
                         code=code or "rate_limit_exceeded", headers=extra)


def _duration(seconds: int) -> str:
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{round(seconds / size)} {unit}"
    return f"{seconds} s"


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _error_code(document: Any) -> str | None:
    if isinstance(document, dict) and isinstance(document.get("error"), dict):
        error = document["error"]
        for key in ("code", "type"):
            if isinstance(error.get(key), str):
                return str(error[key])
    return None


def _text_excerpt(body: bytes) -> str:
    text = body.decode("utf-8", "replace").strip()
    if text.lstrip().startswith("<"):
        return "the backend answered with an HTML page (blocked or down?)"
    return text[:280]


def _request_id(headers: list[tuple[bytes, bytes]]) -> str:
    found = dict(headers)
    for name in _REQUEST_ID_HEADERS:
        if found.get(name):
            return found[name].decode("latin-1")
    return ""


def retry_after(document: Any, headers: list[tuple[bytes, bytes]]) -> int | None:
    """Seconds until a usage limit resets: from the body (`resets_in_seconds`,
    `resets_at`), else `Retry-After`, else the `x-codex-*` headers (the spent window that
    resets last; the primary window when none says it is spent)."""
    error = document.get("error") if isinstance(document, dict) else None
    try:
        if isinstance(error, dict):
            if isinstance(error.get("resets_in_seconds"), int | float):
                return max(0, int(error["resets_in_seconds"]))
            if isinstance(error.get("resets_at"), int | float):
                return max(0, int(error["resets_at"] - time.time()))
    except (OverflowError, ValueError):  # Infinity / NaN are accepted by json.loads
        pass
    found: Mapping[bytes, bytes] = dict(headers)
    seconds = _number(found.get(b"retry-after"))
    if seconds is not None:
        return seconds
    spent = [_number(found.get(b"x-codex-%s-reset-after-seconds" % window))
             for window in (b"primary", b"secondary")
             if (_percent(found.get(b"x-codex-%s-used-percent" % window)) or 0) >= 100]
    known = [value for value in spent if value is not None]
    if known:  # the spent window that resets last is the one that blocks
        return max(known)
    return _number(found.get(b"x-codex-primary-reset-after-seconds"))


def _number(value: bytes | None) -> int | None:
    try:
        return None if value is None else max(0, int(float(value)))
    except (ValueError, OverflowError):
        return None


def _percent(value: bytes | None) -> float | None:
    try:
        number = None if value is None else float(value)
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None
