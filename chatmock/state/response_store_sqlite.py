"""The SQLite `ResponseStore`: previous_response_id turns that survive a restart.

  Hot path: `put` only records the entry in a small write-behind map and
  enqueues it (no JSON, no I/O). A single background thread drains the queue,
  encodes entries and writes everything available in one transaction
  (`BEGIN IMMEDIATE` ... `COMMIT`); only then does it drop the entries from the
  write-behind map, so a `get` always finds an entry in one place or the other.
  `close()` flushes and joins the thread; `flush()` waits for everything put so
  far (and any due pruning); `writer_paused()` holds the writer (for tests).

  Connections: the writer thread owns one connection; `get` uses a second,
  read-only (`query_only`) connection guarded by a lock, so readers never wait
  for a write transaction (WAL lets them read the last committed snapshot while
  the writer works) and the writer never waits for a lock held by the request
  path. `get` is a primary-key SELECT, then zlib + JSON decoding.

  TTL: by last access, refreshed lazily. Each row has `last_access`; a `get`
  of a row whose `last_access` is more than a minute old enqueues a "touch"
  for the writer (a `get` never writes synchronously), so a row that is used
  stays alive and the refresh costs at most one write per row per minute.
  A row expires `ttl_seconds` after its last refresh (so up to a minute
  earlier than an exact "since last access"); expired rows are never returned
  even before the pruner deletes them.

  Size: entries are stored as one zlib-compressed (level 1: the writer's CPU is the
  server's; 3x faster than level 6 for ~20% more bytes) compact JSON document
  (`{"instructions","context","output"}`, UTF-8 with surrogates passed through
  so any string JSON could carry round-trips). Measured on a realistic agent
  context (prose, tool calls, source-file tool outputs) compression gives
  3-3.7x without reasoning items and ~2x with encrypted reasoning blobs, at
  about 1 ms of decompression per 450 KB on `get` (as much as `json.loads`).
  Since every turn stores the whole context (total size grows with the square
  of a chain's length) this doubles or triples what fits in `max_bytes`.
  At most once a minute (after a batch, or when idle) the writer deletes rows
  past the TTL, then the least recently used rows beyond `capacity`, then
  beyond `max_bytes` (sum of the compressed payloads); a batch that takes the
  payloads past `max_bytes` is pruned at once, so they exceed it by one batch
  at most. On disk, SQLite's page overhead comes on top, the file keeps its
  high-water mark (freed pages are reused, not returned to the OS), and the
  WAL is cut back to `JOURNAL_SIZE_LIMIT` after each checkpoint.

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
import json
import logging
import math
import os
import queue
import sqlite3
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from chatmock.state.response_store import (
    DEFAULT_CAPACITY,
    DEFAULT_MAX_BYTES,
    DEFAULT_TTL_SECONDS,
    Clock,
    StoredResponse,
    expired,
)

log = logging.getLogger("chatmock.responses")

PRUNE_INTERVAL_SECONDS = 60.0
TOUCH_INTERVAL_SECONDS = 60.0
SCHEMA_VERSION = 1
BATCH_LIMIT = 512
ZLIB_LEVEL = 1
WRITER_BUSY_TIMEOUT_MS = 5000
READER_BUSY_TIMEOUT_MS = 200
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
)
_INSERT = (
    "INSERT OR REPLACE INTO responses (id, created_at, last_access, size, body)"
    " VALUES (?, ?, ?, ?, ?)"
)
_TOUCH = "UPDATE responses SET last_access = MAX(last_access, ?) WHERE id = ?"
_SELECT = "SELECT created_at, last_access, body FROM responses WHERE id = ?"
_TOTAL = "SELECT COALESCE(SUM(size), 0) FROM responses"
_PRUNE_EXPIRED = "DELETE FROM responses WHERE last_access <= ?"
_PRUNE_COUNT = (
    "DELETE FROM responses WHERE rowid IN (SELECT rowid FROM responses"
    " ORDER BY last_access DESC, rowid DESC LIMIT -1 OFFSET ?)"
)
_PRUNE_BYTES = (
    "DELETE FROM responses WHERE rowid IN (SELECT rowid FROM (SELECT rowid, SUM(size)"
    " OVER (ORDER BY last_access DESC, rowid DESC ROWS UNBOUNDED PRECEDING) AS total"
    " FROM responses) WHERE total > ?)"
)


@dataclass(slots=True)
class _Pending:
    """An entry written by `put` and not yet committed; `last_access` may be refreshed."""

    entry: StoredResponse
    last_access: float


@dataclass(frozen=True, slots=True)
class _Touch:
    response_id: str
    at: float


_Row = tuple[str, float, float, int, bytes]  # id, created_at, last_access, size, body
_Operation = _Pending | _Touch | threading.Event | None  # Event: flush marker; None: stop


class _Unusable(sqlite3.DatabaseError):
    """The database file is not ours (garbage, malformed, foreign schema or version)."""


class SqliteResponseStore:
    """Write-behind SQLite store; see the module docstring for the design."""

    def __init__(self, path: Path, *, ttl_seconds: float = DEFAULT_TTL_SECONDS,
                 capacity: int = DEFAULT_CAPACITY, max_bytes: int = DEFAULT_MAX_BYTES,
                 clock: Clock = time.time) -> None:
        self.path = path
        self._ttl = ttl_seconds
        self._capacity = capacity
        self._max_bytes = max_bytes
        self._clock = clock
        self._writer = _open_database(path)
        try:
            self._reader = _connect(path, READER_BUSY_TIMEOUT_MS)
            self._reader.execute("PRAGMA query_only = ON")
        except BaseException:
            self._writer.close()
            raise
        self._read_lock = threading.Lock()
        self._pending: dict[str, _Pending] = {}
        self._pending_lock = threading.Lock()
        self._queue: queue.SimpleQueue[_Operation] = queue.SimpleQueue()
        self._resume = threading.Event()
        self._resume.set()
        self._closed = False
        self._last_prune = -math.inf
        self._payload_bytes = 0  # as of the last prune, plus what was written since
        self._thread = threading.Thread(target=self._run, name="response-store-writer",
                                        daemon=True)
        self._thread.start()

    # -- request path

    def put(self, entry: StoredResponse) -> None:
        """Record `entry` for the writer; no encoding, no I/O. Dropped after close()."""
        if self._closed:
            log.debug("response store closed; dropping %s", entry.response_id)
            return
        pending = _Pending(entry, self._clock())
        with self._pending_lock:
            self._pending[entry.response_id] = pending
        self._queue.put(pending)

    def get(self, response_id: str) -> StoredResponse | None:
        now = self._clock()
        with self._pending_lock:
            pending = self._pending.get(response_id)
            if pending is not None:
                if expired(pending.last_access, now, self._ttl):
                    return None
                if now - pending.last_access >= TOUCH_INTERVAL_SECONDS:
                    # The writer may have read last_access already: also queue a touch.
                    pending.last_access = now
                    self._queue.put(_Touch(response_id, now))
                return pending.entry
        row = self._select(response_id)
        if row is None:
            return None
        created_at, last_access, body = row
        if expired(last_access, now, self._ttl):
            return None
        if now - last_access >= TOUCH_INTERVAL_SECONDS and not self._closed:
            self._queue.put(_Touch(response_id, now))
        return _decode(response_id, created_at, body)

    def _select(self, response_id: str) -> tuple[float, float, bytes] | None:
        try:
            with self._read_lock:
                if self._closed:
                    return None
                # fetchall runs the statement to completion, ending its read transaction.
                rows = self._reader.execute(_SELECT, (response_id,)).fetchall()
        except sqlite3.Error as error:
            log.warning("response store read failed for %s: %s", response_id, error)
            return None
        if not rows:
            return None
        created_at, last_access, body = rows[0]
        return float(created_at), float(last_access), bytes(body)

    # -- lifecycle and test hooks

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything put so far is committed; False on timeout."""
        if self._closed:
            return True
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    @contextlib.contextmanager
    def writer_paused(self) -> Iterator[None]:
        """Hold the writer before its next batch (tests: observe the write-behind state)."""
        self._resume.clear()
        try:
            yield
        finally:
            self._resume.set()

    def close(self) -> None:
        """Flush pending writes, stop the writer and close both connections. Idempotent."""
        with self._read_lock:
            if self._closed:
                return
            self._closed = True  # from now on put() drops and get() sees no database
            self._reader.close()
        self._queue.put(None)
        self._resume.set()
        self._thread.join()  # the writer commits what was queued, then closes its connection

    # -- writer thread

    def _run(self) -> None:
        try:
            self._maybe_prune()
            stop = False
            while not stop:
                batch = self._take_batch()
                stop = any(operation is None for operation in batch)
                try:
                    self._apply(batch)
                    self._maybe_prune()
                finally:  # flush() returns once the batch and any due pruning are done
                    for operation in batch:
                        if isinstance(operation, threading.Event):
                            operation.set()
        finally:
            self._writer.close()

    def _take_batch(self) -> list[_Operation]:
        """Wait (at most a prune interval) for work, then take all that is queued."""
        try:
            batch = [self._queue.get(timeout=PRUNE_INTERVAL_SECONDS)]
        except queue.Empty:
            return []
        self._resume.wait()  # paused by writer_paused(): hold everything queued meanwhile
        while len(batch) < BATCH_LIMIT:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _apply(self, batch: list[_Operation]) -> None:
        """Write one batch's entries and touches in one transaction."""
        writes: dict[str, _Pending] = {}
        touches: list[tuple[float, str]] = []
        for operation in batch:
            if isinstance(operation, _Touch):
                touches.append((operation.at, operation.response_id))
            elif isinstance(operation, _Pending):
                writes[operation.entry.response_id] = operation
        try:
            self._commit(self._encode_all(writes.values()), touches)
        except Exception:
            log.exception("response store writer failed; %d entries lost", len(writes))
        finally:
            self._release(writes.values())

    def _encode_all(self, writes: Iterable[_Pending]) -> list[_Row]:
        rows: list[_Row] = []
        for pending in writes:
            entry = pending.entry
            try:
                body = _encode(entry)
            except (TypeError, ValueError, RecursionError) as error:
                log.warning("response %s cannot be stored: %s", entry.response_id, error)
                continue
            rows.append((entry.response_id, entry.created_at, pending.last_access,
                         len(body), body))
        return rows

    def _commit(self, rows: list[_Row], touches: list[tuple[float, str]]) -> None:
        if not rows and not touches:
            return
        with _transaction(self._writer) as connection:
            connection.executemany(_INSERT, rows)
            connection.executemany(_TOUCH, touches)
        self._payload_bytes += sum(row[3] for row in rows)

    def _release(self, written: Iterable[_Pending]) -> None:
        """Forget committed entries unless a newer put replaced them meanwhile."""
        with self._pending_lock:
            for pending in written:
                response_id = pending.entry.response_id
                if self._pending.get(response_id) is pending:
                    del self._pending[response_id]

    def _maybe_prune(self) -> None:
        now = self._clock()
        due = now - self._last_prune >= PRUNE_INTERVAL_SECONDS
        if not due and self._payload_bytes <= self._max_bytes:
            return
        self._last_prune = now
        try:
            self._prune(now)
        except Exception:
            log.exception("response store pruning failed")

    def _prune(self, now: float) -> None:
        with _transaction(self._writer) as connection:
            connection.execute(_PRUNE_EXPIRED, (now - self._ttl,))
            connection.execute(_PRUNE_COUNT, (self._capacity,))
            (total,) = connection.execute(_TOTAL).fetchone()
            if total > self._max_bytes:
                connection.execute(_PRUNE_BYTES, (self._max_bytes,))
                (total,) = connection.execute(_TOTAL).fetchone()
        self._payload_bytes = total


@contextlib.contextmanager
def _transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


# --------------------------------------------------------------------------- encoding


def _encode(entry: StoredResponse) -> bytes:
    document = {"instructions": entry.instructions, "context": entry.context,
                "output": entry.output}
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return zlib.compress(text.encode("utf-8", "surrogatepass"), ZLIB_LEVEL)


def _decode(response_id: str, created_at: float, body: bytes) -> StoredResponse | None:
    try:
        document = json.loads(zlib.decompress(body).decode("utf-8", "surrogatepass"))
        instructions = document["instructions"]
        context = document["context"]
        output = document["output"]
    except (zlib.error, ValueError, TypeError, KeyError, RecursionError) as error:
        log.warning("stored response %s is unreadable: %s", response_id, error)
        return None
    if not (isinstance(context, list) and isinstance(output, list)
            and (instructions is None or isinstance(instructions, str))):
        log.warning("stored response %s has an unexpected shape", response_id)
        return None
    return StoredResponse(response_id, instructions, context, output, created_at)


# --------------------------------------------------------------------------- opening


def _open_database(path: Path) -> sqlite3.Connection:
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


def _connect(path: Path, busy_timeout_ms: int) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    return connection


def _open_checked(path: Path) -> sqlite3.Connection:
    connection = _connect(path, WRITER_BUSY_TIMEOUT_MS)
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
    with _transaction(connection):
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
        connection.execute(_SCHEMA[1])


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
