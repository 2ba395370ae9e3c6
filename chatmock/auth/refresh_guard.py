"""Who may spend a refresh token now, and where the tokens it bought are shared.

Refresh tokens rotate and a reused one is refused (auth.md §6), so of all the
processes holding the same sign-in exactly one may refresh it, and the others
must adopt what it got. `CredentialStore` asks a `RefreshGuard`:

* `hold(stale)`: exclusive, across every process that could refresh it;
* `newest(stale)`: under the hold, the newest credentials anyone has (if they
  are no longer the stale ones, someone else refreshed: adopt them);
* `publish(fresh)`: under the hold, after a refresh, tell the others.

`FileGuard` (the embedded mode) is a lock file beside auth.json and the file
itself: the processes of one machine. `RedisGuard` (fleet mode) is a Redis
lock and a Redis key: the processes of every machine sharing the Redis.

The Redis lock is `SET lock <random token> NX PX <lease>`, kept alive while
held (renewed every third of the lease by compare-and-PEXPIRE) and released by
compare-and-DEL, both Lua scripts, so a holder never touches a lock that
expired and went to someone else. The local file lock is taken under it too
(a process on the same machine not in the fleet). Tokens are published as
`chatmock:auth:<identity>` (the id_token's account and user, hashed: the key
names no one) with their `last_refresh`; `newest` takes whichever of the
published and the on-disk tokens was refreshed last, and writes published ones
into the local auth.json (its refresh token has been spent elsewhere).

When Redis is unavailable, nothing is refreshed: `RefreshUnavailable` (the
store keeps using a token that has not expired yet, else answers 503). A
refresh whose tokens cannot be published is logged as an error: the other
machines would spend the old refresh token.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import secrets
from collections.abc import AsyncIterator
from typing import Protocol

import trio

from chatmock.auth.tokens import (
    AUTH_CLAIM,
    Credentials,
    decode_claims,
    parse_auth,
    read_credentials,
)
from chatmock.errors import ChatmockError
from chatmock.fileio import file_lock, write_private_json
from chatmock.net.redis import RedisClient, RedisError, Script

log = logging.getLogger("chatmock.auth")

LEASE_SECONDS = 30.0
WAIT_SECONDS = 45.0
PUBLISH_ATTEMPTS = 3
PREFIX = "chatmock:"

_RENEW = Script("if redis.call('GET', KEYS[1]) == ARGV[1] then "
                "return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0")
_RELEASE = Script("if redis.call('GET', KEYS[1]) == ARGV[1] then "
                  "return redis.call('DEL', KEYS[1]) end return 0")


class RefreshUnavailable(ChatmockError):
    """The guard cannot tell whether a refresh is safe (its shared state is down)."""


class RefreshGuard(Protocol):
    def hold(self, stale: Credentials) -> contextlib.AbstractAsyncContextManager[None]: ...

    async def newest(self, stale: Credentials) -> Credentials: ...

    async def publish(self, fresh: Credentials) -> None: ...


class FileGuard:
    """The processes of one machine: a lock file beside auth.json, and the file."""

    def hold(self, stale: Credentials) -> contextlib.AbstractAsyncContextManager[None]:
        return file_lock(stale.path.with_name(stale.path.name + ".lock"))

    async def newest(self, stale: Credentials) -> Credentials:
        return read_credentials(stale.path) or stale

    async def publish(self, fresh: Credentials) -> None:
        """Nothing: writing auth.json was the publication."""


class RedisGuard:
    """The processes of every machine sharing one Redis; see the module docstring."""

    def __init__(self, redis: RedisClient, *, lease_seconds: float = LEASE_SECONDS,
                 wait_seconds: float = WAIT_SECONDS) -> None:
        self.redis = redis
        self.lease_ms = math.ceil(lease_seconds * 1000)
        self.wait_seconds = wait_seconds

    @contextlib.asynccontextmanager
    async def hold(self, stale: Credentials) -> AsyncIterator[None]:
        key = PREFIX + "refresh-lock:" + identity(stale)
        token = secrets.token_hex(16)
        await self._acquire(key, token)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._keep_alive, key, token)
                async with FileGuard().hold(stale):
                    yield
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True), contextlib.suppress(RedisError):
                await self.redis.evaluate(_RELEASE, [key], [token])

    async def _acquire(self, key: str, token: str) -> None:
        delay = 0.02
        with trio.move_on_after(self.wait_seconds):
            while True:
                try:
                    if await self.redis.call("SET", key, token, "NX", "PX", self.lease_ms):
                        return
                except RedisError as error:
                    raise RefreshUnavailable(f"cannot take the refresh lock: {error}") from None
                await trio.sleep(delay)
                delay = min(delay * 2, 0.5)
        raise RefreshUnavailable(f"another process held the refresh lock for over "
                                 f"{self.wait_seconds:g} s")

    async def _keep_alive(self, key: str, token: str) -> None:
        while True:
            await trio.sleep(self.lease_ms / 3000)
            try:
                renewed = await self.redis.evaluate(_RENEW, [key], [token, self.lease_ms])
            except RedisError as error:
                renewed, problem = 0, str(error)
            else:
                problem = "it expired"
            if not renewed:
                log.error("lost the token refresh lock (%s): another machine may refresh "
                          "at the same time", problem)
                return

    async def newest(self, stale: Credentials) -> Credentials:
        on_disk = read_credentials(stale.path) or stale
        try:
            raw = await self.redis.call("GET", PREFIX + "auth:" + identity(stale))
        except RedisError as error:
            raise RefreshUnavailable(f"cannot read the shared tokens: {error}") from None
        published = _published(on_disk, raw)
        if published is None or (published.last_refresh or 0) <= (on_disk.last_refresh or 0):
            return on_disk
        write_private_json(stale.path, dict(published.raw))
        log.info("adopted the ChatGPT tokens another chatmock refreshed (%s)", stale.path)
        return published

    async def publish(self, fresh: Credentials) -> None:
        tokens = dict(fresh.raw.get("tokens") or {})
        document = json.dumps({"tokens": tokens, "last_refresh": fresh.raw.get("last_refresh")})
        for attempt in range(1, PUBLISH_ATTEMPTS + 1):
            try:
                await self.redis.call("SET", PREFIX + "auth:" + identity(fresh), document)
                return
            except RedisError as error:
                if attempt == PUBLISH_ATTEMPTS:
                    log.error("refreshed tokens could not be shared through Redis (%s): "
                              "other machines will try the spent refresh token", error)
                    return
            await trio.sleep(self.redis.retry_in + 0.05)


def identity(credentials: Credentials) -> str:
    """A key naming one sign-in (account and user) without naming either."""
    claims = decode_claims(credentials.id_token)
    auth = claims.get(AUTH_CLAIM)
    user = ""
    if isinstance(auth, dict):
        user = str(auth.get("chatgpt_user_id") or auth.get("user_id") or "")
    user = user or str(claims.get("sub") or claims.get("email") or "")
    return hashlib.sha256(f"{credentials.account_id}\0{user}".encode()).hexdigest()[:32]


def _published(local: Credentials, raw: object) -> Credentials | None:
    """The local document with the published tokens in it, if they are readable."""
    if not isinstance(raw, bytes):
        return None
    try:
        document = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(document, dict) or not isinstance(document.get("tokens"), dict):
        return None
    merged = {**local.raw, "tokens": {**dict(local.raw.get("tokens") or {}),
                                      **document["tokens"]},
              "last_refresh": document.get("last_refresh")}
    candidate = parse_auth(local.path, merged)
    return candidate if candidate is not None and candidate.usable else None
