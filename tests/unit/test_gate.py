"""chatmock.upstream.gate: fair permits, bounded waits, and no permit ever lost."""

from __future__ import annotations

import itertools
import json
import random

import pytest
import trio
import trio.testing

from chatmock.dialects.errors import Dialect, render
from chatmock.upstream.gate import Gate, GateBusy, Permit, client_key, gates


def idle(gate: Gate) -> None:
    """Every permit is back and nobody waits."""
    stats = gate.stats()
    assert (gate.free, stats.in_use, stats.waiting, stats.clients_waiting) == \
        (gate.permits, 0, 0, 0)


async def test_permits_are_granted_at_once_up_to_n_then_the_next_waits(
        autojump_clock: trio.abc.Clock) -> None:
    gate = Gate("xai", 2, queue_timeout=60)
    first, second = await gate.acquire("a"), await gate.acquire("b")
    got: list[Permit] = []

    async def third() -> None:
        got.append(await gate.acquire("c"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(third)
        await trio.testing.wait_all_tasks_blocked()
        assert not got and gate.stats().waiting == 1
        first.release()
    assert len(got) == 1 and gate.free == 0
    first.release()  # a second release changes nothing
    assert gate.free == 0
    second.release()
    got[0].release()
    idle(gate)


async def test_slot_releases_when_the_block_raises(autojump_clock: trio.abc.Clock) -> None:
    gate = Gate("xai", 1, queue_timeout=1)
    with pytest.raises(RuntimeError):
        async with gate.slot("a") as permit:
            assert gate.free == 0 and not permit.released
            raise RuntimeError("boom")
    idle(gate)


async def test_a_wait_past_the_queue_timeout_is_a_429_with_retry_after(
        autojump_clock: trio.abc.Clock) -> None:
    gate = Gate("openrouter", 1, queue_timeout=5)
    held = await gate.acquire("a")
    start = trio.current_time()
    with pytest.raises(GateBusy) as info:
        await gate.acquire("b")
    assert trio.current_time() - start == pytest.approx(5)
    error = info.value
    assert (error.status, error.error_type, error.code) == (429, "rate_limit_error",
                                                            "queue_timeout")
    assert error.headers == ((b"retry-after", b"5"),)  # no service time measured yet
    assert "openrouter" in error.message
    assert gate.stats().timed_out == 1
    held.release()
    idle(gate)


async def test_retry_after_grows_with_queue_depth_and_service_time(
        autojump_clock: trio.abc.Clock) -> None:
    gate = Gate("xai", 2, queue_timeout=100)
    for _ in range(2):
        async with gate.slot("a"):
            await trio.sleep(4)
    assert gate.stats().mean_service_seconds == pytest.approx(4)
    assert gate.retry_after() == 2  # (0 waiting + 1) * 4 s / 2 permits
    holders = [await gate.acquire("a"), await gate.acquire("a")]
    async with trio.open_nursery() as nursery:
        for client in "bcd":
            nursery.start_soon(gate.acquire, client)
        await trio.testing.wait_all_tasks_blocked()
        assert gate.retry_after() == 8  # (3 + 1) * 4 / 2
        nursery.cancel_scope.cancel()
    for holder in holders:
        holder.release()
    idle(gate)


async def test_the_queue_is_capped_in_all_and_per_client(
        autojump_clock: trio.abc.Clock) -> None:
    gate = Gate("qwen", 1, queue_timeout=100, max_waiters=3, max_waiters_per_client=2)
    held = await gate.acquire("a")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(gate.acquire, "a")
        nursery.start_soon(gate.acquire, "a")
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(GateBusy) as per_client:
            await gate.acquire("a")
        assert per_client.value.code == "queue_full"
        nursery.start_soon(gate.acquire, "b")
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(GateBusy):
            await gate.acquire("c")
        assert gate.stats().rejected == 2
        nursery.cancel_scope.cancel()
    held.release()
    idle(gate)


async def test_clients_are_served_round_robin(autojump_clock: trio.abc.Clock) -> None:
    gate = Gate("xai", 1, queue_timeout=1000)
    order: list[str] = []

    async def request(client: str, number: int) -> None:
        async with gate.slot(client):
            order.append(f"{client}{number}")
            await trio.sleep(1)

    held = await gate.acquire("x")
    async with trio.open_nursery() as nursery:
        for number in range(4):  # the swarm queues first
            nursery.start_soon(request, "swarm", number)
            await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(request, "person", 0)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(request, "other", 0)
        await trio.testing.wait_all_tasks_blocked()
        stats = gate.stats()
        assert (stats.waiting, stats.clients_waiting) == (6, 3)
        held.release()
    assert order == ["swarm0", "person0", "other0", "swarm1", "swarm2", "swarm3"]
    idle(gate)


async def test_many_clients_never_exceed_the_permits_and_all_are_served(
        autojump_clock: trio.abc.Clock) -> None:
    gate = Gate("openai", 3, queue_timeout=10_000, max_waiters=1000)
    rng = random.Random(7)
    active = peak = 0
    served: list[str] = []

    async def request(client: str, hold: float) -> None:
        nonlocal active, peak
        async with gate.slot(client):
            active += 1
            peak = max(peak, active)
            await trio.sleep(hold)
            active -= 1
            served.append(client)

    async with trio.open_nursery() as nursery:
        for number in range(200):
            nursery.start_soon(request, f"c{number % 9}", rng.choice((0.5, 1, 2)))
    assert peak == 3 and len(served) == 200
    assert gate.stats().granted == 200
    idle(gate)


# -- cancellation at every point ----------------------------------------------------------


async def scenario(gate: Gate, victim: int, cancel_at: float | None) -> tuple[set[int],
                                                                              set[int]]:
    """Five requests from three clients on a two-permit gate; request `victim` is cancelled
    at `cancel_at` (or, with `victim` -1, everything is). Times are whole and half seconds,
    so cancellations land before, during and exactly at grants and releases.
    Returns the requests served and those that timed out."""
    plan = [("a", 0.0, 2.0), ("a", 0.0, 1.0), ("b", 0.5, 1.0), ("a", 1.0, 0.5), ("c", 1.0, 2.0)]
    served: set[int] = set()
    timed_out: set[int] = set()

    async def request(index: int, client: str, start: float, hold: float) -> None:
        await trio.sleep(start)
        try:
            async with gate.slot(client):
                await trio.sleep(hold)
                served.add(index)
        except GateBusy:
            timed_out.add(index)

    async with trio.open_nursery() as outer:
        scopes = []
        for index, (client, start, hold) in enumerate(plan):
            scope = trio.CancelScope()
            scopes.append(scope)

            async def run(scope: trio.CancelScope = scope, index: int = index,
                          client: str = client, start: float = start, hold: float = hold) -> None:
                with scope:
                    await request(index, client, start, hold)

            outer.start_soon(run)
        if cancel_at is None:
            return served, timed_out
        await trio.sleep(cancel_at)
        if victim < 0:
            outer.cancel_scope.cancel()
        else:
            scopes[victim].cancel()
    return served, timed_out


@pytest.mark.parametrize("victim", [-1, 0, 1, 2, 3, 4])
async def test_cancelling_anywhere_returns_every_permit(victim: int,
                                                        autojump_clock: trio.abc.Clock) -> None:
    for tenth in range(0, 45, 5):
        gate = Gate("xai", 2, queue_timeout=100)
        served, timed_out = await scenario(gate, victim, tenth / 10)
        assert not timed_out
        if victim >= 0:  # everyone else is served, whenever the victim left
            assert served >= {0, 1, 2, 3, 4} - {victim}
        idle(gate)
    gate = Gate("xai", 2, queue_timeout=100)
    assert await scenario(gate, victim, None) == ({0, 1, 2, 3, 4}, set())


@pytest.mark.parametrize("queue_timeout", [0.5, 1.0, 1.5])
async def test_timeouts_at_the_moment_of_release_lose_nothing(
        queue_timeout: float, autojump_clock: trio.abc.Clock) -> None:
    """Queue timeouts on the half-second grid expire exactly as permits are handed over."""
    gate = Gate("xai", 2, queue_timeout=queue_timeout)
    served, timed_out = await scenario(gate, -1, None)
    assert served | timed_out == {0, 1, 2, 3, 4} and not served & timed_out
    idle(gate)


async def test_a_waiter_cancelled_as_the_permit_is_handed_to_it_passes_it_on() -> None:
    gate = Gate("xai", 1, queue_timeout=100)
    held = await gate.acquire("a")
    scope = trio.CancelScope()
    got: list[Permit] = []

    later: list[Permit] = []

    async def waiter() -> None:
        with scope:
            got.append(await gate.acquire("b"))

    async def next_client() -> None:
        later.append(await gate.acquire("c"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        nursery.start_soon(next_client)
        await trio.testing.wait_all_tasks_blocked()
        scope.cancel()  # both happen before the waiter runs again:
        held.release()  # the permit is already its own when its cancellation arrives
    assert not got and len(later) == 1 and gate.free == 0  # passed on to "c"
    later[0].release()
    idle(gate)


async def test_a_waiter_whose_timeout_fires_as_the_permit_arrives_keeps_it(
        mock_clock: trio.testing.MockClock) -> None:
    gate = Gate("xai", 1, queue_timeout=5)
    held = await gate.acquire("a")
    got: list[Permit] = []

    async def waiter() -> None:
        got.append(await gate.acquire("b"))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        mock_clock.jump(5)  # the deadline has passed; the waiter has not run yet
        held.release()
    assert len(got) == 1 and gate.free == 0 and gate.stats().timed_out == 0
    got[0].release()
    idle(gate)


async def test_cancelled_before_asking_takes_nothing() -> None:
    gate = Gate("xai", 1, queue_timeout=5)
    with trio.CancelScope() as scope:
        scope.cancel()
        await gate.acquire("a")
    idle(gate)


def test_client_key_hashes_tokens_and_drops_ports() -> None:
    key = client_key("sk-secret-token", "127.0.0.1:5000")
    assert key.startswith("token:") and "secret" not in key
    assert key == client_key(b"sk-secret-token", "10.0.0.1:1")
    assert client_key("", "127.0.0.1:5000") == client_key(None, "127.0.0.1:6000") == \
        "addr:127.0.0.1"
    assert client_key(None, "[::1]:8000") == "addr:[::1]"
    assert client_key(None, "") == "addr:"


def test_bad_gate_settings_are_refused() -> None:
    for permits, timeout in itertools.product((0, 1), (-1, 1)):
        if permits == 1 and timeout == 1:
            continue
        with pytest.raises(ValueError):
            Gate("x", permits, queue_timeout=timeout)


def test_gate_busy_renders_as_a_429_in_every_dialect() -> None:
    error = GateBusy("xai", "queue_full", 12)
    assert json.loads(render(error, Dialect.OPENAI))["error"]["type"] == "rate_limit_error"
    assert json.loads(render(error, Dialect.ANTHROPIC)) == {
        "type": "error", "error": {"type": "rate_limit_error", "message": error.message}}
    assert json.loads(render(error, Dialect.OLLAMA)) == {"error": error.message}
    assert "queue is full" in error.message and error.headers == ((b"retry-after", b"12"),)


def test_one_gate_per_provider_unless_unlimited() -> None:
    made = gates(["chatgpt", "xai"], 4, 30.0)
    assert sorted(made) == ["chatgpt", "xai"]
    assert (made["xai"].permits, made["xai"].queue_timeout, made["xai"].provider) == (4, 30.0,
                                                                                      "xai")
    assert gates(["chatgpt"], 0, 30.0) == {}
