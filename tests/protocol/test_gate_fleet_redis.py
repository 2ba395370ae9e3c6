"""Provider gates sharing their permits through a real redis-server (upstream/gate_fleet.py).

Each `GateLeases` (with its own `RedisClient`) stands for one chatmock process.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from chatmock.net.redis import RedisClient
from chatmock.redis_url import parse_redis_url
from chatmock.state.gate_leases import GateLeases, keys
from chatmock.testing.redis_server import RedisServer
from chatmock.upstream.gate import GateBusy
from chatmock.upstream.gate_fleet import FleetGate

PROVIDER = "xai"


def process(server: RedisServer, lease_seconds: float = 15.0) -> GateLeases:
    return GateLeases(RedisClient(parse_redis_url(server.url), backoff_base=0.01,
                                  backoff_cap=0.05), lease_seconds=lease_seconds)


def gate(leases: GateLeases, permits: int, queue_timeout: float) -> FleetGate:
    return FleetGate(PROVIDER, permits, queue_timeout=queue_timeout, leases=leases)


@asynccontextmanager
async def running(*processes: GateLeases) -> AsyncIterator[trio.Nursery]:
    """Each process's renewal task, stopped (and its leases given back) at the end."""
    async with trio.open_nursery() as nursery:
        for leases in processes:
            nursery.start_soon(leases.maintain)
        yield nursery
        nursery.cancel_scope.cancel()
    for leases in processes:
        await leases.sync()
        await leases.redis.aclose()


async def fleet_counts(redis: RedisClient) -> list[object]:
    return [await redis.call("ZCARD", key) for key in keys(PROVIDER)]


async def test_two_processes_never_hold_more_than_n_permits_together(
        redis_server: RedisServer) -> None:
    one, two = process(redis_server), process(redis_server)
    gates = [gate(one, 3, 20.0), gate(two, 3, 20.0)]
    holding, most, done = 0, 0, 0
    observer = RedisClient(parse_redis_url(redis_server.url))

    async def request(number: int) -> None:
        nonlocal holding, most, done
        with trio.move_on_after(random.choice([0.001, 0.01, 0.05, 0.2, 10.0])):
            async with gates[number % 2].slot(f"client{number % 5}"):
                holding += 1
                most = max(most, holding)
                try:
                    assert (await fleet_counts(observer))[0] <= 3  # type: ignore[operator]
                    await trio.sleep(random.uniform(0, 0.03))
                finally:
                    holding -= 1
                done += 1

    async with running(one, two), trio.open_nursery() as nursery:
        for number in range(120):
            nursery.start_soon(request, number)
    assert most == 3 and done >= 10
    assert await fleet_counts(observer) == [0, 0, 0]
    assert [g.free for g in gates] == [3, 3]
    assert all(g.stats().fleet_waiting == 0 and g.stats().scope == "fleet" for g in gates)
    await observer.aclose()


async def test_a_dead_processs_lease_expires(redis_server: RedisServer) -> None:
    dead, alive = process(redis_server, lease_seconds=0.4), process(redis_server)
    await gate(dead, 1, 1.0).acquire("gone")  # never released, never renewed
    async with running(alive):
        with pytest.raises(GateBusy):
            await gate(alive, 1, 0.1).acquire("early")
        started = trio.current_time()
        async with gate(alive, 1, 3.0).slot("later"):
            assert 0.15 < trio.current_time() - started < 2.0
    await dead.redis.aclose()


async def test_renewal_keeps_a_long_streams_lease(redis_server: RedisServer) -> None:
    holder, other = process(redis_server, lease_seconds=0.5), process(redis_server)
    async with running(holder, other):
        held = await gate(holder, 1, 1.0).acquire("long stream")
        with pytest.raises(GateBusy) as busy:
            await gate(other, 1, 2.0).acquire("waits")  # four leases long
        assert busy.value.status == 429 and busy.value.retry_after >= 1
        held.release()
        with trio.fail_after(1.0):
            async with gate(other, 1, 1.0).slot("now"):
                pass


async def test_waiters_are_served_first_come_first_served_across_processes(
        redis_server: RedisServer) -> None:
    one, two = process(redis_server), process(redis_server)
    gates, order = [gate(one, 1, 10.0), gate(two, 1, 10.0)], []

    async def request(which: int, name: str) -> None:
        async with gates[which].slot(name):
            order.append(name)
            await trio.sleep(0.1)

    async with running(one, two), trio.open_nursery() as nursery:
        nursery.start_soon(request, 0, "first")
        await trio.sleep(0.02)
        nursery.start_soon(request, 1, "second")  # the other process
        await trio.sleep(0.02)
        nursery.start_soon(request, 0, "third")  # polls, but queued behind "second"
    assert order == ["first", "second", "third"]


async def test_redis_down_the_gate_counts_in_its_process_and_comes_back(
        redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "chatmock.gate")
    leases = process(redis_server)
    local = gate(leases, 1, 0.2)
    async with running(leases):
        redis_server.stop()
        held = await local.acquire("during the outage")
        assert local.stats().scope == "process (Redis unavailable)"
        with pytest.raises(GateBusy):  # the local limit still holds
            await local.acquire("second")
        held.release()
        async with local.slot("again"):
            pass
        redis_server.start()
        with trio.fail_after(3):
            while True:
                async with local.slot("after"):
                    if local.stats().scope == "fleet":
                        break
                await trio.sleep(0.05)
    assert caplog.text.count("counting permits in this process only") == 1
    assert "the limit is fleet-wide again" in caplog.text
