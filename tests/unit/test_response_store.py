"""Response stores for previous_response_id: memory and SQLite behind one suite."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chatmock.state.response_store import (
    MemoryResponseStore,
    ResponseStore,
    look_up,
)
from chatmock.state.response_store_sqlite import PRUNE_INTERVAL_SECONDS, SqliteResponseStore
from chatmock.state.stores import open_store
from chatmock.turns import StoreAnswer, StoredResponse, StoreQuery

TTL = 3600.0


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def warnings(self) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= logging.WARNING]


@pytest.fixture
def store_log() -> Iterator[ListHandler]:
    """Records of chatmock.responses, whatever propagation other tests configured."""
    handler = ListHandler()
    logger = logging.getLogger("chatmock.responses")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def entry(response_id: str, text: str = "hello", **changes: Any) -> StoredResponse:
    fields: dict[str, Any] = {
        "response_id": response_id,
        "instructions": "be brief",
        "context": [{"type": "message", "role": "user",
                     "content": [{"type": "input_text", "text": text}]}],
        "output": [{"type": "message", "role": "assistant",
                    "content": [{"type": "output_text", "text": f"re: {text}"}]}],
        "created_at": 1_700_000_000.5,
    }
    fields.update(changes)
    return StoredResponse(**fields)


@dataclass
class Harness:
    store: ResponseStore
    clock: FakeClock

    def settle(self) -> None:
        """Let background writes land (no-op for the memory store)."""
        if isinstance(self.store, SqliteResponseStore):
            assert self.store.flush(timeout=5)

    def prune(self) -> None:
        """Make the SQLite writer run its once-a-minute pruning now."""
        self.settle()
        if isinstance(self.store, SqliteResponseStore):
            self.clock.advance(PRUNE_INTERVAL_SECONDS + 1)
            self.settle()


Factory = Callable[..., Harness]


@pytest.fixture
def make_sqlite(tmp_path: Path) -> Iterator[Callable[..., SqliteResponseStore]]:
    stores: list[SqliteResponseStore] = []

    def make(path: Path | None = None, **limits: Any) -> SqliteResponseStore:
        store = SqliteResponseStore(path or tmp_path / "home" / "responses.sqlite3", **limits)
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


@pytest.fixture(params=["memory", "sqlite"])
def make(request: pytest.FixtureRequest,
         make_sqlite: Callable[..., SqliteResponseStore]) -> Factory:
    def factory(**limits: Any) -> Harness:
        clock = FakeClock()
        limits = {"ttl_seconds": TTL, "clock": clock, **limits}
        if request.param == "memory":
            return Harness(MemoryResponseStore(**limits), clock)
        return Harness(make_sqlite(**limits), clock)

    return factory


def count_rows(path: Path) -> int:
    connection = sqlite3.connect(path)
    try:
        (count,) = connection.execute("SELECT COUNT(*) FROM responses").fetchone()
        return int(count)
    finally:
        connection.close()


def query(path: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(sql, args).fetchall()
    finally:
        connection.close()


# --------------------------------------------------------------------------- both stores


def test_round_trip_keeps_nested_items_and_non_ascii(make: Factory) -> None:
    h = make()
    stored = entry("resp_1", text="héllo wörld — 日本語 🌍 \ud800 lone surrogate",
                   context=[
                       {"type": "message", "role": "developer",
                        "content": [{"type": "input_text", "text": "ünïcode"}]},
                       {"type": "function_call", "call_id": "call_1", "name": "get_weather",
                        "arguments": '{"city":"Zürich","nested":{"a":[1,2.5,null,true]}}'},
                       {"type": "function_call_output", "call_id": "call_1", "output": ""},
                       {"type": "reasoning", "id": "rs_1", "summary": [],
                        "encrypted_content": "gAAA" * 50},
                       {"deep": [[[{"x": {"y": [None, False, 0, -1.25e-7, "\n\t\"\\"]}}]]]},
                   ])
    h.store.put(stored)
    h.settle()
    assert h.store.get("resp_1") == stored


def test_instructions_may_be_none(make: Factory) -> None:
    h = make()
    h.store.put(entry("resp_1", instructions=None, output=[]))
    h.settle()
    got = h.store.get("resp_1")
    assert got is not None
    assert got.instructions is None
    assert got.output == []


def test_unknown_id_is_none(make: Factory) -> None:
    h = make()
    h.store.put(entry("resp_1"))
    h.settle()
    assert h.store.get("resp_unknown") is None
    assert h.store.get("") is None


def test_put_replaces_an_entry_with_the_same_id(make: Factory) -> None:
    h = make()
    h.store.put(entry("resp_1", text="first"))
    h.store.put(entry("resp_1", text="second"))
    h.settle()
    assert h.store.get("resp_1") == entry("resp_1", text="second")


def test_entry_expires_ttl_after_last_access(make: Factory) -> None:
    h = make()
    h.store.put(entry("resp_1"))
    h.settle()
    h.clock.advance(TTL - 1)
    assert h.store.get("resp_1") is not None  # refreshes
    h.settle()
    h.clock.advance(TTL - 1)
    assert h.store.get("resp_1") is not None
    h.settle()
    h.clock.advance(TTL)
    assert h.store.get("resp_1") is None


def test_untouched_entry_expires_while_used_one_lives(make: Factory) -> None:
    h = make()
    h.store.put(entry("old"))
    h.store.put(entry("used"))
    h.settle()
    h.clock.advance(500)
    assert h.store.get("used") is not None
    h.settle()
    h.clock.advance(TTL - 300)
    h.prune()  # advances the clock a minute more for the SQLite store
    assert h.store.get("old") is None
    assert h.store.get("used") is not None


def test_capacity_evicts_least_recently_used(make: Factory) -> None:
    h = make(capacity=3)
    for index in range(5):
        h.store.put(entry(f"resp_{index}"))
        h.clock.advance(1)
    h.prune()
    assert [h.store.get(f"resp_{i}") is not None for i in range(5)] == [
        False, False, True, True, True]


def test_get_protects_an_entry_from_eviction(make: Factory) -> None:
    h = make(capacity=3)
    for name in ("a", "b", "c"):
        h.store.put(entry(name))
        h.clock.advance(61)  # the SQLite store refreshes rows at most once a minute
    assert h.store.get("a") is not None
    h.settle()
    h.store.put(entry("d"))
    h.prune()
    assert h.store.get("b") is None
    assert all(h.store.get(name) is not None for name in ("a", "c", "d"))


def test_close_is_idempotent(make: Factory) -> None:
    h = make()
    h.store.put(entry("resp_1"))
    h.store.close()
    h.store.close()


# --------------------------------------------------------------------------- memory


def test_memory_get_refreshes_lru_order() -> None:
    store = MemoryResponseStore(capacity=3)
    for name in ("a", "b", "c"):
        store.put(entry(name))
    assert store.get("a") is not None
    store.put(entry("d"))
    assert store.get("b") is None
    assert [store.get(n) is not None for n in ("a", "c", "d")] == [True, True, True]
    assert len(store) == 3


def test_memory_put_drops_expired_entries() -> None:
    clock = FakeClock()
    store = MemoryResponseStore(ttl_seconds=10, clock=clock)
    for index in range(100):
        store.put(entry(f"resp_{index}"))
    clock.advance(10)
    store.put(entry("fresh"))
    assert len(store) == 1


# --------------------------------------------------------------------------- sqlite


def test_sqlite_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "responses.sqlite3"
    first = SqliteResponseStore(path)
    stored = entry("resp_1", text="persisted ✓")
    first.put(stored)
    first.close()
    second = SqliteResponseStore(path)
    try:
        assert second.get("resp_1") == stored
    finally:
        second.close()


def test_sqlite_put_is_write_behind(make_sqlite: Callable[..., SqliteResponseStore]) -> None:
    store = make_sqlite()
    assert store.flush(timeout=5)
    with store.writer_paused():
        for index in range(100):
            store.put(entry(f"resp_{index}"))
        assert count_rows(store.path) == 0  # nothing reached the database synchronously
        assert store.get("resp_42") == entry("resp_42")  # served from the write-behind map
    assert store.flush(timeout=5)
    assert count_rows(store.path) == 100
    assert store.get("resp_42") == entry("resp_42")


def test_sqlite_writes_a_backlog_in_one_transaction(
        make_sqlite: Callable[..., SqliteResponseStore]) -> None:
    store = make_sqlite()
    assert store.flush(timeout=5)
    statements: list[str] = []
    with store.writer_paused():
        store._writer.set_trace_callback(statements.append)
        for index in range(200):
            store.put(entry(f"resp_{index}"))
    assert store.flush(timeout=5)
    store._writer.set_trace_callback(None)
    assert statements.count("COMMIT") == 1
    assert count_rows(store.path) == 200


def test_sqlite_close_flushes_pending_writes(tmp_path: Path) -> None:
    path = tmp_path / "responses.sqlite3"
    store = SqliteResponseStore(path)
    with store.writer_paused():
        store.put(entry("resp_1"))
        store.close()  # resumes the writer, which commits before stopping
    assert count_rows(path) == 1
    store.put(entry("resp_2"))  # dropped after close
    assert store.get("resp_1") is None


@pytest.mark.parametrize("damage", ["random bytes", "malformed", "foreign schema",
                                    "future version", "our table, wrong columns"])
def test_sqlite_unusable_file_is_moved_aside(tmp_path: Path, store_log: ListHandler,
                                             damage: str) -> None:
    path = tmp_path / "responses.sqlite3"
    _damage(path, damage)
    original = path.read_bytes()
    store = SqliteResponseStore(path)
    try:
        store.put(entry("resp_1"))
        assert store.flush(timeout=5)
        assert store.get("resp_1") == entry("resp_1")
    finally:
        store.close()
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("responses.sqlite3.corrupt-")]
    assert len(aside) == 1
    assert aside[0].read_bytes() == original
    assert any("unusable" in message for message in store_log.warnings())
    assert count_rows(path) == 1


def _damage(path: Path, damage: str) -> None:
    if damage == "random bytes":
        path.write_bytes(os.urandom(8192))
        return
    if damage == "malformed":
        store = SqliteResponseStore(path)
        for index in range(20):
            store.put(entry(f"resp_{index}", text="x" * 3000))
        store.close()
        data = bytearray(path.read_bytes())
        data[100:] = b"\xff" * (len(data) - 100)  # keep the header, wreck every page
        path.write_bytes(bytes(data))
        return
    connection = sqlite3.connect(path)
    if damage == "foreign schema":
        connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
        connection.execute("INSERT INTO notes (text) VALUES ('keep me')")
    elif damage == "future version":
        connection.execute("CREATE TABLE responses (id TEXT PRIMARY KEY, created_at REAL,"
                           " last_access REAL, size INTEGER, body BLOB)")
        connection.execute("PRAGMA user_version = 99")
    else:
        connection.execute("CREATE TABLE responses (id TEXT PRIMARY KEY, data TEXT)")
        connection.execute("PRAGMA user_version = 1")
    connection.commit()
    connection.close()


def test_sqlite_healthy_file_is_not_moved(tmp_path: Path, store_log: ListHandler) -> None:
    path = tmp_path / "responses.sqlite3"
    SqliteResponseStore(path).close()
    SqliteResponseStore(path).close()
    assert [p.name for p in tmp_path.iterdir()] == ["responses.sqlite3"]
    assert store_log.warnings() == []


def test_sqlite_file_modes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    path = home / "responses.sqlite3"
    previous = os.umask(0o022)
    try:
        store = SqliteResponseStore(path)
        try:
            store.put(entry("resp_1"))
            assert store.flush(timeout=5)
            for file in home.iterdir():  # the database and, while open, its -wal and -shm
                assert file.stat().st_mode & 0o777 == 0o600, file.name
        finally:
            store.close()
    finally:
        os.umask(previous)
    assert home.stat().st_mode & 0o777 == 0o700
    assert path.stat().st_mode & 0o777 == 0o600


def test_sqlite_tightens_an_existing_file_mode(tmp_path: Path) -> None:
    path = tmp_path / "responses.sqlite3"
    SqliteResponseStore(path).close()
    path.chmod(0o644)
    SqliteResponseStore(path).close()
    assert path.stat().st_mode & 0o777 == 0o600


def test_sqlite_prune_deletes_expired_rows(
        make_sqlite: Callable[..., SqliteResponseStore]) -> None:
    clock = FakeClock()
    store = make_sqlite(ttl_seconds=TTL, clock=clock)
    store.put(entry("old_1"))
    store.put(entry("old_2"))
    assert store.flush(timeout=5)
    clock.advance(TTL)
    store.put(entry("new"))
    assert store.flush(timeout=5)
    assert query(store.path, "SELECT id FROM responses") == [("new",)]


def test_sqlite_prune_deletes_rows_beyond_capacity_at_most_once_a_minute(
        make_sqlite: Callable[..., SqliteResponseStore]) -> None:
    clock = FakeClock()
    store = make_sqlite(capacity=2, clock=clock)
    for index in range(5):
        store.put(entry(f"resp_{index}"))
        clock.advance(1)
    assert store.flush(timeout=5)
    clock.advance(PRUNE_INTERVAL_SECONDS)
    assert store.flush(timeout=5)
    assert sorted(query(store.path, "SELECT id FROM responses")) == [("resp_3",), ("resp_4",)]
    for index in range(5, 8):
        store.put(entry(f"resp_{index}"))
    assert store.flush(timeout=5)
    assert count_rows(store.path) == 5  # less than a minute since the last pruning
    clock.advance(PRUNE_INTERVAL_SECONDS)
    assert store.flush(timeout=5)
    assert count_rows(store.path) == 2


def test_sqlite_prune_keeps_newest_rows_within_max_bytes(
        make_sqlite: Callable[..., SqliteResponseStore]) -> None:
    clock = FakeClock()
    store = make_sqlite(max_bytes=20_000, clock=clock)
    for index in range(10):
        store.put(entry(f"resp_{index}", text=os.urandom(4000).hex()))  # ~4 KB compressed
        clock.advance(1)
    assert store.flush(timeout=5)
    clock.advance(PRUNE_INTERVAL_SECONDS)
    assert store.flush(timeout=5)
    kept = {row[0] for row in query(store.path, "SELECT id FROM responses")}
    (total,) = query(store.path, "SELECT SUM(size) FROM responses")[0]
    assert total <= 20_000
    assert 2 <= len(kept) < 10
    assert kept == {f"resp_{i}" for i in range(10 - len(kept), 10)}


def test_sqlite_get_refreshes_last_access_at_most_once_a_minute(
        make_sqlite: Callable[..., SqliteResponseStore]) -> None:
    clock = FakeClock()
    store = make_sqlite(clock=clock)
    start = clock.now
    store.put(entry("resp_1"))
    assert store.flush(timeout=5)
    clock.advance(30)
    assert store.get("resp_1") is not None
    assert store.flush(timeout=5)
    assert query(store.path, "SELECT last_access FROM responses") == [(start,)]
    clock.advance(31)
    assert store.get("resp_1") is not None
    assert store.flush(timeout=5)
    assert query(store.path, "SELECT last_access FROM responses") == [(start + 61,)]


def test_sqlite_concurrent_puts_from_many_threads(
        make_sqlite: Callable[..., SqliteResponseStore]) -> None:
    store = make_sqlite()
    failures: list[str] = []

    def worker(thread: int) -> None:
        for index in range(250):
            name = f"resp_{thread}_{index}"
            store.put(entry(name, text=name))
            if store.get(name) != entry(name, text=name):
                failures.append(name)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert store.flush(timeout=5)
    assert count_rows(store.path) == 2000
    assert store.get("resp_7_249") == entry("resp_7_249", text="resp_7_249")


def test_sqlite_unreadable_row_is_none(make_sqlite: Callable[..., SqliteResponseStore],
                                       store_log: ListHandler) -> None:
    store = make_sqlite()
    connection = sqlite3.connect(store.path)
    connection.execute("INSERT INTO responses VALUES ('resp_bad', 0, ?, 3, x'010203')",
                       (store._clock(),))
    connection.commit()
    connection.close()
    assert store.get("resp_bad") is None
    assert any("unreadable" in message for message in store_log.warnings())


def test_sqlite_unencodable_entry_is_dropped_alone(
        make_sqlite: Callable[..., SqliteResponseStore], store_log: ListHandler) -> None:
    store = make_sqlite()
    with store.writer_paused():
        store.put(entry("resp_bad", context=[{"not json": {1, 2}}]))
        store.put(entry("resp_good"))
    assert store.flush(timeout=5)
    assert query(store.path, "SELECT id FROM responses") == [("resp_good",)]
    assert store.get("resp_bad") is None
    assert any("cannot be stored" in message for message in store_log.warnings())


# --------------------------------------------------------------------------- open_store


def test_open_store_kinds(tmp_path: Path) -> None:
    path = tmp_path / "responses.sqlite3"
    memory = open_store("memory", path, ttl_seconds=10, capacity=5, max_bytes=1000)
    assert isinstance(memory, MemoryResponseStore)
    assert not path.exists()
    sqlite = open_store("sqlite", path, ttl_seconds=10, capacity=5, max_bytes=1000)
    try:
        assert isinstance(sqlite, SqliteResponseStore)
    finally:
        sqlite.close()
    with pytest.raises(ValueError, match="unknown response store"):
        open_store("redis", path)


def test_open_store_falls_back_to_memory(tmp_path: Path, store_log: ListHandler) -> None:
    path = tmp_path / "responses.sqlite3"
    path.mkdir()  # cannot be opened as a file
    store = open_store("sqlite", path, capacity=5, max_bytes=1000)
    assert isinstance(store, MemoryResponseStore)
    assert any("in memory only" in message for message in store_log.warnings())


# --------------------------------------------------------------------------- item index


REASONING = {"type": "reasoning", "id": "rs_1", "summary": [],
             "encrypted_content": "gAAAA-secret"}
MESSAGE = {"type": "message", "id": "msg_1", "role": "assistant",
           "content": [{"type": "output_text", "text": "hi"}]}
CALL = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f",
        "arguments": "{}"}


def with_output(response_id: str, *items: dict[str, Any]) -> Any:
    return entry(response_id, output=list(items))


def test_output_items_are_found_by_id(make: Factory) -> None:
    h = make()
    h.store.put(with_output("resp_1", REASONING, MESSAGE, CALL))
    assert h.store.find_items(["rs_1", "fc_1"]) == {"rs_1": REASONING, "fc_1": CALL}
    h.settle()  # committed: found in the database too
    assert h.store.find_items(("msg_1", "rs_1", "nope")) == {"msg_1": MESSAGE,
                                                             "rs_1": REASONING}
    assert h.store.find_items([]) == {}


def test_items_without_an_id_and_context_items_are_not_indexed(make: Factory) -> None:
    h = make()
    anonymous = {"type": "message", "role": "assistant", "content": []}
    h.store.put(entry("resp_1", context=[{**MESSAGE, "id": "msg_ctx"}], output=[anonymous]))
    h.settle()
    assert h.store.find_items(["msg_ctx", ""]) == {}


def test_items_expire_with_their_response_and_finding_one_refreshes_it(make: Factory) -> None:
    h = make()
    h.store.put(with_output("resp_1", REASONING))
    h.settle()
    h.clock.advance(TTL - 100)
    assert h.store.find_items(["rs_1"]) == {"rs_1": REASONING}  # refreshes resp_1
    h.settle()
    h.clock.advance(TTL - 100)
    assert h.store.get("resp_1") is not None
    h.settle()
    h.clock.advance(TTL)
    assert h.store.find_items(["rs_1"]) == {}


def test_evicted_responses_take_their_items(make: Factory) -> None:
    h = make(capacity=2)
    h.store.put(with_output("resp_1", REASONING))
    h.store.put(with_output("resp_2", MESSAGE))
    h.store.put(with_output("resp_3", CALL))
    h.prune()
    assert h.store.get("resp_1") is None
    assert h.store.find_items(["rs_1", "msg_1", "fc_1"]) == {"msg_1": MESSAGE, "fc_1": CALL}


def test_a_newer_response_with_the_same_item_wins(make: Factory) -> None:
    h = make()
    newer = {**MESSAGE, "content": [{"type": "output_text", "text": "newer"}]}
    h.store.put(with_output("resp_1", MESSAGE))
    h.store.put(with_output("resp_2", newer))
    h.settle()
    assert h.store.find_items(["msg_1"]) == {"msg_1": newer}


def test_replacing_a_response_replaces_its_items() -> None:
    store = MemoryResponseStore()
    store.put(with_output("resp_1", REASONING, MESSAGE))
    store.put(with_output("resp_1", MESSAGE))
    assert store.find_items(["rs_1", "msg_1"]) == {"msg_1": MESSAGE}
    store.close()
    assert store.find_items(["msg_1"]) == {}


def test_look_up_answers_a_query_in_one_call(make: Factory) -> None:
    h = make()
    stored = with_output("resp_1", REASONING)
    h.store.put(stored)
    assert look_up(h.store, StoreQuery()) == StoreAnswer()
    assert not StoreQuery() and StoreQuery("resp_1") and StoreQuery(item_ids=("x",))
    answer = look_up(h.store, StoreQuery("resp_1", ("rs_1", "rs_2")))
    assert answer.previous == stored and answer.items == {"rs_1": REASONING}
    assert look_up(h.store, StoreQuery("resp_2")).previous is None


def test_sqlite_item_rows_count_in_the_size_and_go_with_their_response(
        make_sqlite: Callable[..., SqliteResponseStore]) -> None:
    clock = FakeClock()
    store = make_sqlite(capacity=1, clock=clock)
    store.put(with_output("resp_1", REASONING, MESSAGE))
    assert store.flush(5)
    path = store.path
    assert {row[0] for row in query(path, "SELECT item_id FROM items")} == {"rs_1", "msg_1"}
    (size,) = query(path, "SELECT size FROM responses")[0]
    (body,) = query(path, "SELECT SUM(LENGTH(body)) FROM items")[0]
    assert size > body > 0
    store.close()
    reopened = make_sqlite(capacity=1, clock=clock)
    assert reopened.find_items(["rs_1"]) == {"rs_1": REASONING}  # survives a restart
    reopened.put(with_output("resp_2", CALL))
    assert reopened.flush(5)
    clock.advance(PRUNE_INTERVAL_SECONDS + 1)
    reopened.put(with_output("resp_3", CALL))  # a batch, then the pruning that is due
    assert reopened.flush(5)
    assert query(path, "SELECT item_id, response_id FROM items") == [("fc_1", "resp_3")]


def test_sqlite_file_without_the_items_table_gets_it(
        make_sqlite: Callable[..., SqliteResponseStore], tmp_path: Path) -> None:
    store = make_sqlite()
    store.put(with_output("resp_1", REASONING))
    store.close()
    connection = sqlite3.connect(store.path)
    connection.execute("DROP TABLE items")
    connection.commit()
    connection.close()
    reopened = make_sqlite()
    assert reopened.get("resp_1") is not None and reopened.find_items(["rs_1"]) == {}
    reopened.put(with_output("resp_2", MESSAGE))
    assert reopened.flush(5) and reopened.find_items(["msg_1"]) == {"msg_1": MESSAGE}
