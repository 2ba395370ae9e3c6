"""The account pool's state in a real redis-server: marks and affinity shared by processes."""

from __future__ import annotations

import pytest

from chatmock.net.redis import RedisClient
from chatmock.redis_url import parse_redis_url
from chatmock.state.pool_state import Mark, RedisPoolState
from chatmock.testing.redis_server import RedisServer


def states(server: RedisServer, count: int = 2) -> list[RedisPoolState]:
    return [RedisPoolState(RedisClient(parse_redis_url(server.url), backoff_base=0.01), ttl=60)
            for _ in range(count)]


async def close(*pool: RedisPoolState) -> None:
    for state in pool:
        await state.redis.aclose()


async def test_affinity_and_marks_made_by_one_are_seen_by_the_other(
        redis_server: RedisServer) -> None:
    one, two = states(redis_server)
    assert (await two.view(["k1", "k2"])).owner is None
    await one.bind(["k1", "k2"], "acct-a/3")
    await one.mark("acct-b", Mark(until=2e9, reason="usage limit"))
    seen = await two.view(["nope", "k2"])
    assert seen.owner == "acct-a/3"
    assert seen.marks == {"acct-b": Mark(until=2e9, reason="usage limit")}
    assert await two.marks() == seen.marks
    ttl = await one.redis.call("TTL", "chatmock:pool:aff:k2")
    assert isinstance(ttl, int) and 0 < ttl <= 60
    await one.redis.call("EXPIRE", "chatmock:pool:aff:k2", 5)
    await two.view(["k2"])  # a turn refreshes the conversation's TTL
    refreshed = await one.redis.call("TTL", "chatmock:pool:aff:k2")
    assert isinstance(refreshed, int) and refreshed > 5
    await close(one, two)


async def test_redis_down_the_process_goes_on_with_what_it_knows(
        redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    (state,) = states(redis_server, 1)
    await state.mark("acct-a", Mark(until=2e9, reason="usage limit"))
    redis_server.stop()
    await state.bind(["k"], "acct-b")
    await state.mark("acct-c", Mark(login="digest"))
    view = await state.view(["k"])
    assert view.owner == "acct-b"
    assert set(view.marks) == {"acct-a", "acct-c"}
    assert caplog.text.count("account pool state not shared through Redis") == 1
    await close(state)
