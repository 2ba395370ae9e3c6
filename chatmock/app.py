"""The long-lived objects one server process shares between requests."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from chatmock.auth.oauth import OAuthClient
from chatmock.auth.store import CredentialStore
from chatmock.config import Settings, home_dir
from chatmock.net.client import HTTPClient
from chatmock.state.catalog import Catalog
from chatmock.state.prompt_cache import SessionIds
from chatmock.state.recent_models import RecentModels
from chatmock.state.response_store import ResponseStore
from chatmock.state.stores import open_store
from chatmock.state.usage_limits import UsageLimits, limits_path
from chatmock.upstream.codex import CodexBackend, installation_id
from chatmock.upstream.model_sync import ModelSync, cache_path


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
                           log_bodies=settings.verbose or settings.debug,
                           log_events=settings.verbose_obfuscation or settings.debug)
    usage = UsageLimits(limits_path(env))
    backend.on_headers = usage.record
    models = ModelSync(backend, settings.upstream_url, cache_path(env),
                       enabled=settings.model_sync, interval=settings.model_refresh_interval,
                       load_cache=False)
    store = open_store(settings.responses_store, home_dir(env) / "responses.sqlite3",
                       ttl_seconds=settings.responses_ttl, capacity=settings.responses_capacity)
    return App(settings, models, http, backend, SessionIds(), usage, store)
