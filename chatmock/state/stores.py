"""Opening the response store a setting names."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from chatmock.state.response_store import MemoryResponseStore, ResponseStore

log = logging.getLogger("chatmock.responses")


def open_store(kind: str, path: Path, **limits: Any) -> ResponseStore:
    """Open the store named by `kind` ("sqlite" or "memory").

    `limits` are the constructor keywords (ttl_seconds, capacity, max_bytes, clock);
    max_bytes is ignored by the memory store. If the SQLite file cannot be opened
    at all (after moving a corrupt one aside), the memory store is used instead.
    """
    if kind == "memory":
        limits.pop("max_bytes", None)
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
        limits.pop("max_bytes", None)
        return MemoryResponseStore(**limits)
