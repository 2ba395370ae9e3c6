"""Usage snapshots shared through a real redis-server: the newest capture wins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trio

from chatmock.net.redis import RedisClient, RedisUnavailable
from chatmock.redis_url import parse_redis_url
from chatmock.state.usage_limits import UsageLimits, UsageSnapshot, Window
from chatmock.state.usage_shared import SharedUsage, read_shared_usage
from chatmock.testing.redis_server import RedisServer

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
HEADERS = [(b"x-codex-primary-used-percent", b"42.5"),
           (b"x-codex-primary-window-minutes", b"300"),
           (b"x-codex-secondary-used-percent", b"7")]


def snapshot(minutes: int, used: float) -> UsageSnapshot:
    return UsageSnapshot(NOW + timedelta(minutes=minutes), Window(used, 300, 60))


async def test_the_newest_capture_wins_whatever_the_order(redis_server: RedisServer) -> None:
    clients = [RedisClient(parse_redis_url(redis_server.url)) for _ in range(2)]
    first, second = (SharedUsage(client, lambda: "acct") for client in clients)
    await first.publish(snapshot(5, 50.0))
    await second.publish(snapshot(1, 10.0))  # captured earlier, published later
    assert await first.latest() == await second.latest() == snapshot(5, 50.0)
    await second.publish(snapshot(6, 60.0))
    assert await first.latest() == snapshot(6, 60.0)
    assert await SharedUsage(clients[0], lambda: "other").latest() is None
    ttl = await clients[0].call("TTL", "chatmock:usage:acct")
    assert isinstance(ttl, int) and ttl > 7 * 24 * 3600
    for client in clients:
        await client.aclose()


async def test_two_servers_show_the_same_figures(redis_server: RedisServer,
                                                 tmp_path: Path) -> None:
    clients = [RedisClient(parse_redis_url(redis_server.url)) for _ in range(2)]
    recorder, viewer = (UsageLimits(tmp_path / f"{n}.json", min_interval=0,
                                    shared=SharedUsage(client, lambda: "acct"))
                        for n, client in enumerate(clients))
    recorded = recorder.record(HEADERS)
    assert recorded is not None
    await recorder.share()
    assert viewer.newest() is None
    await viewer.share()  # what run_writer does every few seconds: read the fleet's
    assert viewer.newest() == recorded  # the viewer never saw these headers
    assert viewer.latest is None
    for client in clients:
        await client.aclose()


async def test_redis_down_the_figures_are_this_process_own(redis_server: RedisServer,
                                                           tmp_path: Path) -> None:
    client = RedisClient(parse_redis_url(redis_server.url), backoff_base=0.01)
    limits = UsageLimits(tmp_path / "limits.json", min_interval=0,
                         shared=SharedUsage(client, lambda: "acct"))
    redis_server.stop()
    recorded = limits.record(HEADERS)
    await limits.share()  # logged, not raised
    assert limits.newest() == recorded
    await client.aclose()


def test_info_reads_the_fleet_figures(redis_server: RedisServer) -> None:
    async def publish() -> None:
        client = RedisClient(parse_redis_url(redis_server.url))
        await SharedUsage(client, lambda: "acct").publish(snapshot(3, 33.0))
        await client.aclose()

    trio.run(publish)
    assert read_shared_usage({"CHATMOCK_STATE": redis_server.url}, "acct") == snapshot(3, 33.0)
    assert read_shared_usage({"CHATGPT_LOCAL_STATE": redis_server.url}, "nobody") is None
    assert read_shared_usage({}, "acct") is None
    redis_server.stop()
    with pytest.raises(RedisUnavailable):
        read_shared_usage({"CHATMOCK_STATE": redis_server.url}, "acct")
