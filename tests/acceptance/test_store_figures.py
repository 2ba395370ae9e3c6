"""How full the response store is, as a user sees it: `GET /health` for the in-memory store,
`chatmock info` for the SQLite one, each bounded by `--responses-max-bytes`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import openai

from .conftest import Process, start_chatmock


def health(server: Process) -> dict[str, Any]:
    with urllib.request.urlopen(f"{server.url}/health") as reply:
        document: dict[str, Any] = json.load(reply)
    return document


def turns(server: Process, count: int, text: str, *, chained: bool = True) -> None:
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0,
                       timeout=20) as client:
        previous = None
        for index in range(count):
            reply = client.responses.create(model="gpt-5.4", input=f"{text} {index}",
                                            previous_response_id=previous)
            previous = reply.id if chained else None


def test_the_memory_store_is_bounded_and_shown_by_health(tmp_path: Path,
                                                          fake_upstream: Process) -> None:
    server = start_chatmock(tmp_path, fake_upstream, "--responses-store", "memory",
                            "--responses-max-bytes", "4000")
    try:
        turns(server, 2, "short turn")
        figures = health(server)["responses_store"]
        assert figures["kind"] == "memory" and figures["entries"] == 2
        assert 0 < figures["bytes"] <= 4000 and figures["max_bytes"] == 4000
        turns(server, 6, "a longer turn " + "padding " * 40, chained=False)
        figures = health(server)["responses_store"]  # the oldest turns made room
        assert 2 <= figures["entries"] < 8 and figures["bytes"] <= 4000
    finally:
        server.stop()


def test_info_shows_the_sqlite_store(chatmock_server: Process) -> None:
    turns(chatmock_server, 2, "stored for info")
    home = chatmock_server.log.parent / "home"
    env = {"CHATGPT_LOCAL_HOME": str(home), "HOME": str(home.parent), "PATH": "/usr/bin:/bin"}
    document: dict[str, Any] = {}
    for _ in range(50):  # the store writes behind the request
        result = subprocess.run([sys.executable, "-m", "chatmock", "info", "--json"], env=env,
                                capture_output=True, text=True, timeout=30)
        document = json.loads(result.stdout)["responses_store"]
        if document["entries"] >= 2:
            break
        time.sleep(0.1)
    assert document["kind"] == "sqlite" and document["entries"] >= 2
    assert document["path"] == str(home / "responses.sqlite3")
    assert 0 < document["bytes"] <= document["file_bytes"]
    text = subprocess.run([sys.executable, "-m", "chatmock", "info"], env=env,
                          capture_output=True, text=True, timeout=30).stdout
    assert "🗄 Response Store" in text and "of at most 256.0 MiB" in text
