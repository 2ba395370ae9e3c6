"""The models of every usable provider other than the Codex backend, discovered and cached.

`ProviderModels.listed()` gives `provider/model` ids (the names a request uses
to reach that provider) with their provider as owner, for `/v1/models`,
`/api/tags` and the Anthropic list. Each provider's list is fetched from where
it lists its models (`GET {base}/models` for a chat-completions server,
`GET {base}/api/models` for the Qwen web API, active models only), at most
once per `ttl` seconds, all providers at once and each within `timeout`
seconds. A provider that cannot be asked keeps its last list (none before
the first success) and is asked again after `retry` seconds; a provider
without credentials is never asked, so never listed.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import trio

from chatmock.dialects.qwen_request import web_headers
from chatmock.errors import UpstreamError
from chatmock.net.client import HTTPClient
from chatmock.upstream.providers import Provider, ProviderRegistry

log = logging.getLogger("chatmock.models")
MAX_LIST_BYTES = 8 * 1024 * 1024


def model_ids(provider: Provider, document: Any) -> list[str]:
    """The ids in a provider's model list (OpenAI's `{"data": [...]}`, Qwen's
    `{"data": {"data": [...]}}` with `info.is_active`)."""
    data = document.get("data") if isinstance(document, dict) else None
    if isinstance(data, dict):
        data = data.get("data")
    ids = []
    for entry in data if isinstance(data, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            continue
        info = entry.get("info")
        if provider.kind == "qwen" and isinstance(info, dict) and info.get("is_active") is False:
            continue
        ids.append(entry["id"])
    return ids


class ProviderModels:
    """See the module docstring."""

    def __init__(self, registry: ProviderRegistry, http: HTTPClient, *, ttl: float = 600.0,
                 retry: float = 60.0, timeout: float = 5.0) -> None:
        self.providers = [p for p in registry.usable() if p.kind != "codex"]
        self.http = http
        self.ttl, self.retry, self.timeout = ttl, retry, timeout
        self._lists: dict[str, list[str]] = {}
        self._due: dict[str, float] = {}

    async def listed(self) -> list[tuple[str, str]]:
        """(`provider/model`, provider) of every provider's models, fresh enough."""
        now = trio.current_time()
        stale = [p for p in self.providers if self._due.get(p.name, 0.0) <= now]
        if stale:
            async with trio.open_nursery() as nursery:
                for provider in stale:
                    nursery.start_soon(self._refresh, provider)
        return [(f"{p.name}/{model}", p.name) for p in self.providers
                for model in self._lists.get(p.name, [])]

    async def _refresh(self, provider: Provider) -> None:
        try:
            with trio.fail_after(self.timeout):
                ids = model_ids(provider, await self._fetch(provider))
        except (UpstreamError, trio.TooSlowError, ValueError) as exc:
            log.warning("listing the %s provider's models failed: %s (asked again in %g s)",
                        provider.name, getattr(exc, "message", exc) or type(exc).__name__,
                        self.retry)
            self._due[provider.name] = trio.current_time() + self.retry
            return
        self._lists[provider.name] = ids
        self._due[provider.name] = trio.current_time() + self.ttl

    async def _fetch(self, provider: Provider) -> Any:
        headers = [(b"accept", b"application/json"), *provider.auth_headers()]
        if provider.kind == "qwen":
            headers = [*web_headers(provider.base_url, None, stream=False),
                       *provider.auth_headers()]
        async with self.http.request("GET", provider.url(provider.models_path),
                                     headers) as response:
            body = await response.read_all(MAX_LIST_BYTES)
        if response.status >= 400:
            raise UpstreamError(f"status {response.status}")
        return json.loads(body)
