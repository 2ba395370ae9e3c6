"""`chatmock info`'s response store section: what it reads from the SQLite file beside a
running server, and how it shows it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from chatmock.commands import store_summary
from chatmock.info import StoreSummary, format_bytes, render_json, render_text, store_lines
from chatmock.state.response_store_sqlite import SqliteResponseStore
from chatmock.state.stores import store_path
from chatmock.turns import StoredResponse

from .test_info import SIGNED_IN

NOW = datetime(2026, 7, 26, 10, 15, tzinfo=UTC)


def turn(index: int) -> StoredResponse:
    item = {"type": "message", "role": "user",
            "content": [{"type": "input_text", "text": f"turn {index} " * 200}]}
    return StoredResponse(f"resp_{index}", None, [item], [], 1.0)


def test_format_bytes() -> None:
    assert [format_bytes(n) for n in (0, 1023, 1536, 256 * 1024 * 1024, 5 * 1024**4)] == [
        "0 B", "1023 B", "1.5 KiB", "256.0 MiB", "5120.0 GiB"]


def test_summary_of_a_store_in_use(tmp_path: Path) -> None:
    env = {"CHATGPT_LOCAL_HOME": str(tmp_path), "CHATGPT_LOCAL_RESPONSES_CAPACITY": "500"}
    store = SqliteResponseStore(store_path(env))
    try:
        for index in range(3):
            store.put(turn(index))
        assert store.flush(timeout=5)
        summary = store_summary(env)  # while the "server" still holds the store open
    finally:
        store.close()
    assert summary["kind"] == "sqlite" and summary["path"] == str(tmp_path / "responses.sqlite3")
    assert summary["entries"] == 3 and 0 < summary["bytes"] < summary["file_bytes"]
    assert (summary["max_entries"], summary["max_bytes"]) == (500, 256 * 1024 * 1024)
    assert "problem" not in summary


def test_summary_before_any_turn_and_of_the_memory_store(tmp_path: Path) -> None:
    summary = store_summary({"CHATGPT_LOCAL_HOME": str(tmp_path)})
    assert (summary["entries"], summary["bytes"], summary["file_bytes"]) == (0, 0, 0)
    assert not (tmp_path / "responses.sqlite3").exists()  # info creates nothing
    memory = store_summary({"CHATGPT_LOCAL_HOME": str(tmp_path),
                            "CHATGPT_LOCAL_RESPONSES_STORE": "memory",
                            "CHATGPT_LOCAL_RESPONSES_MAX_BYTES": "1048576"})
    assert memory == StoreSummary(kind="memory", max_entries=10_000, max_bytes=1048576)


def test_summary_of_an_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "responses.sqlite3").write_bytes(b"garbage" * 1000)
    summary = store_summary({"CHATGPT_LOCAL_HOME": str(tmp_path)})
    assert "problem" in summary and "entries" not in summary
    assert "Unreadable" in "\n".join(store_lines(summary))


def test_the_store_section_in_text_and_json() -> None:
    summary = StoreSummary(kind="sqlite", path="/home/u/.chatgpt-local/responses.sqlite3",
                           entries=1234, bytes=3 * 1024 * 1024, file_bytes=4 * 1024 * 1024,
                           max_entries=10_000, max_bytes=256 * 1024 * 1024)
    text = render_text(SIGNED_IN, None, now=NOW, color=False, store=summary)
    assert text.endswith("""
🗄 Response Store
  • SQLite: /home/u/.chatgpt-local/responses.sqlite3
  • Turns: 1,234 of at most 10,000
  • Size: 3.0 MiB compressed, of at most 256.0 MiB (4.0 MiB on disk)
""")
    assert render_json(SIGNED_IN, None, now=NOW, store=summary)["responses_store"] == summary
    memory = StoreSummary(kind="memory", max_entries=10, max_bytes=2048)
    assert store_lines(memory) == [
        "  • In memory, inside the running server (its GET /health shows how full)",
        "  • Bounds: at most 10 turns and 2.0 KiB"]
    assert "Response Store" not in render_text(SIGNED_IN, None, now=NOW, color=False)
