"""The SQLite response store shared by several processes (`serve --workers`): concurrent
writers, and a turn another process is still committing."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from chatmock.state.response_store_sqlite import SqliteResponseStore

from .test_response_store import entry

WRITER = """
import sys
from pathlib import Path
from chatmock.turns import StoredResponse
from chatmock.state.response_store_sqlite import SqliteResponseStore

store = SqliteResponseStore(Path(sys.argv[1]))
sys.stdin.readline()  # every writer is open: go
for index in range(int(sys.argv[3])):
    name = f"resp_{sys.argv[2]}_{index}"
    store.put(StoredResponse(name, None, [], [{"type": "message", "id": "msg_" + name}], 1.0))
    if index % 25 == 0:
        store.flush()  # many small transactions, interleaved with the other processes'
store.close()
"""


def test_writers_in_several_processes_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "responses.sqlite3"
    SqliteResponseStore(path).close()  # the schema exists before the race
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(n), "400"],
                                stdin=subprocess.PIPE, stderr=subprocess.PIPE)
               for n in range(3)]
    for writer in writers:
        assert writer.stdin is not None
        writer.stdin.write(b"go\n")
        writer.stdin.close()
    for writer in writers:
        assert writer.wait(60) == 0
        assert writer.stderr is not None
        with writer.stderr:
            assert writer.stderr.read() == b""  # not a write lost, not a warning
    store = SqliteResponseStore(path)
    try:
        found = [store.get(f"resp_{n}_{index}") for n in range(3) for index in range(400)]
        assert all(entry is not None for entry in found)
        assert len(store.find_items([f"msg_resp_2_{index}" for index in range(400)])) == 400
    finally:
        store.close()


def test_a_turn_still_being_committed_elsewhere_is_waited_for(tmp_path: Path) -> None:
    """Two stores on one file stand for two workers: the turn `writer` holds in its
    write-behind map reaches `reader` only once committed, a few ms later."""
    path = tmp_path / "responses.sqlite3"
    writer = SqliteResponseStore(path)
    patient = SqliteResponseStore(path, miss_grace=5.0)
    hasty = SqliteResponseStore(path)
    try:
        with writer.writer_paused():
            writer.put(entry("resp_late"))
            assert hasty.get("resp_late") is None
            found: list[object] = []
            looking = threading.Thread(target=lambda: found.append(patient.get("resp_late")))
            looking.start()
            time.sleep(0.1)  # `patient` misses it, and looks again
        looking.join(10)
        assert found == [entry("resp_late")]
        started = time.monotonic()
        assert patient.get("resp_never") is None  # a true miss costs the grace, no more
        assert 4.5 < time.monotonic() - started < 8
    finally:
        for store in (writer, patient, hasty):
            store.close()
