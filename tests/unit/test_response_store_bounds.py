"""Response stores bounded by bytes: the memory store's estimate, the SQLite store's
prompt pruning, and the figures `/health` and `chatmock info` show."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from chatmock.state.response_store import MemoryResponseStore, estimated_size
from chatmock.state.response_store_sqlite import SqliteResponseStore
from chatmock.state.stores import sqlite_figures
from chatmock.turns import StoredResponse

from .test_response_store import FakeClock, entry, make_sqlite, query  # noqa: F401 (fixture)


def sized(response_id: str, characters: int) -> StoredResponse:
    return entry(response_id, text="x" * characters)


def agent_turn(items: int) -> StoredResponse:
    """A context as an agent builds it: prompts, tool calls, file contents, reasoning."""
    context: list[dict[str, object]] = []
    for index in range(items):
        kind = index % 4
        if kind == 0:
            context.append({"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": f"step {index}: fix the tests é ✓ " * 20}]})
        elif kind == 1:
            context.append({"type": "function_call", "call_id": f"call_{index}",
                            "name": "read_file", "arguments": '{"path": "src/app.py"}'})
        elif kind == 2:
            context.append({"type": "function_call_output", "call_id": f"call_{index - 1}",
                            "output": "def main():\n    return 42\n" * 60})
        else:
            context.append({"type": "reasoning", "summary": [], "id": f"rs_{index}",
                            "encrypted_content": "gAAAAB" + "A" * 1500, "n": index,
                            "ok": True, "none": None})
    return StoredResponse("resp_agent", "be brief", context, context[-3:], 1.0)


@pytest.mark.parametrize("items", [1, 40, 400])
def test_estimated_size_is_close_to_the_json_size(items: int) -> None:
    turn = agent_turn(items)
    document = {"instructions": turn.instructions, "context": turn.context,
                "output": turn.output}
    encoded = len(json.dumps(document, ensure_ascii=False, separators=(",", ":")))
    assert 0.85 * encoded <= estimated_size(turn) <= 1.15 * encoded


def test_estimated_size_survives_deep_nesting() -> None:
    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    turn = StoredResponse("resp_deep", None, [{"content": deep}], [], 1.0)
    assert estimated_size(turn) > 100_000


def test_memory_store_evicts_least_recently_used_past_max_bytes() -> None:
    store = MemoryResponseStore(max_bytes=10_000, clock=FakeClock())
    for index in range(5):
        store.put(sized(f"resp_{index}", 1500))
    assert store.get("resp_0") is None and store.get("resp_1") is None
    assert store.get("resp_2") is not None  # now the most recently used
    store.put(sized("resp_5", 1500))
    assert store.get("resp_3") is None
    assert [store.get(f"resp_{i}") is not None for i in (2, 4, 5)] == [True] * 3
    figures = store.figures()
    assert figures.entries == 3 and figures.max_bytes == 10_000
    assert 9000 <= figures.bytes <= 10_000


def test_memory_store_counts_a_replaced_entry_once() -> None:
    store = MemoryResponseStore(max_bytes=10_000, clock=FakeClock())
    store.put(sized("resp_a", 1500))
    store.put(sized("resp_b", 1500))
    for _ in range(5):
        store.put(sized("resp_a", 1500))
    assert store.get("resp_b") is not None
    assert store.figures().entries == 2
    assert store.figures().bytes == 2 * estimated_size(sized("resp_a", 1500))


def test_memory_store_drops_an_entry_larger_than_the_bound() -> None:
    store = MemoryResponseStore(max_bytes=1000, clock=FakeClock())
    store.put(sized("resp_small", 100))
    store.put(sized("resp_huge", 5000))
    assert store.get("resp_huge") is None
    assert store.figures().bytes == 0 and store.figures().entries == 0


def test_memory_store_expiry_and_close_keep_the_byte_count(tmp_path: Path) -> None:
    clock = FakeClock()
    store = MemoryResponseStore(ttl_seconds=10, clock=clock)
    store.put(sized("resp_old", 500))
    clock.advance(10)
    assert store.get("resp_old") is None
    assert store.figures().bytes == 0
    store.put(sized("resp_new", 500))
    store.close()
    assert store.figures() == (0, 0, store.figures().max_entries, store.figures().max_bytes)


def test_sqlite_prunes_by_bytes_at_once_after_a_batch(
        make_sqlite: Callable[..., SqliteResponseStore]) -> None:  # noqa: F811
    """No minute's wait once the payloads pass max_bytes: a burst of large turns cannot
    grow the file past the bound by more than a batch."""
    clock = FakeClock()
    store = make_sqlite(max_bytes=20_000, clock=clock)
    store.put(entry("resp_first"))
    assert store.flush(timeout=5)  # the first pruning ran; the next is a minute away
    for index in range(10):
        store.put(entry(f"resp_{index}", text=os.urandom(4000).hex()))  # ~4 KB compressed
        assert store.flush(timeout=5)
        (total,) = query(store.path, "SELECT COALESCE(SUM(size), 0) FROM responses")[0]
        assert total <= 20_000
    kept = {row[0] for row in query(store.path, "SELECT id FROM responses")}
    assert "resp_9" in kept and "resp_0" not in kept


def test_sqlite_figures_are_read_beside_the_writer(
        make_sqlite: Callable[..., SqliteResponseStore]) -> None:  # noqa: F811
    store = make_sqlite()
    for index in range(3):
        store.put(sized(f"resp_{index}", 2000))
    assert store.flush(timeout=5)
    entries, payload, on_disk = sqlite_figures(store.path)
    (expected,) = query(store.path, "SELECT SUM(size) FROM responses")[0]
    assert (entries, payload) == (3, expected)
    assert on_disk >= store.path.stat().st_size > 0
    store.put(sized("resp_3", 2000))  # the store keeps working while it is read
    assert store.flush(timeout=5)
    assert sqlite_figures(store.path)[0] == 4


def test_sqlite_figures_of_a_missing_or_foreign_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        sqlite_figures(tmp_path / "none.sqlite3")
    foreign = tmp_path / "foreign.sqlite3"
    foreign.write_bytes(b"not a database at all" * 100)
    with pytest.raises(sqlite3.Error):
        sqlite_figures(foreign)
