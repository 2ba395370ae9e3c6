"""CredentialStore refresh logic with a scripted OAuth client (no network)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import trio

from chatmock.auth.oauth import OAuthError, TokenSet
from chatmock.auth.store import RETRY_SECONDS, CredentialStore
from chatmock.errors import ClientError, UpstreamError
from chatmock.testing.credentials import fake_tokens, make_jwt, write_auth_file


class ScriptedOAuth:
    """Stands in for OAuthClient.refresh: counts calls, can fail, can be slow."""

    def __init__(self, error: OAuthError | None = None) -> None:
        self.calls: list[str] = []
        self.error = error

    async def refresh(self, refresh_token: str) -> TokenSet:
        self.calls.append(refresh_token)
        await trio.sleep(0.01)
        if self.error is not None:
            raise self.error
        fresh = fake_tokens(expires_in=3600)
        return TokenSet(fresh["id_token"], make_jwt({"exp": int(time.time()) + 3600,
                                                     "n": len(self.calls)}),
                        f"rt-{len(self.calls)}")


def store_with(tmp_path: Path, oauth: ScriptedOAuth, expires_in: float) -> CredentialStore:
    path = write_auth_file(tmp_path, expires_in=expires_in)
    document = json.loads(path.read_text())
    document["extra"] = "kept"
    path.write_text(json.dumps(document))
    return CredentialStore({"CHATGPT_LOCAL_HOME": str(tmp_path)},
                           oauth=oauth, recheck_seconds=0)  # type: ignore[arg-type]


async def test_fresh_token_is_not_refreshed(tmp_path: Path) -> None:
    oauth = ScriptedOAuth()
    store = store_with(tmp_path, oauth, expires_in=3600)
    await store.usable()
    assert oauth.calls == []


async def test_concurrent_callers_share_one_refresh(tmp_path: Path) -> None:
    oauth = ScriptedOAuth()
    store = store_with(tmp_path, oauth, expires_in=-10)
    results: list[Any] = []

    async def call() -> None:
        results.append(await store.usable())

    async with trio.open_nursery() as nursery:
        for _ in range(100):
            nursery.start_soon(call)
    assert len(oauth.calls) == 1
    assert len({credentials.access_token for credentials in results}) == 1
    saved = json.loads((tmp_path / "auth.json").read_text())
    assert saved["tokens"]["refresh_token"] == "rt-1"
    assert saved["extra"] == "kept"


async def test_rejection_refreshes_even_a_fresh_token(tmp_path: Path) -> None:
    oauth = ScriptedOAuth()
    store = store_with(tmp_path, oauth, expires_in=3600)
    rejected = await store.usable()
    renewed = await store.after_rejection(rejected)
    assert renewed is not None and renewed.access_token != rejected.access_token
    assert await store.after_rejection(rejected) == renewed  # already replaced: no new call
    assert len(oauth.calls) == 1


@pytest.mark.parametrize("code", ["refresh_token_reused", "revoked", "deactivated_workspace"])
async def test_dead_refresh_token_asks_for_login(tmp_path: Path, code: str) -> None:
    store = store_with(tmp_path, ScriptedOAuth(OAuthError(code, needs_login=True)),
                       expires_in=-10)
    with pytest.raises(ClientError) as caught:
        await store.usable()
    assert caught.value.status == 401 and "chatmock login" in caught.value.message


async def test_transient_failure_keeps_a_still_valid_token(tmp_path: Path) -> None:
    store = store_with(tmp_path, ScriptedOAuth(OAuthError("HTTP 500")), expires_in=120)
    credentials = await store.usable()  # within the margin, refresh fails, token still valid
    assert credentials.access_token


async def test_transient_failure_with_an_expired_token_is_a_502(tmp_path: Path) -> None:
    store = store_with(tmp_path, ScriptedOAuth(OAuthError("HTTP 500")), expires_in=-10)
    with pytest.raises(UpstreamError) as caught:
        await store.usable()
    assert caught.value.status == 502


async def test_a_token_refreshed_by_another_process_is_adopted(tmp_path: Path) -> None:
    oauth = ScriptedOAuth()
    store = store_with(tmp_path, oauth, expires_in=-10)
    stale = store.current()
    assert stale is not None
    write_auth_file(tmp_path, expires_in=3600)  # "another process" refreshed meanwhile
    credentials = await store.usable()
    assert credentials.access_token != stale.access_token
    assert oauth.calls == []


async def test_malformed_auth_file_is_named_in_the_401(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "auth.json").write_text("{not json")
    store = CredentialStore({"CHATGPT_LOCAL_HOME": str(tmp_path)})
    with pytest.raises(ClientError) as caught:
        await store.usable()
    assert str(tmp_path / "auth.json") in caught.value.message
    assert "not valid JSON" in caught.value.message


class Clock:
    """The store's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def store_on(tmp_path: Path, oauth: ScriptedOAuth, expires_in: float,
             clock: Clock) -> CredentialStore:
    write_auth_file(tmp_path, expires_in=expires_in)
    return CredentialStore({"CHATGPT_LOCAL_HOME": str(tmp_path)}, oauth=oauth,  # type: ignore[arg-type]
                           recheck_seconds=0, clock=clock)


async def test_a_failed_refresh_is_not_tried_again_by_every_request(tmp_path: Path) -> None:
    # Within the margin, the issuer failing: one attempt for a hundred requests that all
    # go on with the current token, none more until RETRY_SECONDS have passed.
    oauth, clock = ScriptedOAuth(OAuthError("HTTP 500")), Clock()
    store = store_on(tmp_path, oauth, 120, clock)
    results: list[str] = []

    async def call() -> None:
        results.append((await store.usable()).access_token)

    async with trio.open_nursery() as nursery:
        for _ in range(100):
            nursery.start_soon(call)
    assert len(oauth.calls) == 1 and len(set(results)) == 1 and len(results) == 100
    clock.now += RETRY_SECONDS - 1
    await store.usable()
    assert len(oauth.calls) == 1
    clock.now += 2
    await store.usable()
    assert len(oauth.calls) == 2


async def test_an_expired_token_whose_refresh_failed_fails_at_once(tmp_path: Path) -> None:
    oauth, clock = ScriptedOAuth(OAuthError("HTTP 500")), Clock()
    store = store_on(tmp_path, oauth, -10, clock)
    statuses: list[int] = []

    async def call() -> None:
        with pytest.raises(UpstreamError) as caught:
            await store.usable()
        statuses.append(caught.value.status)

    async with trio.open_nursery() as nursery:
        for _ in range(50):
            nursery.start_soon(call)
    assert statuses == [502] * 50 and len(oauth.calls) == 1
    with pytest.raises(UpstreamError) as caught:  # a fresh error each time, not one reraised
        await store.usable()
    assert 0 < traceback_depth(caught.value) < 20


def traceback_depth(error: BaseException) -> int:
    depth, walk = 0, error.__traceback__
    while walk is not None:
        depth, walk = depth + 1, walk.tb_next
    return depth


async def test_a_refused_refresh_token_is_not_offered_again(tmp_path: Path) -> None:
    oauth, clock = ScriptedOAuth(OAuthError("refresh_token_reused", needs_login=True)), Clock()
    store = store_on(tmp_path, oauth, 120, clock)  # not expired: the 401 all the same
    for _ in range(3):
        with pytest.raises(ClientError) as caught:
            await store.usable()
        assert caught.value.status == 401
    assert len(oauth.calls) == 1


async def test_a_rejected_token_is_not_refreshed_again_while_the_issuer_fails(
        tmp_path: Path) -> None:
    oauth, clock = ScriptedOAuth(OAuthError("HTTP 500")), Clock()
    store = store_on(tmp_path, oauth, 3600, clock)
    rejected = await store.usable()
    for _ in range(3):
        with pytest.raises(UpstreamError):
            await store.after_rejection(rejected)
    assert len(oauth.calls) == 1


async def test_a_token_another_process_wrote_ends_the_pause(tmp_path: Path) -> None:
    oauth, clock = ScriptedOAuth(OAuthError("HTTP 500")), Clock()
    store = store_on(tmp_path, oauth, -10, clock)
    with pytest.raises(UpstreamError):
        await store.usable()
    write_auth_file(tmp_path, expires_in=3600)  # refreshed elsewhere
    assert (await store.usable()).access_token
    assert len(oauth.calls) == 1


async def test_a_clock_set_back_does_not_stretch_the_pause(tmp_path: Path) -> None:
    # The pause is counted on the store's (wall) clock: a clock set back an hour (NTP, a
    # resumed VM) must not keep a rejected token from being refreshed for that hour.
    oauth, clock = ScriptedOAuth(OAuthError("HTTP 500")), Clock()
    store = store_on(tmp_path, oauth, 3600, clock)
    rejected = await store.usable()
    with pytest.raises(UpstreamError):
        await store.after_rejection(rejected)
    clock.now -= 3600
    clock.now += RETRY_SECONDS + 1
    with pytest.raises(UpstreamError):
        await store.after_rejection(rejected)
    assert len(oauth.calls) == 2
