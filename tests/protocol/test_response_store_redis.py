"""The Redis response store against a real redis-server: chains, items, TTL, outages."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable
from typing import Any, cast

import pytest
import trio

from chatmock.net.redis import RedisClient
from chatmock.redis_url import parse_redis_url
from chatmock.state.response_store_redis import RedisResponseStore, StoreUnavailable
from chatmock.testing.redis_server import RedisServer
from chatmock.turns import StoredResponse, StoreQuery

TTL = 60.0
Opener = Callable[..., RedisResponseStore]


@pytest.fixture
async def store_on(redis_server: RedisServer) -> AsyncIterator[Opener]:
    """Stores on the test's server, each with its own client (a process of its own)."""
    opened: list[RedisClient] = []

    def open_store(**options: float) -> RedisResponseStore:
        client = RedisClient(parse_redis_url(redis_server.url), timeout=1.0, backoff_base=0.05,
                             backoff_cap=0.1)
        opened.append(client)
        return RedisResponseStore(client, ttl_seconds=TTL, **options)  # type: ignore[arg-type]

    yield open_store
    for client in opened:
        await client.aclose()


def turn(response_id: str, *item_ids: str, text: str = "hello") -> StoredResponse:
    context = [{"type": "message", "role": "user", "content": [{"type": "input_text",
                                                                "text": text}]}]
    output: list[dict[str, Any]] = [{"type": "reasoning", "id": item_id, "summary": [],
               "encrypted_content": "gAAA" + item_id} for item_id in item_ids]
    output.append({"type": "message", "role": "assistant", "content": [
        {"type": "output_text", "text": "hi \ud800 é"}]})
    return StoredResponse(response_id, "be brief", context, output, 1_700_000_000.25)


async def test_a_turn_and_its_items_round_trip(
        redis_server: RedisServer, store_on: Opener) -> None:
    writer, reader = store_on(), store_on()  # two processes
    entry = turn("resp_1", "rs_a", "rs_b")
    await writer.put(entry)
    answer = await reader.look_up(StoreQuery("resp_1", ("rs_b", "rs_missing", "rs_a")))
    assert answer.previous == entry
    assert answer.items == {"rs_a": entry.output[0], "rs_b": entry.output[1]}
    assert (await reader.look_up(StoreQuery("resp_other"))).previous is None
    health = reader.health()
    assert health["kind"] == "redis" and health["available"] and health["unsent"] == 0
    assert health["redis"] == f"redis://127.0.0.1:{redis_server.port}/0"


async def ttls(redis: RedisClient, keys: list[str]) -> list[int]:
    """The keys' PTTLs in milliseconds (integer replies)."""
    replies = await redis.pipeline([["PTTL", key] for key in keys])
    assert all(isinstance(reply, int) for reply in replies)
    return [int(cast(int, reply)) for reply in replies]


async def test_ttl_counts_from_the_last_access(
        redis_server: RedisServer, store_on: Opener) -> None:
    store = store_on()
    redis = store.redis
    await store.put(turn("resp_1", "rs_a", "rs_b"))
    keys = ["chatmock:turn:resp_1", "chatmock:item:rs_a", "chatmock:item:rs_b"]
    assert all(55_000 < ttl <= 60_000 for ttl in await ttls(redis, keys))
    await redis.pipeline([["PEXPIRE", key, 5_000] for key in keys])
    await store.look_up(StoreQuery("resp_1"))
    assert all(ttl > 55_000 for ttl in await ttls(redis, keys))
    await redis.pipeline([["PEXPIRE", key, 5_000] for key in keys])
    await store.look_up(StoreQuery(item_ids=("rs_b",)))  # an item refreshes its turn too
    assert all(ttl > 55_000 for ttl in await ttls(redis, keys))


async def test_an_item_lives_only_as_long_as_its_turn(
        redis_server: RedisServer, store_on: Opener) -> None:
    store = store_on()
    await store.put(turn("resp_1", "rs_a"))
    await store.redis.call("DEL", "chatmock:turn:resp_1")
    assert (await store.look_up(StoreQuery(item_ids=("rs_a",)))).items == {}


async def test_large_turns_and_the_size_bound(
        redis_server: RedisServer, store_on: Opener, caplog: pytest.LogCaptureFixture) -> None:
    store = store_on(max_bytes=200_000)
    big = turn("resp_big", "rs_a", text=os.urandom(60_000).hex())  # decoded off the loop
    await store.put(big)
    assert (await store.look_up(StoreQuery("resp_big"))).previous == big
    with caplog.at_level(logging.WARNING, logger="chatmock"):
        await store.put(turn("resp_huge", text=os.urandom(250_000).hex()))
    assert "larger than --responses-max-bytes" in caplog.text
    assert (await store.look_up(StoreQuery("resp_huge"))).previous is None


async def test_unreadable_values_are_missing(
        redis_server: RedisServer, store_on: Opener, caplog: pytest.LogCaptureFixture) -> None:
    store = store_on()
    await store.redis.pipeline([["SET", "chatmock:turn:r1", b"garbage"],
                                ["SET", "chatmock:turn:r2", b"1.5 x\nnot zlib"],
                                ["SET", "chatmock:item:i1", b"r2\nnot zlib"]])
    for query in (StoreQuery("r1"), StoreQuery("r2"), StoreQuery(item_ids=("i1",))):
        answer = await store.look_up(query)
        assert answer.previous is None and answer.items == {}
    assert "unreadable" in caplog.text


async def test_redis_down_a_chained_look_up_is_a_503(
        redis_server: RedisServer, store_on: Opener) -> None:
    store = store_on()
    await store.put(turn("resp_1"))
    redis_server.stop()
    with pytest.raises(StoreUnavailable) as refused:
        await store.look_up(StoreQuery("resp_1"))
    error = refused.value
    assert error.status == 503 and error.code == "state_unavailable"
    assert dict(error.headers)[b"retry-after"] == b"1"
    assert "127.0.0.1" not in error.message


async def test_turns_written_while_redis_is_down_are_kept_then_sent(
        redis_server: RedisServer, store_on: Opener, caplog: pytest.LogCaptureFixture) -> None:
    first, second = store_on(), store_on()
    redis_server.stop()
    with caplog.at_level(logging.WARNING, logger="chatmock"):
        await first.put(turn("resp_1", "rs_a"))
    assert "kept in this process" in caplog.text and first.health()["unsent"] == 1
    answer = await first.look_up(StoreQuery("resp_1", ("rs_a",)))  # no Redis needed
    assert answer.previous is not None and set(answer.items) == {"rs_a"}
    redis_server.start()
    await trio.sleep(0.15)  # past the backoff
    await first.put(turn("resp_2"))
    assert first.health()["unsent"] == 0
    assert (await second.look_up(StoreQuery("resp_1"))).previous == turn("resp_1", "rs_a")


async def test_unsent_turns_are_flushed_at_close(
        redis_server: RedisServer, store_on: Opener) -> None:
    first = store_on()
    redis_server.pause()
    try:
        await first.put(turn("resp_1"))
    finally:
        redis_server.resume()
    await trio.sleep(0.15)
    await first.aclose()
    assert (await store_on().look_up(StoreQuery("resp_1"))).previous is not None


async def test_a_full_redis_that_refuses_writes_is_logged(
        redis_server: RedisServer, store_on: Opener, caplog: pytest.LogCaptureFixture) -> None:
    store = store_on()
    await store.redis.pipeline([["CONFIG", "SET", "maxmemory-policy", "noeviction"],
                                ["CONFIG", "SET", "maxmemory", "1"]])
    with caplog.at_level(logging.ERROR, logger="chatmock"):
        await store.put(turn("resp_1"))
    assert "Redis refused to store response resp_1" in caplog.text
    assert "volatile-lru" in caplog.text


async def test_the_background_task_advises_then_resends(
        redis_server: RedisServer, store_on: Opener, caplog: pytest.LogCaptureFixture) -> None:
    first, second = store_on(), store_on()
    redis_server.pause()
    try:
        await first.put(turn("resp_1"))
    finally:
        redis_server.resume()
    await trio.sleep(0.15)  # past the backoff
    with caplog.at_level(logging.INFO, logger="chatmock"):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(first.maintain)
            with trio.fail_after(3):
                while first.health()["unsent"]:
                    await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
    assert "shared through Redis" in caplog.text and "volatile-lru" in caplog.text
    assert (await second.look_up(StoreQuery("resp_1"))).previous == turn("resp_1")
