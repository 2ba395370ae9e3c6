"""chatmock.upstream.routing: a provider's gate and retries around its backend.

A scripted backend refuses a number of times, then opens; the gate's permit must be
back after every outcome: opened and closed, given up, cancelled while waiting for the
permit, while opening, or while sleeping between attempts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from chatmock.dialects.sampling import NONE, Sampling
from chatmock.errors import UpstreamError
from chatmock.net.response import UpstreamResponse
from chatmock.upstream.backoff import RetryPolicy
from chatmock.upstream.chat_backend import Refused
from chatmock.upstream.gate import Gate
from chatmock.upstream.providers import Provider, ProviderRegistry
from chatmock.upstream.routing import Upstreams

XAI = Provider("xai", "chat", "http://127.0.0.1:1/v1")


class Scripted:
    """Refuses with `statuses` in turn (sleeping `delay` first), then opens."""

    def __init__(self, statuses: list[int | None], delay: float = 0.0) -> None:
        self.statuses = statuses
        self.delay = delay
        self.calls = 0
        self.sampling: list[Sampling] = []

    @asynccontextmanager
    async def responses(self, payload: dict[str, Any], model: str, sampling: Sampling,
                        ) -> AsyncIterator[UpstreamResponse]:
        self.calls += 1
        self.sampling.append(sampling)
        await trio.sleep(self.delay)
        if self.statuses:
            raise Refused(self.statuses.pop(0), [], b"{}")
        yield None  # type: ignore[misc]  # the caller does not read it


def upstreams(backend: Scripted) -> tuple[Upstreams, Gate]:
    registry = ProviderRegistry("xai", {"xai": XAI})
    gate = Gate("xai", 2, queue_timeout=5)
    routing = Upstreams(registry, None, None, {"xai": gate},  # type: ignore[arg-type]
                        RetryPolicy(base=1, cap=1, attempts=3, budget=10))
    routing.backends["xai"] = backend
    return routing, gate


async def use(routing: Upstreams) -> None:
    async with routing.open({"model": "grok-4", "input": []}, "s", client="c"):
        await trio.sleep(1)


async def test_the_sampling_parameters_reach_the_provider_on_every_attempt(
        autojump_clock: trio.abc.Clock) -> None:
    backend = Scripted([503])
    routing, _ = upstreams(backend)
    sampling = Sampling(temperature=0.0, max_tokens=50)
    async with routing.open({"model": "grok-4", "input": []}, "s", client="c",
                            sampling=sampling):
        pass
    assert backend.sampling == [sampling, sampling]
    await use(routing)
    assert backend.sampling[-1] == NONE


async def test_a_refusal_worth_retrying_is_retried_then_opened(
        autojump_clock: trio.abc.Clock) -> None:
    backend = Scripted([503, None])
    routing, gate = upstreams(backend)
    await use(routing)
    assert backend.calls == 3 and gate.free == 2


@pytest.mark.parametrize("statuses, status", [([400], 400), ([402], 402), ([503] * 3, 502)])
async def test_given_up_refusals_reach_the_client_and_free_the_permit(
        autojump_clock: trio.abc.Clock, statuses: list[int | None], status: int) -> None:
    backend = Scripted(list(statuses))
    routing, gate = upstreams(backend)
    with pytest.raises(UpstreamError) as info:
        await use(routing)
    assert info.value.status == status and backend.calls == len(statuses)
    assert gate.free == 2


@pytest.mark.parametrize("after", [0.0, 0.5, 1.2, 1.7, 2.5, 4.0])
async def test_cancelled_anywhere_every_permit_comes_back(
        autojump_clock: trio.abc.Clock, after: float) -> None:
    """Opening takes 1 s, the retry sleep up to 1 s, the answer 1 s: `after` lands in
    each phase; two other requests hold or wait for the permits meanwhile."""
    routing, gate = upstreams(Scripted([503, None, None], delay=1.0))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(use, routing)
        nursery.start_soon(use, routing)
        with trio.move_on_after(after):
            await use(routing)
    assert gate.free == 2 and gate.stats().waiting == 0
