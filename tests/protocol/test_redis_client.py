"""The Redis client against a real redis-server: pipelining, pooling, auth, failures."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trustme

from chatmock.net import tcpstream
from chatmock.net.redis import RedisClient, RedisCommandError, RedisUnavailable, Script
from chatmock.net.resp import ReplyError
from chatmock.redis_url import RedisTarget, parse_redis_url
from chatmock.testing.redis_server import RedisServer, free_port
from tests.conftest import need_redis_server


def client_for(server: RedisServer, **options: float) -> RedisClient:
    settings = {"timeout": 2.0, "backoff_base": 0.05, "backoff_cap": 0.2, **options}
    return RedisClient(parse_redis_url(server.url), **settings)  # type: ignore[arg-type]


async def test_commands_and_reply_types(redis_server: RedisServer) -> None:
    client = client_for(redis_server)
    assert await client.call("SET", "k", b"\x00\xffbytes", "PX", 60_000) == "OK"
    assert await client.call("GET", "k") == b"\x00\xffbytes"
    assert await client.call("GET", "missing") is None
    assert await client.call("INCRBY", "n", 41) == 41
    assert await client.call("RPUSH", "l", "a", "b") == 2
    assert await client.call("LRANGE", "l", 0, -1) == [b"a", b"b"]
    with pytest.raises(RedisCommandError) as refused:
        await client.call("INCR", "l")
    assert refused.value.reply.kind == "WRONGTYPE"
    await client.aclose()


async def test_a_pipeline_is_one_write_and_error_replies_are_values(
        redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[int] = []
    send_all = tcpstream.TCPStream.send_all

    async def counting(self: tcpstream.TCPStream, data: bytes) -> None:
        writes.append(len(data))
        await send_all(self, data)

    client = client_for(redis_server)
    await client.call("PING")  # connected (and counted) before
    monkeypatch.setattr(tcpstream.TCPStream, "send_all", counting)
    commands: list[list[str | int]] = [["SET", f"key{n}", n] for n in range(200)]
    replies = await client.pipeline([*commands, ["INCR", "key0x"], ["LPUSH", "key1", "x"]])
    assert replies[:200] == ["OK"] * 200 and replies[200] == 1
    assert isinstance(replies[201], ReplyError) and replies[201].kind == "WRONGTYPE"
    assert len(writes) == 1
    assert await client.pipeline([["GET", f"key{n}"] for n in range(200)]) == [
        str(n).encode() for n in range(200)]
    await client.aclose()


async def test_many_tasks_share_a_bounded_pool(redis_server: RedisServer) -> None:
    client = RedisClient(parse_redis_url(redis_server.url), pool_size=3)
    results: dict[int, object] = {}

    async def one(n: int) -> None:
        await client.call("SET", f"t{n}", n)
        results[n] = await client.call("GET", f"t{n}")

    async with trio.open_nursery() as nursery:
        for n in range(60):
            nursery.start_soon(one, n)
    assert results == {n: str(n).encode() for n in range(60)}
    clients = redis_server.command(b"INFO", b"clients")
    assert b"connected_clients:4" in clients  # three pooled and the probe itself
    await client.aclose()


async def test_auth_select_and_a_wrong_password(tmp_path: Path) -> None:
    need_redis_server()
    server = RedisServer(tmp_path / "redis", password="s3cret/+@").start()
    try:
        target = parse_redis_url(f"redis://:{'s3cret%2F%2B%40'}@127.0.0.1:{server.port}/3")
        client = RedisClient(target)
        await client.call("SET", "where", "db3")
        await client.call("ACL", "SETUSER", "alice", "on", ">pw", "~*", "+@all")
        zero = RedisClient(RedisTarget("127.0.0.1", server.port, 0, "alice", "pw"))
        assert await zero.call("GET", "where") is None
        assert await zero.call("SELECT", 3) == "OK"
        wrong = RedisClient(RedisTarget("127.0.0.1", server.port, password="nope"))
        with pytest.raises(RedisUnavailable) as refused:
            await wrong.call("PING")
        assert "WRONGPASS" in str(refused.value) and "nope" not in str(refused.value)
        for each in (client, zero, wrong):
            await each.aclose()
    finally:
        server.stop()


async def test_reconnects_after_the_server_restarts(redis_server: RedisServer) -> None:
    client = client_for(redis_server)
    await client.pipeline([["SET", "a", 1], ["SET", "b", 2]])
    redis_server.restart()  # the pooled connection is now dead; the data is gone
    assert await client.call("GET", "a") is None
    assert client.available
    await client.aclose()


def healthy(client: RedisClient) -> bool:
    """Read afresh (a function, so a type checker keeps no narrowing from earlier asserts)."""
    return client.available and not client.problem


async def test_a_server_that_is_down_fails_fast_then_is_tried_again(
        redis_server: RedisServer) -> None:
    client = client_for(redis_server)
    await client.call("PING")
    redis_server.stop()
    with pytest.raises(RedisUnavailable, match="connect"):
        await client.call("PING")
    assert not client.available and client.problem
    with pytest.raises(RedisUnavailable, match="next attempt"):
        await client.call("PING")  # within the backoff: no connection attempt at all
    redis_server.start()
    await trio.sleep(0.25)  # beyond the capped backoff
    assert await client.call("PING") == "PONG"
    assert healthy(client)
    await client.aclose()


async def test_the_backoff_grows_and_is_capped() -> None:
    client = RedisClient(RedisTarget("127.0.0.1", free_port()), backoff_base=0.01,
                         backoff_cap=0.08)
    waits: list[float] = []
    for _ in range(7):
        with pytest.raises(RedisUnavailable):
            await client.call("PING")
        waits.append(client._retry_at - trio.current_time())
        await trio.sleep(max(0.0, waits[-1]) + 0.001)
    assert waits[0] <= 0.01 and max(waits) <= 0.08 and waits[-1] >= 0.04


async def test_a_server_that_stops_answering_times_out(redis_server: RedisServer) -> None:
    client = client_for(redis_server, timeout=0.3)
    await client.call("SET", "k", "v")
    redis_server.pause()
    try:
        with trio.fail_after(2):
            with pytest.raises(RedisUnavailable, match=r"no answer within 0\.3 s"):
                await client.call("GET", "k")
            with pytest.raises(RedisUnavailable, match="next attempt"):
                await client.call("GET", "k")
    finally:
        redis_server.resume()
    await trio.sleep(0.25)
    assert await client.call("GET", "k") == b"v"
    await client.aclose()


async def test_a_cancelled_call_never_hands_its_reply_to_the_next(
        redis_server: RedisServer) -> None:
    client = client_for(redis_server, timeout=5)
    await client.pipeline([["SET", "first", "1"], ["SET", "second", "2"]])
    redis_server.pause()
    with trio.move_on_after(0.2):
        await client.call("GET", "first")  # sent, never answered: cancelled
    redis_server.resume()
    assert await client.call("GET", "second") == b"2"
    await client.aclose()


async def test_scripts_are_sent_in_full_only_when_missing(redis_server: RedisServer) -> None:
    client = client_for(redis_server)
    script = Script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    assert await client.evaluate(script, ["n"], [2]) == 2
    assert await client.call("SCRIPT", "EXISTS", script.sha) == [1]
    await client.call("SCRIPT", "FLUSH")
    assert await client.pipeline([script.call(["n"], [3]), ["GET", "m"],
                                  script.call(["m"], [1])]) == [5, None, 1]
    with pytest.raises(RedisCommandError):
        await client.evaluate(Script("return redis.call('NOPE')"), [])
    await client.aclose()


async def test_tls(tmp_path: Path, trusted_ca: trustme.CA) -> None:
    need_redis_server()
    certificate = trusted_ca.issue_cert("127.0.0.1")
    chain, key = tmp_path / "chain.pem", tmp_path / "key.pem"
    certificate.private_key_and_cert_chain_pem.write_to_path(str(chain))
    certificate.private_key_pem.write_to_path(str(key))
    server = RedisServer(tmp_path / "redis", tls_files=(chain, key)).start()
    try:
        client = RedisClient(parse_redis_url(f"rediss://127.0.0.1:{server.tls_port}/0"))
        assert await client.call("SET", "secure", "yes") == "OK"
        assert await client.call("GET", "secure") == b"yes"
        await client.aclose()
        untrusted = RedisClient(RedisTarget("localhost", server.tls_port, tls=True))
        with pytest.raises(RedisUnavailable, match="cannot connect"):
            await untrusted.call("PING")  # the certificate names 127.0.0.1 only
    finally:
        server.stop()


def test_urls() -> None:
    target = parse_redis_url("rediss://bob:p%40ss@[::1]:6380/2")
    assert target == RedisTarget("::1", 6380, 2, "bob", "p@ss", tls=True)
    assert str(target) == "rediss://bob@[::1]:6380/2" and "p@ss" not in repr(target)
    assert parse_redis_url("redis://localhost").port == 6379
    for bad in ("http://x", "redis://", "redis://h/x", "redis://h:99999", "redis://h/0?db=1"):
        with pytest.raises(ValueError):
            parse_redis_url(bad)
