"""The provider gate and backoff, through real sockets (upstream/routing.py, upstream/gate.py).

A chatmock with `--max-concurrency 1` in front of the provider fakes: a request that
finds the permit held past `--queue-timeout` gets a 429 with `Retry-After` in its own
dialect's shape; clients that leave (queued or mid-stream) give their permit back, so
the gate ends where it began; waiting requests are served round-robin per client, so a
person's one request is not stuck behind an agent swarm's queue. Refusals worth
retrying are retried before anything reached the client, the others passed on once.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import Process, recorded_requests
from .test_providers import MODELS, fakes, start_with_providers
from .wsclient import WSClient, output_text

__all__ = ["fakes"]  # the fixture, shared with test_providers
SLOW = "fake:deltas=30 fake:delay_ms=100"  # about three seconds of streaming


def post(server: Process, path: str, body: dict[str, Any], key: str = "unused",
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request("POST", path, json.dumps(body), {
            "content-type": "application/json", "authorization": f"Bearer {key}",
            **(headers or {})})
        reply = connection.getresponse()
        return reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()
    finally:
        connection.close()


def chat(server: Process, text: str, key: str = "unused", stream: bool = False,
         model: str = MODELS["xai"]) -> tuple[int, dict[str, str], bytes]:
    return post(server, "/v1/chat/completions", {
        "model": model, "stream": stream, "messages": [{"role": "user", "content": text}]}, key)


def gates(server: Process) -> dict[str, Any]:
    with urllib.request.urlopen(server.url + "/health", timeout=10) as reply:
        health = json.load(reply)
    return {p["name"]: p["gate"] for p in health["providers"] if p["gate"] is not None}


def settled(server: Process, provider: str = "xai", seconds: float = 5.0) -> dict[str, Any]:
    """The provider's gate once nothing is in use or waiting (or as it is at the deadline)."""
    deadline = time.monotonic() + seconds
    while True:
        gate: dict[str, Any] = gates(server)[provider]
        if (gate["in_use"] == 0 and gate["waiting"] == 0) or time.monotonic() > deadline:
            return gate
        time.sleep(0.05)


class Holder:
    """A streamed request that holds a permit until `release()` closes its socket."""

    def __init__(self, server: Process, key: str = "holder") -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        self.connection.request("POST", "/v1/chat/completions", json.dumps({
            "model": MODELS["xai"], "stream": True,
            "messages": [{"role": "user", "content": SLOW}]}),
            {"content-type": "application/json", "authorization": f"Bearer {key}"})
        self.reply = self.connection.getresponse()
        assert self.reply.status == 200
        self.reply.read1(64)  # the stream has begun: the permit is held

    def release(self) -> None:
        self.connection.close()


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory,
          fakes: dict[str, Process]) -> Iterator[Process]:
    process = start_with_providers(tmp_path_factory.mktemp("chatmock-gate"), fakes,
                                   "--max-concurrency", "1", "--queue-timeout", "0.5")
    yield process
    process.stop()


def test_a_full_gate_answers_429_with_retry_after_in_each_dialect(gated: Process) -> None:
    holder = Holder(gated)
    try:
        status, headers, body = chat(gated, "hi")
        assert status == 429 and int(headers["retry-after"]) >= 1
        assert json.loads(body)["error"]["type"] == "rate_limit_error"
        status, headers, body = post(gated, "/v1/messages", {
            "model": MODELS["xai"], "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}]},
            headers={"anthropic-version": "2023-06-01"})
        assert status == 429 and "retry-after" in headers
        assert json.loads(body) == {"type": "error", "error": {
            "type": "rate_limit_error", "message": json.loads(body)["error"]["message"]}}
        status, headers, body = post(gated, "/api/chat", {
            "model": MODELS["xai"], "messages": [{"role": "user", "content": "hi"}]})
        assert status == 429 and "retry-after" in headers
        assert "busy" in json.loads(body)["error"]
        other = chat(gated, "hi", model=MODELS["openrouter"])  # another provider's gate
        assert other[0] == 200
    finally:
        holder.release()
    assert settled(gated)["in_use"] == 0
    assert chat(gated, "hi")[0] == 200
    assert gates(gated)["xai"]["timed_out"] >= 3


def test_clients_that_leave_give_their_permits_back(gated: Process) -> None:
    """Clients leave while queued, just after their stream began, and midway; whatever
    the moment, the gate ends with its permit free and nobody waiting."""
    holder = Holder(gated)
    leavers = []
    for wait in (0.0, 0.05, 0.2):
        connection = http.client.HTTPConnection("127.0.0.1", gated.port, timeout=0.1)
        connection.request("POST", "/v1/chat/completions", json.dumps({
            "model": MODELS["xai"], "stream": True,
            "messages": [{"role": "user", "content": SLOW}]}),
            {"content-type": "application/json", "authorization": "Bearer leaver"})
        time.sleep(wait)
        leavers.append(connection)
    assert gates(gated)["xai"]["waiting"] >= 1
    for connection in leavers:
        connection.close()  # queued: they leave the queue
    holder.release()
    for cut in (1, 300, 3000):  # streaming: leave after `cut` bytes
        streaming = Holder(gated, key=f"cut{cut}")
        streaming.reply.read1(cut)
        streaming.release()
    gate = settled(gated)
    assert (gate["in_use"], gate["waiting"], gate["permits"]) == (0, 0, 1)
    assert chat(gated, "hi")[0] == 200


def test_a_person_is_served_between_a_swarms_requests(tmp_path: Path,
                                                      fakes: dict[str, Process]) -> None:
    patient = start_with_providers(tmp_path, fakes, "--max-concurrency", "1",
                                   "--queue-timeout", "30")
    try:
        order = serve_swarm_and_person(patient)
    finally:
        patient.stop()
    assert sorted(order) == ["person"] + ["swarm"] * 8, order
    assert order.index("person") <= 2, order  # a FIFO would serve it last


def serve_swarm_and_person(gated: Process) -> list[str]:
    finished: list[str] = []
    lock = threading.Lock()
    slow = "fake:deltas=4 fake:delay_ms=60"

    def one(key: str) -> None:
        status, _, _ = chat(gated, slow, key=key)
        with lock:
            finished.append(key if status == 200 else f"{key}:{status}")

    swarm = [threading.Thread(target=one, args=("swarm",)) for _ in range(8)]
    for thread in swarm:
        thread.start()
        time.sleep(0.01)
    time.sleep(0.3)
    person = threading.Thread(target=one, args=("person",))
    person.start()
    for thread in [*swarm, person]:
        thread.join(30)
    return finished


def test_retries_before_the_first_byte_and_passes_on_what_waiting_cannot_cure(
        gated: Process, fakes: dict[str, Process]) -> None:
    def sent(provider: str, marker: str) -> int:
        return sum(marker in json.dumps(r["body"]) for r in recorded_requests(fakes[provider]))

    status, _, body = chat(gated, "retry503 fake:error=503 fake:retry_after=0")
    assert status == 502 and "503" in json.loads(body)["error"]["message"]
    assert sent("xai", "retry503") == 4  # RetryPolicy.attempts
    status, _, body = chat(gated, "credits402 fake:error=402", model=MODELS["openrouter"])
    assert status == 402 and sent("openrouter", "credits402") == 1
    status, _, _ = chat(gated, "bad400 fake:error=400")
    assert status == 400 and sent("xai", "bad400") == 1
    assert settled(gated)["in_use"] == 0


def test_a_websocket_request_takes_the_same_gate_and_retries(
        gated: Process, fakes: dict[str, Process]) -> None:
    """`/v1/responses` over a WebSocket opens its upstream through the door every HTTP
    route uses: a full gate is a 429 error frame with the retry-after, a refusal worth
    retrying is retried, and the socket serves on after either."""
    holder = Holder(gated)
    with WSClient(gated.port, token="ws-gated") as socket:
        try:
            busy = socket.create(model=MODELS["xai"], input="hi")
            assert len(busy) == 1 and busy[0]["type"] == "error"
            assert busy[0]["status_code"] == 429
            assert int(busy[0]["headers"]["retry-after"]) >= 1
        finally:
            holder.release()
        assert settled(gated)["in_use"] == 0
        retried = socket.create(model=MODELS["xai"],
                                input="wsretry503 fake:error=503 fake:retry_after=0")
        assert [event["status_code"] for event in retried] == [502]
        assert sum("wsretry503" in json.dumps(r["body"])
                   for r in recorded_requests(fakes["xai"])) == 4  # RetryPolicy.attempts
        assert output_text(socket.create(model=MODELS["xai"], input="hi")) == \
            "Hello! You said: hi"
    assert settled(gated)["in_use"] == 0
