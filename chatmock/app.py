"""The long-lived objects one server process shares between requests."""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from chatmock.auth.accounts import AccountFile, accounts_dir, pool_files
from chatmock.auth.oauth import OAuthClient
from chatmock.auth.refresh_guard import RedisGuard
from chatmock.auth.store import CredentialStore
from chatmock.catalog import Catalog
from chatmock.config import Settings, home_dir, worker_count
from chatmock.net.client import HTTPClient
from chatmock.redis_url import EMBEDDED, parse_redis_url
from chatmock.state.exchanges import Exchanges
from chatmock.state.gate_leases import GateLeases
from chatmock.state.pool_state import STATE_FILENAME, MemoryPoolState, RedisPoolState
from chatmock.state.prompt_cache import SessionIds
from chatmock.state.recent_models import RecentModels
from chatmock.state.stores import open_response_store
from chatmock.state.usage_limits import UsageLimits, limits_path
from chatmock.state.usage_shared import SharedUsage
from chatmock.supervisor import WorkerInfo
from chatmock.upstream.account_files import AccountFiles
from chatmock.upstream.accounts import Account, AccountPool
from chatmock.upstream.codex import ClientIdentity, CodexBackend, installation_id
from chatmock.upstream.gate import Gate
from chatmock.upstream.gate_fleet import gates
from chatmock.upstream.instructions import load_base_instructions
from chatmock.upstream.model_sync import ModelSync, cache_path
from chatmock.upstream.pool_strategy import Strategy
from chatmock.upstream.provider_models import ProviderModels
from chatmock.upstream.providers import ProviderRegistry, build_registry
from chatmock.upstream.routing import Upstreams

if TYPE_CHECKING:
    from chatmock.net.redis import RedisClient
    from chatmock.state.response_store import AsyncResponseStore

log = logging.getLogger("chatmock")

SHARED_STORE_GRACE = 0.5
"""Seconds a worker looks again for a stored turn it misses: another worker may be
committing it (see chatmock/state/response_store_sqlite.py)."""


@dataclass(slots=True)
class App:
    settings: Settings
    models: ModelSync
    http: HTTPClient
    backend: CodexBackend
    sessions: SessionIds
    usage: UsageLimits
    responses_store: AsyncResponseStore
    recent: RecentModels = field(default_factory=RecentModels)  # Ollama's /api/ps
    worker: WorkerInfo = field(default_factory=WorkerInfo)  # this process, in /health
    redis: RedisClient | None = None  # fleet mode (--state redis://...)
    exchanges: Exchanges = field(default_factory=Exchanges)  # in flight, recent errors
    providers: ProviderRegistry | None = None  # shown on the status page
    gates: dict[str, Gate] = field(default_factory=dict)  # per provider (not the Codex one)
    leases: GateLeases | None = None  # the gates' fleet-wide permits (fleet mode)
    upstreams: Upstreams | None = None  # every request's provider (upstream/routing.py)
    provider_models: ProviderModels | None = None  # the other providers' model lists
    started_at: float = field(default_factory=time.time)

    async def provider_model_ids(self) -> list[tuple[str, str]]:
        """(`provider/model`, provider) of the other providers' models (discovered, cached)."""
        return [] if self.provider_models is None else await self.provider_models.listed()

    def usages(self) -> list[UsageLimits]:
        """Every account's usage figures (the default account's first)."""
        return [self.usage, *(usage for usage in self.backend.pool.usages()
                              if usage is not self.usage)]

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
    redis = open_redis(settings)
    guard = RedisGuard(redis) if redis is not None else None
    backend = CodexBackend(settings.upstream_url, http,
                           CredentialStore(env, oauth=oauth, guard=guard),
                           installation_id(home_dir(env)),
                           identity=ClientIdentity(settings.client_version, settings.originator),
                           base_instructions=load_base_instructions(settings.base_instructions),
                           log_bodies=settings.verbose or settings.debug,
                           log_events=settings.verbose_obfuscation or settings.debug)
    usage = UsageLimits(limits_path(env), shared=None if redis is None else SharedUsage(
        redis, lambda: getattr(backend.credentials.current(), "account_id", "")))
    backend.on_headers = usage.record
    build_pool(backend, settings, env, redis, usage)
    models = ModelSync(backend, settings.upstream_url, cache_path(env),
                       enabled=settings.model_sync, interval=settings.model_refresh_interval,
                       load_cache=False)
    store = open_response_store(settings, env, redis, miss_grace=(
        SHARED_STORE_GRACE if worker_count(settings) > 1 else 0.0))
    providers = build_registry(settings, env)
    exchanges = Exchanges(secrets=(settings.access_token, *providers.secrets()))
    leases = GateLeases(redis) if redis is not None else None
    gated = gates([p.name for p in providers.usable() if p.kind != "codex"],
                  settings.max_concurrency, settings.queue_timeout, leases)
    return App(settings, models, http, backend, SessionIds(), usage, store, redis=redis,
               exchanges=exchanges, providers=providers, gates=gated, leases=leases,
               upstreams=Upstreams(providers, backend, http, gated),
               provider_models=ProviderModels(providers, http))


def build_pool(backend: CodexBackend, settings: Settings, env: Mapping[str, str],
               redis: RedisClient | None, usage: UsageLimits) -> None:
    """The account pool (chatmock/upstream/accounts.py) of the default auth.json and
    `<home>/accounts/*.json`, read again when that directory changes
    (chatmock/upstream/account_files.py)."""
    default = backend.credentials

    def make(file: AccountFile) -> Account:
        if file.default:
            return Account(file.name, default, usage=usage)
        store = CredentialStore(env, oauth=default.oauth, path=file.path,
                                guard=RedisGuard(redis) if redis is not None else None)
        return Account(file.name, store, usage=UsageLimits(
            file.usage_path, shared=None if redis is None else SharedUsage(
                redis, functools.partial(_account_id, store))))

    files = functools.partial(pool_files, env, usage.path)
    accounts = [make(file) for file in files()]
    state = (RedisPoolState(redis) if redis is not None
             else MemoryPoolState(accounts_dir(env) / STATE_FILENAME))
    strategy = Strategy(settings.account_strategy,  # workers that share no affinity
                        by_conversation=redis is None and worker_count(settings) > 1)
    backend.pool = AccountPool(accounts, strategy=strategy, state=state,
                               source=AccountFiles(accounts_dir(env), files, make))
    backend.credentials = accounts[0].credentials
    if len(accounts) > 1:
        log.info("account pool: %s (%s)", ", ".join(account.name for account in accounts),
                 settings.account_strategy)


def _account_id(store: CredentialStore) -> str:
    return getattr(store.current(), "account_id", "")


def open_redis(settings: Settings) -> RedisClient | None:
    """The process's Redis client in fleet mode; None for the embedded state."""
    if settings.state == EMBEDDED:
        return None
    from chatmock.net.redis import RedisClient

    target = parse_redis_url(settings.state)
    if not target.tls and not target.loopback:
        log.warning("fleet state at %s travels unencrypted (tokens and conversations): "
                    "use rediss:// across a network you do not trust", target)
    return RedisClient(target)
