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

  Item index: each output item with an `id` is also written, compressed on
  its own, to the `items` table (`item_id` → response, body) in the same
  transaction as its response; its bytes count towards the response's size,
  and pruning deletes the items whose response is gone. `find_items` looks in
  the write-behind map first, then selects the ids it still needs in one
  query joined with their responses (expired ones are not returned), and
  touches their responses as `get` does.

  Several processes (the workers of `serve --workers`) share one file: each
  has its writer thread, and SQLite serialises their transactions (WAL, a busy
  timeout of seconds for writers). A turn stored by one worker is committed a
  few milliseconds after its client saw the answer end, and its next turn may
  reach another worker sooner than that: with `miss_grace` a `get` or
  `find_items` that finds nothing looks again for that long (2 ms, then
  doubling), which only misses pay.

  Opening the file (permissions, schema, a corrupt or foreign file moved
  aside): `chatmock.state.response_store_file`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from chatmock.state.response_store import (
    DEFAULT_CAPACITY,
    DEFAULT_MAX_BYTES,
    DEFAULT_TTL_SECONDS,
    Clock,
    expired,
    indexed_items,
)
from chatmock.state.response_store_file import connect, open_database, transaction
from chatmock.state.turn_codec import decode_item, decode_turn, encode_item, encode_turn
from chatmock.turns import Item, StoredResponse

log = logging.getLogger("chatmock.responses")

PRUNE_INTERVAL_SECONDS = 60.0
TOUCH_INTERVAL_SECONDS = 60.0
BATCH_LIMIT = 512
READER_BUSY_TIMEOUT_MS = 200

_INSERT = (
    "INSERT OR REPLACE INTO responses (id, created_at, last_access, size, body)"
    " VALUES (?, ?, ?, ?, ?)"
)
_INSERT_ITEM = "INSERT OR REPLACE INTO items (item_id, response_id, body) VALUES (?, ?, ?)"
_SELECT_ITEMS = (
    "SELECT i.item_id, i.response_id, r.last_access, i.body FROM items AS i"
    " JOIN responses AS r ON r.id = i.response_id WHERE i.item_id IN ({})"
)
_PRUNE_ITEMS = "DELETE FROM items WHERE response_id NOT IN (SELECT id FROM responses)"
ITEMS_PER_SELECT = 256
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


_Found = TypeVar("_Found")
_Row = tuple[str, float, float, int, bytes]  # id, created_at, last_access, size, body
_ItemRow = tuple[str, str, bytes]  # item id, response id, body
_Operation = _Pending | _Touch | threading.Event | None  # Event: flush marker; None: stop


class SqliteResponseStore:
    """Write-behind SQLite store; see the module docstring for the design."""

    def __init__(self, path: Path, *, ttl_seconds: float = DEFAULT_TTL_SECONDS,
                 capacity: int = DEFAULT_CAPACITY, max_bytes: int = DEFAULT_MAX_BYTES,
                 clock: Clock = time.time, miss_grace: float = 0.0) -> None:
        self.path = path
        self.miss_grace = miss_grace
        self._ttl = ttl_seconds
        self._capacity = capacity
        self._max_bytes = max_bytes
        self._clock = clock
        self._writer = open_database(path)
        try:
            self._reader = connect(path, READER_BUSY_TIMEOUT_MS)
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
        row = self._select(response_id) or \
            self._after_grace(lambda: self._select(response_id), bool)
        if row is None:
            return None
        created_at, last_access, body = row
        if expired(last_access, now, self._ttl):
            return None
        if now - last_access >= TOUCH_INTERVAL_SECONDS and not self._closed:
            self._queue.put(_Touch(response_id, now))
        return decode_turn(response_id, created_at, body)

    def find_items(self, item_ids: Collection[str]) -> dict[str, Item]:
        now = self._clock()
        wanted = set(item_ids)
        found = self._pending_items(wanted, now)
        rows = self._select_items(sorted(wanted.difference(found)))
        if len(rows) < len(wanted) - len(found):
            rows = self._after_grace(
                lambda: self._select_items(sorted(wanted.difference(found))),
                lambda again: len(again) == len(wanted) - len(found)) or rows
        for item_id, response_id, last_access, body in rows:
            item = decode_item(item_id, body) if not expired(last_access, now, self._ttl) \
                else None
            if item is not None:
                found[item_id] = item
                if now - last_access >= TOUCH_INTERVAL_SECONDS and not self._closed:
                    self._queue.put(_Touch(response_id, now))
        return found

    def _pending_items(self, item_ids: set[str], now: float) -> dict[str, Item]:
        """Wanted items of entries not yet committed (few: the writer is never far behind)."""
        found: dict[str, Item] = {}
        with self._pending_lock:
            for pending in self._pending.values():
                if not expired(pending.last_access, now, self._ttl):
                    found.update((item_id, item) for item_id, item in
                                 indexed_items(pending.entry) if item_id in item_ids)
        return found

    def _select_items(self, item_ids: list[str]) -> list[tuple[str, str, float, bytes]]:
        rows: list[tuple[str, str, float, bytes]] = []
        try:
            with self._read_lock:
                for start in range(0, len(item_ids), ITEMS_PER_SELECT):
                    if self._closed:
                        break
                    chunk = item_ids[start:start + ITEMS_PER_SELECT]
                    query = _SELECT_ITEMS.format(",".join("?" * len(chunk)))
                    rows += self._reader.execute(query, chunk).fetchall()
        except sqlite3.Error as error:
            log.warning("response store item lookup failed: %s", error)
        return [(str(a), str(b), float(c), bytes(d)) for a, b, c, d in rows]

    def _after_grace(self, look: Callable[[], _Found], enough: Callable[[_Found], bool],
                     ) -> _Found | None:
        """`look` again until `enough` of it, for up to `miss_grace` seconds (blocking:
        the store is read in worker threads); None if it never was."""
        deadline = time.monotonic() + self.miss_grace
        pause = 0.002
        while not self._closed and time.monotonic() + pause <= deadline:
            time.sleep(pause)
            found = look()
            if enough(found):
                return found
            pause = min(2 * pause, 0.05)
        return None

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
            self._commit(*self._encode_all(writes.values()), touches)
        except Exception:
            log.exception("response store writer failed; %d entries lost", len(writes))
        finally:
            self._release(writes.values())

    def _encode_all(self, writes: Iterable[_Pending]) -> tuple[list[_Row], list[_ItemRow]]:
        rows: list[_Row] = []
        item_rows: list[_ItemRow] = []
        for pending in writes:
            entry = pending.entry
            try:
                body = encode_turn(entry)
                items = [(item_id, entry.response_id, encode_item(item))
                         for item_id, item in indexed_items(entry)]
            except (TypeError, ValueError, RecursionError) as error:
                log.warning("response %s cannot be stored: %s", entry.response_id, error)
                continue
            size = len(body) + sum(len(item[2]) for item in items)
            rows.append((entry.response_id, entry.created_at, pending.last_access, size, body))
            item_rows += items
        return rows, item_rows

    def _commit(self, rows: list[_Row], item_rows: list[_ItemRow],
                touches: list[tuple[float, str]]) -> None:
        if not rows and not touches:
            return
        with transaction(self._writer) as connection:
            connection.executemany(_INSERT, rows)
            connection.executemany(_INSERT_ITEM, item_rows)
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
        with transaction(self._writer) as connection:
            connection.execute(_PRUNE_EXPIRED, (now - self._ttl,))
            connection.execute(_PRUNE_COUNT, (self._capacity,))
            (total,) = connection.execute(_TOTAL).fetchone()
            if total > self._max_bytes:
                connection.execute(_PRUNE_BYTES, (self._max_bytes,))
                (total,) = connection.execute(_TOTAL).fetchone()
            connection.execute(_PRUNE_ITEMS)
        self._payload_bytes = total
