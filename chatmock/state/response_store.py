"""Local state for `previous_response_id`: what each response sent and produced.

The Codex backend keeps nothing (`store: false`), so for every response we keep
the input items sent upstream for that turn and the turn's output (already
converted to input items); a chained request replays `context + output`.

Two stores share the `ResponseStore` protocol:

* `MemoryResponseStore` -- an `OrderedDict` in LRU order. TTL counts from the
  last access (a `get` refreshes it) and at most `capacity` entries are kept.
  Because the dict is in access order, expired entries are always at its front,
  so `put` drops them (and any overflow) in amortised O(1); no sweeper thread.
  `max_bytes` does not apply (it would need every entry to be measured).

* `SqliteResponseStore` (in `response_store_sqlite`) -- the default, one file in
  the auth home, so chains survive a restart; its module says how it works.

`chatmock.state.stores.open_store` picks one by name.

Contract for callers: treat a `StoredResponse` and its lists/dicts as
immutable. Stores keep references (the SQLite store encodes an entry only when
the writer gets to it), so mutating items after `put`, or items returned by
`get`, changes what is stored.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

Clock = Callable[[], float]
DEFAULT_TTL_SECONDS = 3600.0
DEFAULT_CAPACITY = 10_000
DEFAULT_MAX_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class StoredResponse:
    response_id: str
    instructions: str | None
    context: list[dict[str, Any]]  # the full input items sent upstream for that turn
    output: list[dict[str, Any]]  # that turn's output items, already converted to input items
    created_at: float


class ResponseStore(Protocol):
    def get(self, response_id: str) -> StoredResponse | None: ...

    def put(self, entry: StoredResponse) -> None: ...

    def close(self) -> None: ...


def expired(last_access: float, now: float, ttl_seconds: float) -> bool:
    """TTL counts from the last access."""
    return now - last_access >= ttl_seconds


# --------------------------------------------------------------------------- memory


class MemoryResponseStore:
    """LRU + TTL-since-last-access map; thread-safe, O(1) amortised per call."""

    def __init__(self, *, ttl_seconds: float = DEFAULT_TTL_SECONDS,
                 capacity: int = DEFAULT_CAPACITY, clock: Clock = time.time) -> None:
        self._ttl = ttl_seconds
        self._capacity = capacity
        self._clock = clock
        self._entries: OrderedDict[str, tuple[StoredResponse, float]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, response_id: str) -> StoredResponse | None:
        now = self._clock()
        with self._lock:
            record = self._entries.get(response_id)
            if record is None:
                return None
            if expired(record[1], now, self._ttl):
                del self._entries[response_id]
                return None
            self._entries[response_id] = (record[0], now)
            self._entries.move_to_end(response_id)
            return record[0]

    def put(self, entry: StoredResponse) -> None:
        now = self._clock()
        with self._lock:
            self._entries[entry.response_id] = (entry, now)
            self._entries.move_to_end(entry.response_id)
            self._evict(now)

    def close(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _evict(self, now: float) -> None:
        """Drop expired entries (all at the front: access order) and any overflow."""
        entries = self._entries
        while entries:
            _, last_access = next(iter(entries.values()))
            if len(entries) <= self._capacity and not expired(last_access, now, self._ttl):
                return
            entries.popitem(last=False)
