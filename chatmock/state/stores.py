"""Opening the response store the settings name, and reading the SQLite one from outside."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from chatmock.config import Settings, home_dir

if TYPE_CHECKING:  # the stores' module (and `turns`) load with the store: after start-up
    from chatmock.net.redis import RedisClient
    from chatmock.state.response_store import AsyncResponseStore, ResponseStore
    from chatmock.turns import StoreAnswer, StoredResponse, StoreQuery

log = logging.getLogger("chatmock.responses")
STORE_FILENAME = "responses.sqlite3"


def store_path(env: Mapping[str, str]) -> Path:
    """`<home>/responses.sqlite3` for the given environment."""
    return home_dir(env) / STORE_FILENAME


def open_store(kind: str, path: Path, *, miss_grace: float = 0.0,
               **limits: Any) -> ResponseStore:
    """Open the store named by `kind` ("sqlite" or "memory").

    `limits` are the constructor keywords (ttl_seconds, capacity, max_bytes, clock);
    `miss_grace` is the SQLite store's (the file is shared by several processes).
    If the SQLite file cannot be opened at all (after moving a corrupt one aside),
    the memory store is used instead.
    """
    from chatmock.state.response_store import MemoryResponseStore

    if kind == "memory":
        return MemoryResponseStore(**limits)
    if kind != "sqlite":
        raise ValueError(f"unknown response store {kind!r} (expected 'sqlite' or 'memory')")
    import sqlite3  # with the SQLite store only: not on the memory store's import path

    from chatmock.state.response_store_sqlite import SqliteResponseStore

    try:
        return SqliteResponseStore(path, miss_grace=miss_grace, **limits)
    except (OSError, sqlite3.Error) as error:
        log.warning("cannot open response store %s (%s); keeping responses in memory only",
                    path, error)
        return MemoryResponseStore(**limits)


class LocalStore:
    """A memory or SQLite store as an `AsyncResponseStore`: SQLite reads a file, so its
    look-ups run in a worker thread; its `put` is already write-behind (no I/O).

    A store given as an `opener` (the SQLite one) is opened once the server listens,
    in a worker thread (`maintain`, started beside the server), or by the first
    look-up or put if one comes first: sqlite3's import and opening the file are
    ~5 ms that the first accepted connection need not wait for."""

    def __init__(self, store: ResponseStore | None = None, *,
                 opener: Callable[[], ResponseStore] | None = None) -> None:
        self._store = store
        self._opener = opener
        self._opening: trio.Event | None = None

    async def opened(self) -> ResponseStore:
        """The store, opened by the first caller while the others wait for it."""
        if self._store is not None:
            return self._store
        if self._opening is not None:
            await self._opening.wait()
        else:
            self._opening = trio.Event()
            try:
                assert self._opener is not None
                self._store = await trio.to_thread.run_sync(self._opener)
            finally:
                self._opening.set()
        assert self._store is not None, "the response store could not be opened"
        return self._store

    async def look_up(self, query: StoreQuery) -> StoreAnswer:
        store = await self.opened()
        from chatmock.state.response_store import MemoryResponseStore, look_up

        if isinstance(store, MemoryResponseStore):
            return look_up(store, query)
        return await trio.to_thread.run_sync(look_up, store, query)

    async def put(self, entry: StoredResponse) -> None:
        (await self.opened()).put(entry)

    def health(self) -> dict[str, Any]:
        """For the in-memory store (which lives only in this process) its entries and
        estimated bytes against the bounds. The SQLite store's figures are `chatmock
        info`'s: counting its rows is a query per call."""
        if self._store is None:  # the SQLite store, not yet opened
            return {"kind": "sqlite"}
        from chatmock.state.response_store import MemoryResponseStore

        if isinstance(self._store, MemoryResponseStore):
            return {"kind": "memory", **self._store.figures()._asdict()}
        return {"kind": "sqlite"}

    async def maintain(self) -> None:
        """Open the store; the SQLite store prunes in its own writer thread."""
        await self.opened()

    async def aclose(self) -> None:
        if self._store is None and self._opening is None:
            return  # never opened
        store = await self.opened()
        await trio.to_thread.run_sync(store.close)  # SQLite: joins its writer thread


def open_response_store(settings: Settings, env: Mapping[str, str],
                        redis: RedisClient | None = None, *,
                        miss_grace: float = 0.0) -> AsyncResponseStore:
    """The store `serve` uses: Redis in fleet mode (`redis`, a RedisClient), else the
    `--responses-store` one, bounded by the `--responses-*` settings (`miss_grace`:
    see `open_store`)."""
    if redis is not None:
        from chatmock.state.response_store_redis import RedisResponseStore

        return RedisResponseStore(redis, ttl_seconds=settings.responses_ttl,
                                  max_bytes=settings.responses_max_bytes)
    opener = functools.partial(open_store, settings.responses_store, store_path(env),
                               miss_grace=miss_grace, ttl_seconds=settings.responses_ttl,
                               capacity=settings.responses_capacity,
                               max_bytes=settings.responses_max_bytes)
    if settings.responses_store == "memory":
        return LocalStore(opener())
    return LocalStore(opener=opener)


def sqlite_figures(path: Path) -> tuple[int, int, int]:
    """(entries, compressed payload bytes, bytes on disk with the WAL) of the SQLite store
    at `path`, read-only, beside a running server. Raises OSError or sqlite3.Error."""
    import sqlite3

    if not path.exists():
        raise FileNotFoundError(path)
    wal = path.with_name(path.name + "-wal")
    on_disk = path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        connection.execute("PRAGMA busy_timeout = 1000")
        entries, payload = connection.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM responses").fetchone()
    finally:
        connection.close()
    return int(entries), int(payload), on_disk
