"""The long-lived objects one server process shares between requests.

`open_app` builds what the router and `/health` need (settings, usage figures,
response store, providers and their gates, exchanges); the rest, which only the
API routes use (HTTP client, OAuth client, credentials, account pool, Codex
backend, model catalog, sessions, routing), is built by `App.complete`: by `serve`
0.1 s after its server answers (`cli._settle`), or by the first use of any of it,
whichever comes first. Its modules are imported then too: they are about a
third of chatmock's own imports (bench/RESULTS.md, wp-start2). `build_app`
builds both at once.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from chatmock.config import EMBEDDED_STATE, Settings, home_dir, worker_count
from chatmock.state.exchanges import Exchanges
from chatmock.state.stores import open_response_store
from chatmock.state.usage_limits import UsageLimits, limits_path
from chatmock.upstream.providers import ProviderRegistry, build_registry
from chatmock.worker import WorkerInfo

if TYPE_CHECKING:
    from chatmock.auth.accounts import AccountFile
    from chatmock.auth.store import CredentialStore
    from chatmock.catalog import Catalog
    from chatmock.net.client import HTTPClient
    from chatmock.net.redis import RedisClient
    from chatmock.state.gate_leases import GateLeases
    from chatmock.state.prompt_cache import SessionIds
    from chatmock.state.recent_models import RecentModels
    from chatmock.state.response_store import AsyncResponseStore
    from chatmock.upstream.accounts import Account
    from chatmock.upstream.codex import CodexBackend
    from chatmock.upstream.gate import Gate
    from chatmock.upstream.instructions import BaseInstructions
    from chatmock.upstream.model_sync import ModelSync
    from chatmock.upstream.provider_models import ProviderModels
    from chatmock.upstream.routing import Upstreams

log = logging.getLogger("chatmock")

SHARED_STORE_GRACE = 0.5
"""Seconds a worker looks again for a stored turn it misses: another worker may be
committing it (see chatmock/state/response_store_sqlite.py)."""


class Backends:
    """What only the API routes use: built by `App.complete` (see the module docstring).
    A plain class: a dataclass's creation (~0.4 ms) would be paid before listening."""

    __slots__ = ("backend", "http", "models", "provider_models", "recent", "sessions",
                 "upstreams")

    def __init__(self, models: ModelSync, http: HTTPClient, backend: CodexBackend,
                 sessions: SessionIds, recent: RecentModels, upstreams: Upstreams,
                 provider_models: ProviderModels) -> None:
        self.models = models
        self.http = http
        self.backend = backend
        self.sessions = sessions
        self.recent = recent  # Ollama's /api/ps
        self.upstreams = upstreams  # every request's provider (upstream/routing.py)
        self.provider_models = provider_models  # the other providers' model lists


class App:
    """A plain class, as `Backends`: a dataclass's creation (~0.7 ms) would be paid
    before listening."""

    __slots__ = (
        "builder",
        "built",
        "exchanges",
        "gates",
        "leases",
        "providers",
        "redis",
        "responses_store",
        "settings",
        "started_at",
        "usage",
        "worker",
    )

    def __init__(self, settings: Settings, usage: UsageLimits,
                 responses_store: AsyncResponseStore, *, worker: WorkerInfo | None = None,
                 redis: RedisClient | None = None, exchanges: Exchanges | None = None,
                 providers: ProviderRegistry | None = None,
                 gates: dict[str, Gate] | None = None, leases: GateLeases | None = None,
                 builder: Callable[[App], Backends] | None = None) -> None:
        self.settings = settings
        self.usage = usage
        self.responses_store = responses_store
        self.worker = WorkerInfo() if worker is None else worker  # this process, in /health
        self.redis = redis  # fleet mode (--state redis://...)
        self.exchanges = Exchanges() if exchanges is None else exchanges  # in flight, errors
        self.providers = providers  # shown on the status page
        self.gates = {} if gates is None else gates  # per provider (not the Codex one)
        self.leases = leases  # the gates' fleet-wide permits (fleet mode)
        self.started_at = time.time()
        self.builder = builder  # what `complete` calls once
        self.built: Backends | None = None

    def complete(self) -> Backends:
        """The API routes' objects, built on the first call (again on the next one if
        building them failed)."""
        if self.built is None:
            if self.builder is None:
                raise RuntimeError("the app is being completed already")
            builder, self.builder = self.builder, None
            try:
                self.built = builder(self)
            except BaseException:
                self.builder = builder
                raise
        return self.built

    @property
    def models(self) -> ModelSync:
        return self.complete().models

    @property
    def http(self) -> HTTPClient:
        return self.complete().http

    @property
    def backend(self) -> CodexBackend:
        return self.complete().backend

    @property
    def sessions(self) -> SessionIds:
        return self.complete().sessions

    @property
    def recent(self) -> RecentModels:
        return self.complete().recent

    @property
    def upstreams(self) -> Upstreams | None:
        return self.complete().upstreams

    @property
    def provider_models(self) -> ProviderModels | None:
        return self.complete().provider_models

    async def provider_model_ids(self) -> list[tuple[str, str]]:
        """(`provider/model`, provider) of the other providers' models (discovered, cached)."""
        listed = self.provider_models
        return [] if listed is None else await listed.listed()

    def usages(self) -> list[UsageLimits]:
        """Every account's usage figures (the default account's first; before `complete`
        built the account pool, the default account's alone)."""
        if self.built is None:
            return [self.usage]
        return [self.usage, *(usage for usage in self.backend.pool.usages()
                              if usage is not self.usage)]

    @property
    def catalog(self) -> Catalog:
        """The current model catalog: discovered, cached or static; swapped while serving."""
        return self.models.catalog


def build_app(settings: Settings, env: Mapping[str, str] | None = None) -> App:
    """The whole app: `open_app`, then `App.complete`."""
    app = open_app(settings, env)
    app.complete()
    return app


def open_app(settings: Settings, env: Mapping[str, str] | None = None) -> App:
    """What the router and `/health` need; the rest on `App.complete`. Raises
    ConfigError for a setting it cannot use (--base-instructions' file)."""
    env = os.environ if env is None else env
    instructions = None  # read now when there is something to read: it may fail
    if settings.base_instructions != "none":
        from chatmock.upstream.instructions import load_base_instructions

        instructions = load_base_instructions(settings.base_instructions)
    redis = open_redis(settings)
    if redis is None:
        usage = UsageLimits(limits_path(env))
    else:
        from chatmock.state.usage_shared import SharedUsage

        usage = UsageLimits(limits_path(env), shared=SharedUsage(
            redis, lambda: getattr(app.backend.credentials.current(), "account_id", "")))
    store = open_response_store(settings, env, redis, miss_grace=(
        SHARED_STORE_GRACE if worker_count(settings) > 1 else 0.0))
    providers = build_registry(settings, env)
    exchanges = Exchanges(secrets=(settings.access_token, *providers.secrets()))
    names = [p.name for p in providers.usable() if p.kind != "codex"]
    leases = None
    if redis is None:
        gated = {}  # none without a provider to gate, nor with --max-concurrency 0
        if names and settings.max_concurrency:
            from chatmock.upstream.gate import gates as local_gates

            gated = local_gates(names, settings.max_concurrency, settings.queue_timeout)
    else:  # the fleet's gates (and Redis's modules) in fleet mode only
        from chatmock.state.gate_leases import GateLeases
        from chatmock.upstream.gate_fleet import gates

        leases = GateLeases(redis)
        gated = gates(names, settings.max_concurrency, settings.queue_timeout, leases)
    app = App(settings, usage, store, redis=redis, exchanges=exchanges, providers=providers,
              gates=gated, leases=leases,
              builder=functools.partial(_backends, env=env, instructions=instructions))
    return app


def _backends(app: App, env: Mapping[str, str],
              instructions: BaseInstructions | None) -> Backends:
    from chatmock.auth.oauth import OAuthClient
    from chatmock.auth.refresh_guard import RedisGuard
    from chatmock.auth.store import CredentialStore
    from chatmock.net.client import HTTPClient
    from chatmock.state.prompt_cache import SessionIds
    from chatmock.state.recent_models import RecentModels
    from chatmock.upstream.codex import ClientIdentity, CodexBackend, installation_id
    from chatmock.upstream.instructions import NO_INSTRUCTIONS
    from chatmock.upstream.model_sync import ModelSync, cache_path
    from chatmock.upstream.provider_models import ProviderModels
    from chatmock.upstream.routing import Upstreams

    settings, redis = app.settings, app.redis
    assert app.providers is not None
    http = HTTPClient(connect_timeout=settings.upstream_connect_timeout,
                      read_timeout=settings.upstream_read_timeout,
                      pool_size=settings.upstream_pool_size, http2=settings.upstream_http2)
    oauth = OAuthClient(settings.issuer, settings.client_id, http)
    guard = RedisGuard(redis) if redis is not None else None
    backend = CodexBackend(settings.upstream_url, http,
                           CredentialStore(env, oauth=oauth, guard=guard),
                           installation_id(home_dir(env)),
                           identity=ClientIdentity(settings.client_version, settings.originator),
                           base_instructions=NO_INSTRUCTIONS if instructions is None
                           else instructions,
                           log_bodies=settings.verbose or settings.debug,
                           log_events=settings.verbose_obfuscation or settings.debug)
    backend.on_headers = app.usage.record
    build_pool(backend, settings, env, redis, app.usage)
    models = ModelSync(backend, settings.upstream_url, cache_path(env),
                       enabled=settings.model_sync, interval=settings.model_refresh_interval,
                       load_cache=False)
    return Backends(models, http, backend, SessionIds(), RecentModels(),
                    Upstreams(app.providers, backend, http, app.gates),
                    ProviderModels(app.providers, http))


def build_pool(backend: CodexBackend, settings: Settings, env: Mapping[str, str],
               redis: RedisClient | None, usage: UsageLimits) -> None:
    """The account pool (chatmock/upstream/accounts.py) of the default auth.json and
    `<home>/accounts/*.json`, read again when that directory changes
    (chatmock/upstream/account_files.py)."""
    from chatmock.auth.accounts import accounts_dir, pool_files
    from chatmock.auth.refresh_guard import RedisGuard
    from chatmock.auth.store import CredentialStore
    from chatmock.state.pool_state import STATE_FILENAME, MemoryPoolState, RedisPoolState
    from chatmock.state.usage_shared import SharedUsage
    from chatmock.upstream.account_files import AccountFiles
    from chatmock.upstream.accounts import Account, AccountPool
    from chatmock.upstream.pool_strategy import Strategy

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
    if settings.state == EMBEDDED_STATE:
        return None
    from chatmock.net.redis import RedisClient
    from chatmock.redis_url import parse_redis_url

    target = parse_redis_url(settings.state)
    if not target.tls and not target.loopback:
        log.warning("fleet state at %s travels unencrypted (tokens and conversations): "
                    "use rediss:// across a network you do not trust", target)
    return RedisClient(target)
