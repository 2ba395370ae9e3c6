"""Which upstream answers a request, and how it is opened: the one door routes call.

`Upstreams.open(payload, ...)` picks the provider (`ProviderRegistry.select`:
`?provider=`, a `provider/model` prefix, else the default), then

* the Codex backend (`chatgpt`): `fallback.open_responses` as before (its
  account pool does its own failover);
* a chat-completions provider (`chat_backend.ChatBackend`) or the Qwen web API
  (`qwen_backend.QwenBackend`): behind the provider's `Gate` (fair per client;
  a 429 with `Retry-After` when no permit came in time), with retries on the
  refusals worth retrying (`backoff.RetryPolicy`: 408, 429, 5xx, no answer;
  never a usage limit, an OpenRouter 402, a 4xx) after a jittered, growing
  sleep during which the permit is given back. Retries happen only while the
  stream is being opened, so before anything reached the client.

Whatever answered is yielded as a Codex Responses stream; the permit is held
until the `async with` block ends (the answer sent, or the client gone), and
given back exactly once however it ends.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any, Protocol

import trio

from chatmock.net.client import HTTPClient
from chatmock.net.response import UpstreamResponse
from chatmock.upstream.codex import CodexBackend
from chatmock.upstream.fallback import Headers, open_responses
from chatmock.upstream.gate import Gate
from chatmock.upstream.providers import Provider, ProviderRegistry

if TYPE_CHECKING:  # the other providers' modules are imported when one is configured
    from chatmock.dialects.sampling import Sampling
    from chatmock.upstream.backoff import RetryPolicy


class ProviderBackend(Protocol):
    """A non-Codex provider: one attempt per call, `Refused` before anything streamed."""

    def responses(self, payload: dict[str, Any], model: str, sampling: Sampling,
                  ) -> AbstractAsyncContextManager[UpstreamResponse]: ...


class Upstreams:
    """See the module docstring."""

    def __init__(self, registry: ProviderRegistry, codex: CodexBackend, http: HTTPClient,
                 gates: dict[str, Gate], policy: RetryPolicy | None = None) -> None:
        self.registry = registry
        self.codex = codex
        self.gates = gates
        self.policy = policy  # None: the default one, made by the first provider request
        self.backends: dict[str, ProviderBackend] = {}
        for provider in registry.usable():
            if provider.kind == "chat":
                from chatmock.upstream.chat_backend import ChatBackend

                self.backends[provider.name] = ChatBackend(provider, http)
            elif provider.kind == "qwen":
                from chatmock.upstream.qwen_backend import QwenBackend

                self.backends[provider.name] = QwenBackend(provider, http)

    def select(self, model: str, query_provider: str | None) -> tuple[Provider, str]:
        return self.registry.select(model, query_provider)

    @asynccontextmanager
    async def open(self, payload: dict[str, Any], session: str, forwarded: Headers = (), *,
                   fallback: dict[str, Any] | None = None, client: str = "",
                   query_provider: str | None = None, affinity: tuple[str, ...] = (),
                   sampling: Sampling | None = None) -> AsyncIterator[UpstreamResponse]:
        """The answer's stream from the provider this request is for (module docstring).
        `affinity`: the Codex account pool's extra conversation keys (a WebSocket).
        `sampling`: the client's sampling parameters, for a provider only; the Codex
        backend refuses them and never sees them."""
        provider, model = self.select(str(payload.get("model") or ""), query_provider)
        if provider.kind == "codex":
            if model != payload.get("model"):
                payload["model"] = model
            # No AsyncExitStack here: this frame lives as long as the stream, and a stack's
            # deque costs 760 bytes a stream (issue 13).
            gate = self.gates.get(provider.name)
            permit = None if gate is None else await gate.acquire(client)
            try:
                async with open_responses(self.codex, payload, session, forwarded,
                                          fallback=fallback, affinity=affinity) as upstream:
                    yield upstream
            finally:
                if permit is not None:
                    permit.release()
            return
        backend = self.backends[provider.name]
        chosen = fallback if fallback is not None else payload  # without chatmock's tools
        async with AsyncExitStack() as stack:
            yield await self._open_provider(stack, provider, backend, chosen, model, client,
                                            sampling)

    async def _permit(self, stack: AsyncExitStack, provider: Provider, client: str) -> None:
        gate = self.gates.get(provider.name)
        if gate is not None:
            stack.callback((await gate.acquire(client)).release)

    async def _open_provider(self, stack: AsyncExitStack, provider: Provider,
                             backend: ProviderBackend, payload: dict[str, Any], model: str,
                             client: str, sampling: Sampling | None) -> UpstreamResponse:
        """Attempts until one opens or the policy gives up; the permit is held only
        while an attempt is in flight (and then until `stack` closes)."""
        from chatmock.dialects.sampling import NONE
        from chatmock.upstream.backoff import GiveUp, RetryPolicy
        from chatmock.upstream.chat_backend import Refused, provider_error

        policy = self.policy = self.policy or RetryPolicy()
        attempt, waited = 0, 0.0
        while True:
            attempt += 1
            try:
                async with AsyncExitStack() as one:
                    await self._permit(one, provider, client)
                    response = await one.enter_async_context(
                        backend.responses(payload, model, NONE if sampling is None else sampling))
                    stack.push_async_exit(one.pop_all())
                    return response
            except Refused as refused:
                decision = policy.decide(refused.status, refused.headers, refused.body,
                                              attempt, waited=waited, now=time.time())
                if isinstance(decision, GiveUp):
                    raise provider_error(provider, refused, decision.retry_after) from None
            await trio.sleep(decision.delay)
            waited += decision.delay
