"""`chatmock serve --workers 2`: two processes on one port, kept by a supervisor.

A client reaches one worker per connection; to talk to a given worker, a test
opens connections until `/health` on one of them names that worker's pid, and
keeps using that connection (an httpx pool of one, shared with the official
client)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import openai
import pytest

from .conftest import Process, recorded_requests, start_chatmock
from .test_openai_responses import three_turn_loop

ATTEMPTS = 400


def worker_of_new_connection(server: Process) -> dict[str, Any]:
    """The `worker` of /health over a fresh connection (urllib opens one per request)."""
    with urllib.request.urlopen(f"{server.url}/health", timeout=10) as reply:
        worker: dict[str, Any] = json.load(reply)["worker"]
    return worker


def live_workers(server: Process, count: int = 2) -> dict[int, dict[str, Any]]:
    """index -> worker, once fresh connections have met `count` distinct workers."""
    seen: dict[int, dict[str, Any]] = {}
    for _ in range(ATTEMPTS):
        worker = worker_of_new_connection(server)
        seen[worker["index"]] = worker
        if len(seen) == count:
            return seen
    raise AssertionError(f"only {sorted(seen)} answered in {ATTEMPTS} connections")


class Pinned:
    """An official client whose one connection is served by the worker with `pid`."""

    def __init__(self, server: Process, pid: int) -> None:
        for _ in range(ATTEMPTS):
            http = httpx.Client(timeout=30, limits=httpx.Limits(
                max_connections=1, max_keepalive_connections=1))
            if http.get(f"{server.url}/health").json()["worker"]["pid"] == pid:
                break
            http.close()
        else:
            raise AssertionError(f"no connection reached worker {pid}")
        self.http = http
        self.openai = openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0,
                                    http_client=cast(Any, http))

    def pid(self, server: Process) -> int:
        """The worker behind the pinned connection, asked over that connection."""
        answer: int = self.http.get(f"{server.url}/health").json()["worker"]["pid"]
        return answer

    def close(self) -> None:
        self.openai.close()
        self.http.close()


@pytest.fixture
def server(tmp_path: Path, fake_upstream: Process) -> Iterator[Process]:
    process = start_chatmock(tmp_path, fake_upstream, "--workers", "2",
                             "--shutdown-timeout", "20")
    yield process
    process.stop()


@pytest.fixture
def pinned(server: Process) -> Iterator[list[Pinned]]:
    clients = [Pinned(server, worker["pid"]) for worker in live_workers(server).values()]
    yield clients
    for client in clients:
        client.close()


def test_both_workers_serve_on_one_port(server: Process) -> None:
    workers = live_workers(server)
    assert workers[0]["pid"] != workers[1]["pid"] != server.popen.pid
    for worker in workers.values():
        assert worker["count"] == 2 and worker["restarts"] == 0
        assert worker["supervisor_pid"] == server.popen.pid


def test_a_killed_worker_is_restarted(server: Process) -> None:
    before = live_workers(server)
    os.kill(before[1]["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # meanwhile worker 0 takes every connection
        successor = worker_of_new_connection(server)
        if successor["index"] == 1:
            break
    assert successor["pid"] != before[1]["pid"] and successor["restarts"] == 1
    assert live_workers(server)[0] == before[0]
    assert "was killed by SIGKILL" in server.log.read_text()


def test_sigterm_drains_every_worker(server: Process, pinned: list[Pinned]) -> None:
    streams = [iter(client.openai.chat.completions.create(
        model="gpt-5.4", stream=True,
        messages=[{"role": "user", "content": "x fake:deltas=12 fake:delay_ms=100"}]))
        for client in pinned]
    for chunks in streams:
        assert next(chunks).choices[0].delta.role == "assistant"
    server.popen.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", server.port)) != 0, "still accepting while draining"
    for chunks in streams:
        rest = list(chunks)
        text = "".join(c.choices[0].delta.content or "" for c in rest if c.choices)
        assert text.count("tok") == 12 and rest[-1].choices[0].finish_reason == "stop"
    assert server.popen.wait(10) == 0


def test_a_chained_conversation_moves_between_workers(server: Process, pinned: list[Pinned],
                                                     fake_upstream: Process) -> None:
    """Each turn on the other worker: the turn before it was stored by that one."""
    turns = 0

    def turn(fields: dict[str, Any]) -> Any:
        nonlocal turns
        client = pinned[turns % 2]
        turns += 1
        return client.openai.responses.create(model="gpt-5.4", **fields)

    three_turn_loop(turn, fake_upstream)
    assert pinned[0].pid(server) != pinned[1].pid(server)


def test_a_conversation_keeps_its_prompt_cache_session_on_every_worker(
        pinned: list[Pinned], fake_upstream: Process) -> None:
    for client in pinned:
        client.openai.responses.create(model="gpt-5.4", input="same conversation everywhere",
                                       instructions="cache check")
    sessions = {record["headers"]["session-id"] for record in recorded_requests(fake_upstream)
                if "same conversation everywhere" in str(record.get("body"))}
    assert len(sessions) == 1


def test_a_setting_only_a_worker_can_check_stops_the_server_with_2(tmp_path: Path) -> None:
    empty = tmp_path / "prompt.md"
    empty.write_text("")
    result = subprocess.run([sys.executable, "-m", "chatmock", "serve", "--port", "0",
                             "--workers", "2", "--base-instructions", str(empty)],
                            capture_output=True, text=True, timeout=30,
                            env={**os.environ, "CHATGPT_LOCAL_HOME": str(tmp_path)})
    assert result.returncode == 2
    assert "--base-instructions" in result.stderr and "empty" in result.stderr
