"""Model discovery: the catalog the backend offers this account, kept fresh.

Spec: upstream.md §9.1-9.2. The catalog starts as the static table, or as the
models cached on disk by an earlier run for the same account, and is replaced
whenever `GET {upstream}/models` answers with at least one listed model.
Requests never wait for discovery, except `/v1/models` and its Ollama/Anthropic
siblings (`ensure_fresh`, at most 6 s): a model list should show what discovery
is about to find, a chat turn should not be slowed by it.

Failures keep the current catalog (static or an older discovery), are logged
at warning once per streak, and are not retried for `RETRY_SECONDS`. The
cached ETag is sent as `If-None-Match`; a 304 only marks the catalog fresh.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import trio

from chatmock.auth.tokens import Credentials
from chatmock.catalog import Catalog, catalog_from_discovery
from chatmock.config import home_dir
from chatmock.errors import ApiError
from chatmock.fileio import write_private_json
from chatmock.upstream.accounts import Account
from chatmock.upstream.codex import CodexBackend, upstream_error

log = logging.getLogger("chatmock.models")

CACHE_FILE = "chatmock_models_cache.json"
RETRY_SECONDS = 60.0
FETCH_TIMEOUT = 10.0
LIST_WAIT = 6.0
MAX_BODY = 8 * 1024 * 1024


def cache_path(env: Mapping[str, str]) -> Path:
    return home_dir(env) / CACHE_FILE


def models_url(upstream_url: str, client_version: str) -> str:
    """The backend's model list (spec: upstream.md §9.1)."""
    return f"{upstream_url.rstrip('/')}/models?client_version={client_version}"


class _Failed(Exception):
    """One discovery attempt did not produce a catalog; the message says why."""


class ModelSync:
    """The current `Catalog`, refreshed from the backend in the background.

    `catalog` is a plain attribute swapped in one assignment, so readers never
    see a half-built catalog and need no lock. Times are trio's clock.
    """

    def __init__(self, backend: CodexBackend, upstream_url: str, cache: Path, *,
                 enabled: bool = True, interval: float = 3600.0,
                 load_cache: bool = True) -> None:
        """`load_cache=False` defers reading the cache file (it needs the credentials) to
        `run`, off the server's start-up path."""
        self.backend = backend
        self.client_version = backend.identity.version
        self.url = models_url(upstream_url, self.client_version)
        self.cache = cache
        self.enabled = enabled
        self.interval = interval
        self.catalog = Catalog()
        self.source = "static"  # "static", "cache" or "discovery"
        self._models: list[Any] = []  # raw upstream objects behind `catalog`
        self._etag = ""
        self._account_id = ""
        self._fetched_at: float | None = None
        self._failed_at: float | None = None
        self._failing = False
        self._last_ok = False
        self._inflight: trio.Event | None = None
        self._nursery: trio.Nursery | None = None
        self._cache_loaded = False
        if enabled and load_cache:
            self._load_cache()

    # -- public -------------------------------------------------------------------------

    async def refresh(self) -> bool:
        """Fetch now (or join the fetch in flight); True if the catalog is fresh after it.

        Never raises (except trio's cancellation)."""
        if not self.enabled:
            return False
        done = self._inflight
        if done is not None:
            await done.wait()
        else:
            await self._attempt(self._begin())
        return self._last_ok

    async def ensure_fresh(self, max_wait: float = LIST_WAIT) -> None:
        """Wait up to `max_wait` for a refresh in flight, or for one started now if due.

        Under `run` the fetch is a task of its own and goes on after we stop
        waiting; without it, an unfinished fetch is abandoned (and counts as a
        failure, so the next list does not wait again for a minute)."""
        if not self.enabled:
            return
        done = self._inflight
        if done is None:
            if not self.due():
                return
            if self._nursery is None:
                with trio.move_on_after(max_wait):
                    await self.refresh()
                return
            done = self._begin()
            self._nursery.start_soon(self._attempt, done)
        with trio.move_on_after(max_wait):
            await done.wait()

    async def run(self) -> None:
        """Background task: refresh now, then whenever due (`interval == 0`: on demand)."""
        if not self.enabled:
            return
        if not self._cache_loaded:
            self._load_cache()
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            try:
                await self.refresh()
                if self.interval == 0:
                    await trio.sleep_forever()
                while True:
                    await trio.sleep_until(self.next_due())
                    if self.due():
                        await self.refresh()
            finally:
                self._nursery = None

    def due(self) -> bool:
        return self.enabled and trio.current_time() >= self.next_due()

    def next_due(self) -> float:
        """When the next fetch should start: `interval` after a success, and never
        sooner than `RETRY_SECONDS` after a failure."""
        due = -math.inf if self._fetched_at is None else self._fetched_at + self.interval
        if self._failed_at is not None:
            due = max(due, self._failed_at + RETRY_SECONDS)
        return due

    # -- one attempt ----------------------------------------------------------------------

    def _begin(self) -> trio.Event:
        self._inflight = trio.Event()
        return self._inflight

    async def _attempt(self, done: trio.Event) -> None:
        self._last_ok = False
        try:
            with trio.move_on_after(FETCH_TIMEOUT) as scope:
                self._last_ok = await self._fetch()
            if scope.cancelled_caught:
                raise _Failed(f"no answer within {FETCH_TIMEOUT:g} s")
        except Exception as exc:  # whatever went wrong, discovery must not break the server
            self._note_failure(exc)
        finally:
            now = trio.current_time()
            if self._last_ok:
                self._fetched_at, self._failed_at = now, None
            else:
                self._failed_at = now
            self._inflight = None
            done.set()

    def _note_failure(self, exc: Exception) -> None:
        reason = str(exc) if isinstance(exc, _Failed) else f"{type(exc).__name__}: {exc}"
        if self._failing:
            log.debug("model discovery failed again: %s", reason)
            return
        self._failing = True
        log.warning("model discovery failed, keeping the %s model list: %s "
                    "(retrying in %g s at the earliest)", self.source, reason, RETRY_SECONDS)

    async def _fetch(self) -> bool:
        """GET /models as the pool's first account that the backend takes (the default
        account first): a 401 refreshes once, then the next account is asked."""
        accounts = self.backend.pool.accounts
        for number, account in enumerate(accounts, 1):
            try:
                credentials = await account.credentials.usable()
            except ApiError:
                if number == len(accounts):
                    raise
                continue
            status, headers, body = await self._get(account, credentials)
            if status == 401:
                renewed = await account.credentials.after_rejection(credentials)
                if renewed is not None:
                    credentials = renewed
                    status, headers, body = await self._get(account, credentials)
            if status != 401 or number == len(accounts):
                return self._take(status, headers, body, credentials)
            log.info("model discovery: account %s was refused, asking the next", account.name)
        return False

    def _take(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes,
              credentials: Credentials) -> bool:
        if status == 304 and self._models:
            self._adopt(self.catalog, self._models, self._etag, credentials.account_id)
            return True  # the cache file already holds these models
        if status != 200:
            raise _Failed(f"HTTP {status}: {upstream_error(status, headers, body).message}")
        catalog, models = _parse(body)
        self._adopt(catalog, models, _header(headers, b"etag"), credentials.account_id)
        self._save()
        return True

    async def _get(self, account: Account, credentials: Credentials,
                   ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        headers = self.backend.model_headers(credentials)
        if self._etag and self._models and self._account_id == credentials.account_id:
            headers.append((b"if-none-match", self._etag.encode("latin-1", "replace")))
        async with self.backend.http.request("GET", self.url, headers) as response:
            account.record(response.headers)  # usage limits ride on every answer
            body = await response.read_all(MAX_BODY)
            return response.status, response.headers, body

    def _adopt(self, catalog: Catalog, models: list[Any], etag: str, account_id: str) -> None:
        listed = catalog.listed_ids(expose_variants=False)
        if self._failing or self.source != "discovery" or listed != self.catalog.listed_ids(
                expose_variants=False):
            log.info("model discovery: %d models listed", len(catalog.specs))
        self.catalog, self.source = catalog, "discovery"
        self._models, self._etag, self._account_id = models, etag, account_id
        self._failing = False

    # -- the cache file --------------------------------------------------------------------

    def _load_cache(self) -> None:
        self._cache_loaded = True
        self._read_cache()

    def _read_cache(self) -> None:
        """Adopt the cached models if they were discovered for the signed-in account."""
        credentials = self.backend.credentials.current()
        try:
            document = json.loads(self.cache.read_bytes())
        except (OSError, ValueError):
            return
        if credentials is None or not isinstance(document, dict):
            return
        account_id = document.get("account_id")
        if not account_id or account_id != credentials.account_id:
            return
        models = document.get("models")
        catalog = catalog_from_discovery({"models": models})
        if catalog is None or not isinstance(models, list):
            return
        etag = document.get("etag")
        self.catalog, self.source = catalog, "cache"
        self._models, self._account_id = models, account_id
        self._etag = etag if isinstance(etag, str) else ""
        log.info("using %d cached models from %s until discovery answers",
                 len(catalog.specs), self.cache)

    def _save(self) -> None:
        """Write the cache in the event loop: a few KB once per interval, like the
        usage-limits file (a worker thread would also confuse trio's mock clocks)."""
        document = {"fetched_at": _utc_now(), "etag": self._etag,
                    "client_version": self.client_version, "account_id": self._account_id,
                    "models": self._models}
        try:
            write_private_json(self.cache, document)
        except OSError as exc:
            log.warning("cannot write the model cache %s: %s", self.cache, exc)


def _parse(body: bytes) -> tuple[Catalog, list[Any]]:
    """The catalog of a 200 answer and its raw models; _Failed if it lists none."""
    try:
        document = json.loads(body)
    except ValueError:
        raise _Failed("the answer is not JSON") from None
    catalog = catalog_from_discovery(document)
    if catalog is None:
        raise _Failed('the answer lists no model with visibility "list"')
    return catalog, document["models"]


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str:
    for key, value in headers:
        if key == name:
            return value.decode("latin-1")
    return ""


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
