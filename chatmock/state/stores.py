"""Opening the response store a setting names, and reading the SQLite one from outside."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chatmock.config import home_dir
from chatmock.state.response_store import MemoryResponseStore, ResponseStore

log = logging.getLogger("chatmock.responses")
STORE_FILENAME = "responses.sqlite3"


def store_path(env: Mapping[str, str]) -> Path:
    """`<home>/responses.sqlite3` for the given environment."""
    return home_dir(env) / STORE_FILENAME


def open_store(kind: str, path: Path, **limits: Any) -> ResponseStore:
    """Open the store named by `kind` ("sqlite" or "memory").

    `limits` are the constructor keywords (ttl_seconds, capacity, max_bytes, clock).
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
        return SqliteResponseStore(path, **limits)
    except (OSError, sqlite3.Error) as error:
        log.warning("cannot open response store %s (%s); keeping responses in memory only",
                    path, error)
        return MemoryResponseStore(**limits)


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
