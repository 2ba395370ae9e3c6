"""Current credentials for every request, refreshed before they expire.

Reading: auth.json is re-read only when a file of the search order changed,
and that is checked at most once per `recheck_seconds`.

Refreshing (spec: auth.md §6) happens before expiry (5-minute margin)
and once after the backend rejected a token. Refresh tokens rotate and a
reused one is refused, so a refresh must happen exactly once per token, even
with many requests in flight and several processes (or the Codex CLI) sharing
one file:

* in the process, one lock: the first task refreshes, the others wait and
  then see the new token;
* across processes, a `RefreshGuard` (`chatmock.auth.refresh_guard`): an
  exclusive lock on `<auth file>.lock` (embedded), or a Redis lock (fleet
  mode: every machine); under it the newest tokens are read again (the file,
  or also those published in Redis), and if they are no longer the stale ones,
  another process has refreshed and its tokens are adopted as they are. If the
  guard cannot answer (Redis down), a token that has not expired yet is used
  meanwhile; an expired one is a 503.

The refreshed tokens are written back to the file they were read from,
atomically, mode 0600, keeping every other key of the document.

A refresh that failed is not tried again for `RETRY_SECONDS` unless the file
changes: meanwhile a token that has not expired is used as it is, and an expired
or rejected one (or a refresh token the issuer refused) gets the same error at
once. Without that pause every request during an outage of the issuer made its own
attempt, one after the other under the lock (each up to the OAuth timeout), and a
swarm's requests queued behind them. In fleet mode the pause does not ask Redis
either (when Redis is what failed, asking is what costs): tokens another machine
published meanwhile are adopted when it ends, at most `RETRY_SECONDS` later.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import trio

from chatmock.auth.oauth import OAuthClient, OAuthError
from chatmock.auth.refresh_guard import FileGuard, RefreshGuard, RefreshUnavailable
from chatmock.auth.tokens import (
    Credentials,
    auth_search_paths,
    find_auth_in,
    merge_tokens,
    parse_auth,
)
from chatmock.errors import ApiError, ClientError, UpstreamError
from chatmock.fileio import file_stamp, write_private_json

log = logging.getLogger("chatmock.auth")

LOGIN_HINT = "Run `chatmock login` to sign in again."
RETRY_SECONDS = 15.0  # after a failed refresh (see the module docstring)


def not_signed_in(problems: list[str]) -> ClientError:
    detail = "; ".join(problems) if problems else "no auth.json was found"
    return ClientError(f"Missing ChatGPT credentials ({detail}). Run `chatmock login` first.",
                       status=401, error_type="authentication_error", code="not_signed_in")


class CredentialStore:
    def __init__(self, env: Mapping[str, str] | None = None, *, oauth: OAuthClient | None = None,
                 recheck_seconds: float = 1.0, clock: Callable[[], float] = time.time,
                 guard: RefreshGuard | None = None, path: Path | None = None) -> None:
        """`path`: one account's file (the pool's named accounts); by default the
        first auth.json of the search order (auth.md §3.3)."""
        self._env = dict(os.environ if env is None else env)
        self._paths = [path] if path is not None else None
        self.oauth = oauth
        self.guard: RefreshGuard = guard or FileGuard()
        self._clock = clock
        self._cached: Credentials | None = None
        self.problems: list[str] = []
        self._stamps: list[tuple[int, int] | None] | None = None
        self._recheck = recheck_seconds
        self._checked_at = -math.inf
        self._lock = trio.Lock()
        self.refresh_count = 0
        self._failed: _Failed | None = None  # the last refresh that failed

    # -- reading ------------------------------------------------------------------

    def current(self) -> Credentials | None:
        """The credentials on disk (None when signed out), from a cache checked per interval."""
        now = time.monotonic()
        if now - self._checked_at < self._recheck:
            return self._cached
        self._checked_at = now
        paths = self._paths or auth_search_paths(self._env)
        stamps = [file_stamp(path) for path in paths]
        if stamps != self._stamps:
            self._cached, self.problems = find_auth_in(paths)
            self._stamps = stamps
            for problem in self.problems:
                log.warning("ignoring %s", problem)
        return self._cached

    def _reload(self) -> Credentials | None:
        self._checked_at = -math.inf
        self._stamps = None
        return self.current()

    # -- for requests ---------------------------------------------------------------

    async def usable(self) -> Credentials:
        """Credentials to send now; refreshed first if they are about to expire."""
        credentials = self.current()
        if credentials is None:
            raise not_signed_in(self.problems)
        if self.oauth is not None and credentials.refresh_due(self._clock()):
            credentials = await self._refresh(credentials, forced=False)
        if not credentials.usable:
            raise not_signed_in([f"{credentials.path} holds no usable access token"])
        return credentials

    async def after_rejection(self, rejected: Credentials) -> Credentials | None:
        """The backend refused `rejected`: newer credentials to retry with, or None."""
        if self.oauth is None or not rejected.refresh_token:
            return None
        renewed = await self._refresh(rejected, forced=True)
        return renewed if renewed.access_token != rejected.access_token else None

    # -- refreshing -------------------------------------------------------------------

    async def _refresh(self, stale: Credentials, *, forced: bool) -> Credentials:
        async with self._lock:
            # Tasks that waited here usually find the refresh done by the first one.
            cached = self._cached
            if cached is not None and self._replaces(cached, stale, forced):
                return cached
            failed = self._failed
            if failed is not None and failed.covers(stale, self._clock()):
                # ... or saw it fail. The file is read again only if it changed.
                fresh = self.current()
                if fresh is not None and self._replaces(fresh, stale, forced):
                    return fresh
                return failed.outcome(stale, self._clock(), forced)
            fresh = self._reload()
            if fresh is not None and self._replaces(fresh, stale, forced):
                return fresh
            try:
                async with self.guard.hold(stale):
                    newest = await self.guard.newest(stale)
                    if self._replaces(newest, stale, forced):
                        return self._adopt(newest)
                    return await self._refresh_locked(newest, forced)
            except RefreshUnavailable as exc:
                return self._cannot_refresh(stale, str(exc), forced)

    def _replaces(self, candidate: Credentials, stale: Credentials, forced: bool) -> bool:
        """Did someone else already refresh `stale` into `candidate`?"""
        return candidate.access_token != stale.access_token and (
            forced or not candidate.refresh_due(self._clock()))

    async def _refresh_locked(self, current: Credentials, forced: bool) -> Credentials:
        assert self.oauth is not None
        try:
            tokens = await self.oauth.refresh(current.refresh_token)
        except OAuthError as exc:
            return self._refresh_failed(current, exc, forced)
        document = merge_tokens(current.raw, tokens.id_token, tokens.access_token,
                                tokens.refresh_token)
        write_private_json(current.path, document)
        refreshed = parse_auth(current.path, document)
        assert refreshed is not None
        await self.guard.publish(refreshed)
        self.refresh_count += 1
        log.info("refreshed the ChatGPT access token (%s)", current.path)
        return self._adopt(refreshed)

    def _adopt(self, credentials: Credentials) -> Credentials:
        self._failed = None
        self._reload()
        if self._cached is None or self._cached.path == credentials.path:
            self._cached = credentials
        return credentials

    def _cannot_refresh(self, stale: Credentials, problem: str, forced: bool) -> Credentials:
        if not forced and not stale.expired(self._clock()):
            log.warning("token refresh postponed, using the current token meanwhile: %s",
                        problem)
        else:
            log.error("cannot refresh the ChatGPT token: %s", problem)
        return self._failing(stale, forced, lambda: UpstreamError(
            "Could not refresh the ChatGPT token: the refresh could not be coordinated with "
            "the other chatmock instances; retry shortly", status=503,
            code="refresh_unavailable"))

    def _refresh_failed(self, current: Credentials, error: OAuthError,
                        forced: bool) -> Credentials:
        if error.needs_login:
            log.error("ChatGPT sign-in is no longer valid: %s. %s", error.message, LOGIN_HINT)
            return self._failing(current, forced, lambda: ClientError(
                f"Your ChatGPT sign-in is no longer valid ({error.message}). {LOGIN_HINT}",
                status=401, error_type="authentication_error", code="login_required"),
                always=True)
        if not forced and not current.expired(self._clock()):
            log.warning("token refresh failed, using the current token meanwhile: %s",
                        error.message)
        return self._failing(current, forced, lambda: UpstreamError(
            f"Could not refresh the ChatGPT token: {error.message}", status=502,
            code="refresh_failed"))

    def _failing(self, current: Credentials, forced: bool, error: Callable[[], ApiError], *,
                 always: bool = False) -> Credentials:
        """Note that refreshing `current` failed (not tried again for `RETRY_SECONDS`), then
        what that means now: `current` while it may still be used, else `error`."""
        self._failed = _Failed(current.access_token, self._clock(), error, always)
        return self._failed.outcome(current, self._clock(), forced)


class _Failed:
    """A refresh of the token `access_token` that failed at `since`, and what that means
    for `RETRY_SECONDS`."""

    __slots__ = ("access_token", "always", "error", "since")

    def __init__(self, access_token: str, since: float, error: Callable[[], ApiError],
                 always: bool) -> None:
        self.access_token = access_token
        self.since = since
        self.error = error  # makes the error each time (a raised one collects its traceback)
        self.always = always  # the issuer refused the refresh token: no access token helps

    def covers(self, stale: Credentials, now: float) -> bool:
        # (a wall clock set back before `since` ends the pause rather than stretching it)
        return (stale.access_token == self.access_token
                and self.since <= now < self.since + RETRY_SECONDS)

    def outcome(self, stale: Credentials, now: float, forced: bool) -> Credentials:
        """`stale` if it may still be used: not rejected (`forced`), not expired."""
        if self.always or forced or stale.expired(now):
            raise self.error()
        return stale
