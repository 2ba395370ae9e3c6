"""Local state for `previous_response_id`: what each response sent and produced.

The Codex backend keeps nothing (`store: false`), so for every response we keep
the input items sent upstream for that turn and the turn's output (already
converted to input items); a chained request replays `context + output`.

Output items are also found by their own `id` (`find_items`): a client that
replays a reasoning item without its `encrypted_content`, or sends an
`item_reference`, gets the item chatmock streamed put back. The index holds
the output items of the stored responses only, so it is bounded like them: an
item lives as long as its response (and finding it refreshes the response).

Two stores share the `ResponseStore` protocol:

* `MemoryResponseStore` -- an `OrderedDict` in LRU order. TTL counts from the
  last access (a `get` refreshes it); at most `capacity` entries and
  `max_bytes` of them are kept. Because the dict is in access order, expired
  entries are always at its front, so `put` drops them (and any overflow,
  least recently used first) in amortised O(1); no sweeper thread. An entry's
  size is `estimated_size`, measured once, at `put`: about its JSON size,
  without encoding anything. Chained turns share their item objects in memory,
  so the process holds less than the sum (the bound errs on the safe side).
  `figures()` reports entries and bytes (shown by `GET /health`).

* `SqliteResponseStore` (in `response_store_sqlite`) -- the default, one file in
  the auth home, so chains survive a restart; its module says how it works
  (`max_bytes` bounds its compressed payloads; `chatmock info` shows its
  figures, read from the file by `stores.sqlite_figures`).

* `RedisResponseStore` (in `response_store_redis`) -- fleet mode (`--state
  redis://...`): every chatmock process sharing one Redis sees every turn.

`chatmock.state.stores.open_store` picks one of the first two by name. Routes
see any store through `AsyncResponseStore`: a request's `StoreQuery` is
answered in one call (`look_up`, off the event loop for SQLite, one round trip
for Redis), and `put` returns once the turn can be chained on by any process
sharing the store (routes call it before the terminal event reaches the client).

Contract for callers: treat a `StoredResponse` and its lists/dicts as
immutable. Stores keep references (the SQLite store encodes an entry only when
the writer gets to it), so mutating items after `put`, or items returned by
`get`, changes what is stored.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterator
from typing import Any, NamedTuple, Protocol

from chatmock.turns import Item, StoreAnswer, StoredResponse, StoreQuery

Clock = Callable[[], float]
DEFAULT_TTL_SECONDS = 3600.0
DEFAULT_CAPACITY = 10_000
DEFAULT_MAX_BYTES = 256 * 1024 * 1024


class ResponseStore(Protocol):
    def get(self, response_id: str) -> StoredResponse | None: ...

    def put(self, entry: StoredResponse) -> None: ...

    def find_items(self, item_ids: Collection[str]) -> dict[str, Item]:
        """The stored output items with these ids (those not found are left out)."""
        ...

    def close(self) -> None: ...


class AsyncResponseStore(Protocol):
    """The store as routes use it (see the module docstring)."""

    async def look_up(self, query: StoreQuery) -> StoreAnswer:
        """Everything `query` asks for; an `ApiError` (503) if the store cannot answer."""
        ...

    async def put(self, entry: StoredResponse) -> None:
        """Keep `entry`; never raises (a failure is logged, and the turn kept if it can)."""
        ...

    def health(self) -> dict[str, Any]:
        """What `GET /health` shows of the store (no I/O)."""
        ...

    async def maintain(self) -> None:
        """Background upkeep, run beside the listeners until cancelled (returns at once
        if the store needs none)."""
        ...

    async def aclose(self) -> None: ...


class StoreFigures(NamedTuple):
    """How full a store is, against its bounds."""

    entries: int
    bytes: int
    max_entries: int
    max_bytes: int


def expired(last_access: float, now: float, ttl_seconds: float) -> bool:
    """TTL counts from the last access."""
    return now - last_access >= ttl_seconds


def estimated_size(entry: StoredResponse) -> int:
    """About the entry's compact JSON size in bytes, without encoding it: characters of
    every string and key, plus 2 per string, key and container and 8 per other value.

    One walk over the items: about 1 ms per MB of an agent's context on the 2-core
    machine, a third of `json.dumps` (which would also allocate the text); within a few
    percent of the encoded size, as non-ASCII text counts a character, not its bytes."""
    size = len(entry.instructions or "")
    pending: list[Any] = [entry.context, entry.output]
    while pending:
        value = pending.pop()
        if isinstance(value, str):
            size += len(value) + 2
        elif isinstance(value, dict):
            size += 2 + sum(len(key) + 3 for key in value)
            pending.extend(value.values())
        elif isinstance(value, list):
            size += 2 + len(value)
            pending.extend(value)
        else:
            size += 8
    return size


def look_up(store: ResponseStore, query: StoreQuery) -> StoreAnswer:
    """Everything `query` asks for (blocking for the SQLite store: run it in a thread)."""
    previous = store.get(query.previous_id) if query.previous_id is not None else None
    return StoreAnswer(previous, store.find_items(query.item_ids) if query.item_ids else {})


def indexed_items(entry: StoredResponse) -> Iterator[tuple[str, Item]]:
    """(id, item) of the output items the item index keeps."""
    for item in entry.output:
        item_id = item.get("id")
        if isinstance(item_id, str) and item_id:
            yield item_id, item


# --------------------------------------------------------------------------- memory


class MemoryResponseStore:
    """LRU + TTL-since-last-access map bounded by entries and bytes; thread-safe, O(1)
    amortised per call (plus the entry's measurement on `put`)."""

    def __init__(self, *, ttl_seconds: float = DEFAULT_TTL_SECONDS,
                 capacity: int = DEFAULT_CAPACITY, max_bytes: int = DEFAULT_MAX_BYTES,
                 clock: Clock = time.time) -> None:
        self._ttl = ttl_seconds
        self._capacity = capacity
        self._max_bytes = max_bytes
        self._clock = clock
        # id -> (entry, last access, size); in access order
        self._entries: OrderedDict[str, tuple[StoredResponse, float, int]] = OrderedDict()
        self._bytes = 0
        self._items: dict[str, tuple[str, Item]] = {}  # item id -> (response id, item)
        self._lock = threading.Lock()

    def get(self, response_id: str) -> StoredResponse | None:
        now = self._clock()
        with self._lock:
            record = self._entries.get(response_id)
            if record is None:
                return None
            if expired(record[1], now, self._ttl):
                self._drop(response_id)
                return None
            self._entries[response_id] = (record[0], now, record[2])
            self._entries.move_to_end(response_id)
            return record[0]

    def put(self, entry: StoredResponse) -> None:
        size = estimated_size(entry)
        now = self._clock()
        with self._lock:
            if entry.response_id in self._entries:
                self._drop(entry.response_id)
            self._entries[entry.response_id] = (entry, now, size)
            self._bytes += size
            for item_id, item in indexed_items(entry):
                self._items[item_id] = (entry.response_id, item)
            self._evict(now)

    def find_items(self, item_ids: Collection[str]) -> dict[str, Item]:
        found: dict[str, Item] = {}
        with self._lock:
            for item_id in item_ids:
                indexed = self._items.get(item_id)
                if indexed is not None and self._alive(indexed[0]) is not None:
                    found[item_id] = indexed[1]
        return found

    def close(self) -> None:
        with self._lock:
            self._entries.clear()
            self._items.clear()
            self._bytes = 0

    def figures(self) -> StoreFigures:
        return StoreFigures(len(self._entries), self._bytes, self._capacity, self._max_bytes)

    def __len__(self) -> int:
        return len(self._entries)

    def _alive(self, response_id: str) -> StoredResponse | None:
        """The entry if it has not expired, refreshed as by `get` (lock held)."""
        record = self._entries.get(response_id)
        now = self._clock()
        if record is None or expired(record[1], now, self._ttl):
            return None
        self._entries[response_id] = (record[0], now, record[2])
        self._entries.move_to_end(response_id)
        return record[0]

    def _drop(self, response_id: str) -> None:
        """Forget an entry, its bytes and the items indexed under it (lock held)."""
        entry, _, size = self._entries.pop(response_id)
        self._bytes -= size
        for item_id, _item in indexed_items(entry):
            if self._items.get(item_id, ("",))[0] == response_id:
                del self._items[item_id]

    def _evict(self, now: float) -> None:
        """Drop expired entries (all at the front: access order), then the least recently
        used ones while over a bound."""
        entries = self._entries
        while entries:
            response_id, (_, last_access, _) = next(iter(entries.items()))
            if (len(entries) <= self._capacity and self._bytes <= self._max_bytes
                    and not expired(last_access, now, self._ttl)):
                return
            self._drop(response_id)
