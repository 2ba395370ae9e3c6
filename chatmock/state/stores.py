"""Opening the response store the settings name, and reading the SQLite one from outside."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from chatmock.config import Settings, home_dir
from chatmock.state.response_store import (
    AsyncResponseStore,
    MemoryResponseStore,
    ResponseStore,
    look_up,
)
from chatmock.turns import StoreAnswer, StoredResponse, StoreQuery

if TYPE_CHECKING:
    from chatmock.net.redis import RedisClient

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
    look-ups run in a worker thread; its `put` is already write-behind (no I/O)."""

    def __init__(self, store: ResponseStore) -> None:
        self.store = store

    async def look_up(self, query: StoreQuery) -> StoreAnswer:
        if isinstance(self.store, MemoryResponseStore):
            return look_up(self.store, query)
        return await trio.to_thread.run_sync(look_up, self.store, query)

    async def put(self, entry: StoredResponse) -> None:
        self.store.put(entry)

    def health(self) -> dict[str, Any]:
        """For the in-memory store (which lives only in this process) its entries and
        estimated bytes against the bounds. The SQLite store's figures are `chatmock
        info`'s: counting its rows is a query per call."""
        if isinstance(self.store, MemoryResponseStore):
            return {"kind": "memory", **self.store.figures()._asdict()}
        return {"kind": "sqlite"}

    async def maintain(self) -> None:
        """Nothing: the SQLite store prunes in its own writer thread."""

    async def aclose(self) -> None:
        await trio.to_thread.run_sync(self.store.close)  # SQLite: joins its writer thread


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
    return LocalStore(open_store(settings.responses_store, store_path(env),
                                 miss_grace=miss_grace, ttl_seconds=settings.responses_ttl,
                                 capacity=settings.responses_capacity,
                                 max_bytes=settings.responses_max_bytes))


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
