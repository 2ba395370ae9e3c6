"""The long-lived objects one server process shares between requests."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from chatmock.auth.oauth import OAuthClient
from chatmock.auth.store import CredentialStore
from chatmock.config import Settings, home_dir
from chatmock.net.client import HTTPClient
from chatmock.state.catalog import Catalog
from chatmock.state.exchanges import Exchanges
from chatmock.state.prompt_cache import SessionIds
from chatmock.state.recent_models import RecentModels
from chatmock.state.response_store import ResponseStore
from chatmock.state.stores import open_store, store_path
from chatmock.state.usage_limits import UsageLimits, limits_path
from chatmock.upstream.codex import ClientIdentity, CodexBackend, installation_id
from chatmock.upstream.gate import Gate
from chatmock.upstream.instructions import load_base_instructions
from chatmock.upstream.model_sync import ModelSync, cache_path
from chatmock.upstream.providers import ProviderRegistry, build_registry


@dataclass(slots=True)
class App:
    settings: Settings
    models: ModelSync
    http: HTTPClient
    backend: CodexBackend
    sessions: SessionIds
    usage: UsageLimits
    responses_store: ResponseStore
    recent: RecentModels = field(default_factory=RecentModels)  # Ollama's /api/ps
    exchanges: Exchanges = field(default_factory=Exchanges)  # in flight, recent errors
    providers: ProviderRegistry | None = None  # shown on the status page
    gates: dict[str, Gate] = field(default_factory=dict)  # per provider, once wired
    started_at: float = field(default_factory=time.time)

    @property
    def catalog(self) -> Catalog:
        """The current model catalog: discovered, cached or static; swapped while serving."""
        return self.models.catalog


def build_app(settings: Settings, env: Mapping[str, str] | None = None) -> App:
    env = os.environ if env is None else env
    http = HTTPClient(connect_timeout=settings.upstream_connect_timeout,
                      read_timeout=settings.upstream_read_timeout,
                      pool_size=settings.upstream_pool_size, http2=settings.upstream_http2)
    oauth = OAuthClient(settings.issuer, settings.client_id, http)
    backend = CodexBackend(settings.upstream_url, http, CredentialStore(env, oauth=oauth),
                           installation_id(home_dir(env)),
                           identity=ClientIdentity(settings.client_version, settings.originator),
                           base_instructions=load_base_instructions(settings.base_instructions),
                           log_bodies=settings.verbose or settings.debug,
                           log_events=settings.verbose_obfuscation or settings.debug)
    usage = UsageLimits(limits_path(env))
    backend.on_headers = usage.record
    models = ModelSync(backend, settings.upstream_url, cache_path(env),
                       enabled=settings.model_sync, interval=settings.model_refresh_interval,
                       load_cache=False)
    store = open_store(settings.responses_store, store_path(env),
                       ttl_seconds=settings.responses_ttl, capacity=settings.responses_capacity,
                       max_bytes=settings.responses_max_bytes)
    providers = build_registry(settings, env)
    exchanges = Exchanges(secrets=(settings.access_token, *providers.secrets()))
    return App(settings, models, http, backend, SessionIds(), usage, store,
               exchanges=exchanges, providers=providers)
