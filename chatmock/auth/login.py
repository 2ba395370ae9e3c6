"""`chatmock login`: sign in with ChatGPT and save the tokens.

Browser flow (auth.md §2): a callback server on the fixed port waits for the
authorize redirect; at the same time the terminal accepts the full redirect
URL pasted by hand (for SSH and containers, where the browser cannot reach
this machine). A redirect without this attempt's `state` is ignored (the
callback answers 400 and keeps waiting; the terminal asks again), so another
page or a stale tab can neither complete nor abort the sign-in; the first one
with the right state is checked (denial, code), exchanged for tokens, and
saved. Device flow (`--headless`, §2.8): the user enters a code on a web page
while we poll. Every failure is a `LoginError` with a
message for the user and an exit code; nothing here prints a traceback.
"""

from __future__ import annotations

import errno
import html
import logging
import secrets
import webbrowser
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import trio

from chatmock.auth.oauth import (
    OAuthClient,
    OAuthError,
    TokenSet,
    authorize_url,
    pkce_pair,
    redirect_uri,
)
from chatmock.auth.tokens import merge_tokens
from chatmock.errors import ChatmockError
from chatmock.fileio import write_private_json
from chatmock.server.exchange import ConnectionLimits, Request, Responder
from chatmock.server.listen import open_listeners, serve

log = logging.getLogger("chatmock.login")

EXIT_PORT_IN_USE = 13
_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>
<body style="font-family: sans-serif; max-width: 36em; margin: 4em auto">
<h1>{title}</h1><p>{text}</p></body></html>"""

ReadLine = Callable[[], Awaitable[str]]
Say = Callable[[str], None]


class LoginError(ChatmockError):
    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass(frozen=True, slots=True)
class LoginOptions:
    issuer: str
    client_id: str
    bind: str
    port: int
    auth_path: Path
    open_browser: bool = True
    timeout: float = 600.0


def page(title: str, text: str) -> bytes:
    return _PAGE.format(title=title, text=text).encode()


def save_tokens(path: Path, tokens: TokenSet) -> None:
    """Write tokens into `path`, keeping whatever else an existing file holds."""
    document: Any = {}
    try:
        import json

        document = json.loads(path.read_bytes())
    except (OSError, ValueError):
        document = {}
    if not isinstance(document, dict):
        document = {}
    write_private_json(path, merge_tokens(document, tokens.id_token, tokens.access_token,
                                          tokens.refresh_token))


class _Attempt:
    """One browser sign-in: its secrets, and its outcome once known."""

    def __init__(self, options: LoginOptions, oauth: OAuthClient) -> None:
        self.options = options
        self.oauth = oauth
        self.verifier, challenge = pkce_pair()
        self.state = secrets.token_hex(32)
        self.redirect = redirect_uri(options.port)
        self.url = authorize_url(options.issuer, options.client_id, self.redirect, challenge,
                                 self.state)
        self.done = trio.Event()
        self.error: str | None = None
        self._busy = trio.Lock()

    def belongs(self, query: Mapping[str, list[str]]) -> bool:
        """True if a redirect carries this attempt's state; any other one is ignored,
        so that a stray or forged request (another tab, a page probing the port) can
        neither complete nor abort the sign-in."""
        state = (query.get("state") or [""])[0]
        return secrets.compare_digest(state.encode(), self.state.encode())

    async def complete(self, query: Mapping[str, list[str]]) -> str | None:
        """Finish the attempt from a redirect that `belongs` to it; an error message or None."""
        async with self._busy:
            if self.done.is_set():
                return self.error
            self.error = await self._finish(query)
            self.done.set()
            return self.error

    async def _finish(self, query: Mapping[str, list[str]]) -> str | None:
        def first(key: str) -> str:
            return (query.get(key) or [""])[0]

        if first("error"):
            detail = first("error_description") or first("error")
            return f"sign-in was not completed: {detail}"
        if not first("code"):
            return "the redirect carried no authorization code"
        try:
            tokens = await self.oauth.exchange_code(first("code"), self.verifier, self.redirect)
        except OAuthError as exc:
            return exc.message
        save_tokens(self.options.auth_path, tokens)
        return None


async def browser_login(options: LoginOptions, oauth: OAuthClient, read_line: ReadLine,
                        say: Say) -> None:
    """The localhost-callback flow, with the pasted redirect URL as an alternative."""
    attempt = _Attempt(options, oauth)
    listeners = await _listen(options)
    shutdown = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: serve(
            _CallbackApp(attempt), listeners, limits=ConnectionLimits(header_timeout=30),
            max_connections=32, shutdown=shutdown, shutdown_timeout=2,
            task_status=task_status))
        say(f"Starting local login server on http://localhost:{options.port}")
        if options.open_browser:
            nursery.start_soon(_open_browser, attempt.url)
        say(f"If your browser did not open, navigate to:\n{attempt.url}\n")
        say("If the browser cannot reach this machine, paste the full redirect URL "
            "(http://localhost:...) here and press Enter:")
        nursery.start_soon(_read_pasted, attempt, read_line, say)
        with trio.move_on_after(options.timeout):
            await attempt.done.wait()
        shutdown.set()
        nursery.cancel_scope.deadline = trio.current_time() + 2.5
    if not attempt.done.is_set():
        raise LoginError(f"timed out after {options.timeout:g} s waiting for the sign-in")
    if attempt.error is not None:
        raise LoginError(attempt.error)


async def _listen(options: LoginOptions) -> list[trio.SocketListener]:
    try:
        return await open_listeners(options.bind, options.port)
    except OSError as exc:
        in_use = exc.errno == errno.EADDRINUSE
        hint = " (is another login running?)" if in_use else ""
        raise LoginError(f"cannot listen on {options.bind}:{options.port} for the sign-in "
                         f"callback: {exc.strerror}{hint}",
                         EXIT_PORT_IN_USE if in_use else 1) from None


async def _open_browser(url: str) -> None:
    try:
        await trio.to_thread.run_sync(webbrowser.open, url, abandon_on_cancel=True)
    except Exception as exc:  # a missing or broken browser must not end the login
        log.debug("could not open a browser: %s", exc)


async def _read_pasted(attempt: _Attempt, read_line: ReadLine, say: Say) -> None:
    while not attempt.done.is_set():
        line = await read_line()
        if not line:
            return  # no terminal input (closed stdin): keep waiting for the browser
        text = line.strip()
        if not text:
            continue
        query = parse_qs(urlsplit(text).query or text.partition("?")[2] or text)
        if not query.get("code") and not query.get("error"):
            say("That does not look like the redirect URL (it has no code=...); try again:")
            continue
        if not attempt.belongs(query):
            say("That redirect belongs to another sign-in (its state does not match); "
                "paste the URL this sign-in ended on:")
            continue
        await attempt.complete(query)


class _CallbackApp:
    """The callback server's only routes: `/auth/callback` and `/success`."""

    def __init__(self, attempt: _Attempt) -> None:
        self.attempt = attempt

    async def __call__(self, request: Request, out: Responder) -> None:
        headers = [(b"content-type", b"text/html; charset=utf-8")]
        if request.path == "/success":
            await out.respond(200, headers, _success_page())
        elif request.path == "/auth/callback" and request.method == "GET":
            query = parse_qs(request.query)
            if not self.attempt.belongs(query):
                await out.respond(400, headers, page("Not this sign-in", "This redirect does "
                                  "not carry the state of the sign-in in progress, so it was "
                                  "ignored; the sign-in is still waiting."))
                return
            error = await self.attempt.complete(query)
            if error is None:
                await out.respond(200, headers, _success_page())
            else:
                await out.respond(400, headers, page("Login failed", html.escape(error)))
        else:
            await out.respond(404, headers, page("Not found", "This is chatmock's sign-in "
                                                 "callback; nothing else lives here."))


def _success_page() -> bytes:
    return page("Login successful", "chatmock is signed in. You can close this window and "
                "run <code>chatmock serve</code>.")


async def device_login(options: LoginOptions, oauth: OAuthClient, say: Say) -> None:
    """The device-code flow: show a code, poll until the user entered it."""
    try:
        device = await oauth.start_device_login()
        say(f"Open this URL and enter the code:\n{device.verification_url}\n\n"
            f"Code: {device.user_code}\n")
        with trio.move_on_after(options.timeout):
            while True:
                await trio.sleep(device.interval)
                approved = await oauth.poll_device_login(device)
                if approved is not None:
                    break
        if approved is None:
            raise LoginError("device login timed out")
        code, verifier = approved
        tokens = await oauth.exchange_code(code, verifier, f"{oauth.issuer}/deviceauth/callback")
    except OAuthError as exc:
        raise LoginError(exc.message) from None
    save_tokens(options.auth_path, tokens)
