"""The SQLite file behind `SqliteResponseStore`: opening it safely, its schema.

Robustness: the file is created 0600 (and chmod-ed 0600 if it exists) in a
folder created 0700; `journal_mode=WAL`, `synchronous=NORMAL`; the schema is
versioned with `PRAGMA user_version`. A file that is not a database, is
malformed as far as opening reads it, or holds another schema/version is
renamed `<name>.corrupt-<UTC timestamp>` (with its -wal/-shm) and a fresh
database is created, with a warning. Deeper corruption found later is
logged: a failed read returns None, a failed write batch is dropped.
Anything else that prevents opening (unwritable folder, locked file) makes
`stores.open_store` fall back to the memory store with a warning.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger("chatmock.responses")

SCHEMA_VERSION = 1
WRITER_BUSY_TIMEOUT_MS = 5000
JOURNAL_SIZE_LIMIT = 32 * 1024 * 1024

_COLUMNS = ("id", "created_at", "last_access", "size", "body")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS responses ("
    " id TEXT PRIMARY KEY,"
    " created_at REAL NOT NULL,"
    " last_access REAL NOT NULL,"
    " size INTEGER NOT NULL,"
    " body BLOB NOT NULL)",
    "CREATE INDEX IF NOT EXISTS responses_last_access ON responses (last_access)",
    # The output items of the stored responses by their own id (each a zlib JSON body).
    "CREATE TABLE IF NOT EXISTS items ("
    " item_id TEXT PRIMARY KEY,"
    " response_id TEXT NOT NULL,"
    " body BLOB NOT NULL)",
)
"""Every statement is idempotent: a file of this version made before one was added
gets it when opened."""


class _Unusable(sqlite3.DatabaseError):
    """The database file is not ours (garbage, malformed, foreign schema or version)."""


@contextlib.contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def open_database(path: Path) -> sqlite3.Connection:
    """The writer connection, after moving an unusable file aside once."""
    _prepare_file(path)
    try:
        return _open_checked(path)
    except _Unusable as problem:
        target = _move_aside(path)
        log.warning("response store %s is unusable (%s); moved it to %s and started empty",
                    path, problem, target.name)
    _prepare_file(path)
    return _open_checked(path)


def _prepare_file(path: Path) -> None:
    """Create the file 0600 (folder 0700) before SQLite does it with the umask."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.fchmod(descriptor, 0o600)
    finally:
        os.close(descriptor)


def connect(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    return connection


def _open_checked(path: Path) -> sqlite3.Connection:
    connection = connect(path, WRITER_BUSY_TIMEOUT_MS)
    try:
        _check_schema(connection)
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
    except _Unusable:
        connection.close()
        raise
    except sqlite3.DatabaseError as error:
        connection.close()
        if _is_corruption(error):
            raise _Unusable(str(error)) from error
        raise
    except BaseException:
        connection.close()
        raise
    return connection


def _check_schema(connection: sqlite3.Connection) -> None:
    """Create the schema in an empty file; raise _Unusable for anything not ours."""
    with transaction(connection):
        (version,) = connection.execute("PRAGMA user_version").fetchone()
        (objects,) = connection.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        if version == 0 and objects == 0:
            for statement in _SCHEMA:
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            return
        if version != SCHEMA_VERSION:
            raise _Unusable(f"schema version {version}, expected {SCHEMA_VERSION}")
        columns = tuple(row[1] for row in connection.execute("PRAGMA table_info(responses)"))
        if columns != _COLUMNS:
            raise _Unusable(f"unexpected columns {columns!r}")
        for statement in _SCHEMA[1:]:
            connection.execute(statement)


def _is_corruption(error: sqlite3.DatabaseError) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    if code is None:  # raised by the sqlite3 module itself, not by SQLite
        return False
    return (code & 0xFF) in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def _move_aside(path: Path) -> Path:
    """Rename `path` (and its -wal/-shm/-journal) to `<name>.corrupt-<UTC timestamp>`."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    counter = 1
    while target.exists():
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{counter}")
        counter += 1
    os.replace(path, target)
    for suffix in ("-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.replace(path.with_name(path.name + suffix), target.with_name(target.name + suffix))
    return target
