"""The fleet's refresh guard against a real redis-server: one refresh per token, shared."""

from __future__ import annotations

import json
import shutil
import stat
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import trio

from chatmock.auth.oauth import TokenSet
from chatmock.auth.refresh_guard import RedisGuard, RefreshUnavailable, identity
from chatmock.auth.store import CredentialStore
from chatmock.auth.tokens import Credentials, read_credentials
from chatmock.errors import UpstreamError
from chatmock.net.redis import RedisClient
from chatmock.redis_url import parse_redis_url
from chatmock.testing.credentials import fake_tokens, make_jwt, write_auth_file
from chatmock.testing.redis_server import RedisServer

GuardFactory = Callable[..., RedisGuard]


class RotatingOAuth:
    """Refresh tokens rotate and a spent one is refused, as the real issuer does."""

    def __init__(self) -> None:
        self.spent: list[str] = []

    async def refresh(self, refresh_token: str) -> TokenSet:
        assert refresh_token not in self.spent, f"{refresh_token} was spent twice"
        self.spent.append(refresh_token)
        await trio.sleep(0.05)
        fresh = fake_tokens(expires_in=3600)
        return TokenSet(fresh["id_token"], make_jwt({"exp": int(time.time()) + 3600,
                                                     "n": len(self.spent)}),
                        f"rt-{len(self.spent)}")


@pytest.fixture
async def guards(redis_server: RedisServer) -> AsyncIterator[GuardFactory]:
    """Guards on the test's server, each with its own client (a machine of its own)."""
    clients: list[RedisClient] = []

    def make(**options: float) -> RedisGuard:
        client = RedisClient(parse_redis_url(redis_server.url), timeout=1.0,
                             backoff_base=0.05, backoff_cap=0.1)
        clients.append(client)
        return RedisGuard(client, **options)

    yield make
    for client in clients:
        await client.aclose()


def machines(tmp_path: Path, count: int, expires_in: float) -> list[Path]:
    """`count` homes holding copies of one sign-in (one machine each)."""
    first = write_auth_file(tmp_path / "m0", expires_in=expires_in)
    homes = [tmp_path / f"m{n}" for n in range(count)]
    for home in homes[1:]:
        home.mkdir()
        shutil.copy(first, home / "auth.json")
    return homes


def credentials_in(home: Path) -> Credentials:
    found = read_credentials(home / "auth.json")
    assert found is not None
    return found


async def test_machines_refresh_one_sign_in_exactly_once(
        tmp_path: Path, guards: GuardFactory) -> None:
    oauth = RotatingOAuth()
    homes = machines(tmp_path, 3, expires_in=-10)
    stores = [CredentialStore({"CHATGPT_LOCAL_HOME": str(home)}, oauth=oauth,  # type: ignore[arg-type]
                              recheck_seconds=0, guard=guards()) for home in homes]
    used: list[str] = []

    async def request(store: CredentialStore) -> None:
        used.append((await store.usable()).access_token)

    async with trio.open_nursery() as nursery:
        for n in range(30):
            nursery.start_soon(request, stores[n % 3])
    assert oauth.spent == ["rt_fake_refresh_token"]
    assert len(set(used)) == 1
    for home in homes:  # every machine's file now holds the one refresh's tokens
        saved = credentials_in(home)
        assert saved.refresh_token == "rt-1" and saved.access_token == used[0]
        assert stat.S_IMODE((home / "auth.json").stat().st_mode) == 0o600
    rejected = await stores[2].usable()
    renewed = await stores[2].after_rejection(rejected)  # rejected by the backend: once more
    assert renewed is not None and oauth.spent == ["rt_fake_refresh_token", "rt-1"]
    rejected = await stores[0].usable()  # the same (rt-1) token, from machine 0's file
    assert (await stores[0].after_rejection(rejected)) == credentials_in(homes[0])
    assert len(oauth.spent) == 2 and credentials_in(homes[0]).refresh_token == "rt-2"


async def test_the_lock_excludes_and_is_kept_alive(tmp_path: Path, guards: GuardFactory,
                                                   redis_server: RedisServer) -> None:
    first, second = guards(lease_seconds=0.3), guards(lease_seconds=0.3, wait_seconds=0.2)
    stale = credentials_in(machines(tmp_path, 1, expires_in=3600)[0])
    key = "chatmock:refresh-lock:" + identity(stale)
    async with first.hold(stale):
        await trio.sleep(0.8)  # beyond the lease: renewed meanwhile
        with pytest.raises(RefreshUnavailable, match="held the refresh lock"):
            async with second.hold(stale):
                pass
    assert await first.redis.call("EXISTS", key) == 0
    async with second.hold(stale):
        await first.redis.call("SET", key, "someone-else")  # as if ours had expired
    assert await first.redis.call("GET", key) == b"someone-else"  # not ours to delete


async def test_older_published_tokens_are_not_adopted(tmp_path: Path,
                                                      guards: GuardFactory) -> None:
    guard = guards()
    home = machines(tmp_path, 1, expires_in=3600)[0]
    local = credentials_in(home)
    stale = {"tokens": {**local.raw["tokens"], "access_token": "old"},
             "last_refresh": "2020-01-01T00:00:00Z"}
    await guard.redis.call("SET", "chatmock:auth:" + identity(local), json.dumps(stale))
    assert await guard.newest(local) == local


async def test_redis_down_keeps_a_valid_token_and_refuses_an_expired_one(
        tmp_path: Path, guards: GuardFactory, redis_server: RedisServer) -> None:
    oauth = RotatingOAuth()
    due, expired = machines(tmp_path / "due", 1, expires_in=120)[0], \
        machines(tmp_path / "expired", 1, expires_in=-10)[0]
    redis_server.stop()
    valid = CredentialStore({"CHATGPT_LOCAL_HOME": str(due)}, oauth=oauth,  # type: ignore[arg-type]
                            guard=guards())
    assert (await valid.usable()).access_token == credentials_in(due).access_token
    lapsed = CredentialStore({"CHATGPT_LOCAL_HOME": str(expired)},
                             oauth=oauth, guard=guards())  # type: ignore[arg-type]
    with pytest.raises(UpstreamError) as refused:
        await lapsed.usable()
    assert refused.value.status == 503 and refused.value.code == "refresh_unavailable"
    assert oauth.spent == []
