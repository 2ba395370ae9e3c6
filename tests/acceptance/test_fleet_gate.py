"""Fleet mode: two chatmock processes on one Redis share a provider's `--max-concurrency`.

Both forward to one fake xAI that counts the requests it answers at once
(`fake_server.CountingApp`); with `--max-concurrency 1` it never sees two, however
the requests are spread over the processes (upstream/gate_fleet.py).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from chatmock.testing.redis_server import RedisServer

from .conftest import Process
from .test_provider_gate import chat, gates, settled
from .test_providers import fakes, start_with_providers

__all__ = ["fakes"]  # the fixture, shared with test_providers
SLOW = "fake:deltas=5 fake:delay_ms=40"


def in_flight(fake: Process, method: str = "GET") -> dict[str, int]:
    request = urllib.request.Request(fake.url + "/__fake__/in-flight", method=method)
    with urllib.request.urlopen(request, timeout=10) as reply:
        counts: dict[str, int] = json.load(reply)
    return counts


@pytest.fixture
def fleet(tmp_path: Path, fakes: dict[str, Process],
          redis_server: RedisServer) -> Iterator[list[Process]]:
    servers = [start_with_providers(tmp_path / name, fakes, "--state", redis_server.url,
                                    "--max-concurrency", "1", "--queue-timeout", "30")
               for name in ("one", "two")]
    yield servers
    for server in servers:
        server.stop()


def test_requests_through_both_processes_never_overlap_at_the_provider(
        fleet: list[Process], fakes: dict[str, Process]) -> None:
    in_flight(fakes["xai"], "DELETE")
    started = time.monotonic()

    def one(number: int) -> int:
        status, _, _ = chat(fleet[number % 2], f"{SLOW} n{number}", key=f"client{number}",
                            stream=number % 3 == 0)
        return status

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(one, range(10)))
    assert statuses == [200] * 10
    assert in_flight(fakes["xai"]) == {"now": 0, "most": 1}
    assert time.monotonic() - started > 10 * 0.2  # one after the other: 5 deltas of 40 ms
    for server in fleet:
        gate: dict[str, Any] = settled(server)
        assert gate["scope"] == "fleet" and gate["permits"] == 1
        assert (gate["in_use"], gate["waiting"], gate["fleet_waiting"]) == (0, 0, 0)


def test_redis_down_each_process_keeps_serving_under_its_own_limit(
        fleet: list[Process], fakes: dict[str, Process], redis_server: RedisServer) -> None:
    redis_server.stop()
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(lambda n: chat(fleet[n % 2], f"{SLOW} down{n}")[0],
                                 range(4)))
    assert statuses == [200] * 4
    for server in fleet:
        assert gates(server)["xai"]["scope"] == "process (Redis unavailable)"
