"""A client that leaves stops its backend exchange: every generating route, streamed or not,
HTTP/1.1 and the WebSocket, against `chatmock serve` and the fake backend.

Each test sends a request whose answer the fake holds back for 10 s (`fake:` pacing
directives), waits until the fake has the stream open, leaves (a FIN, or a reset), and
then watches the fake's stream counters (`GET /__fake__/streams`): the stream must end
as abandoned, long before the silence would have (the fake sees it end only when
chatmock closes the backend connection: a pooled one would stay open), and chatmock's
access log must say `(client gone)`. A pair of processes of its own keeps the counters
and the log to this module.
"""

from __future__ import annotations

import json
import socket
import struct
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest

from .conftest import Process, start_chatmock, start_fake
from .wsclient import WSClient

SILENCE = 10.0  # seconds the fake stays silent; the stream must end far sooner
GONE_WITHIN = 1.0  # generous against CI noise: the server's own figure is milliseconds
MODEL = "gpt-5.4"


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Process]:
    process = start_fake(tmp_path_factory.mktemp("gone-fake"))
    yield process
    process.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, fake: Process) -> Iterator[Process]:
    process = start_chatmock(tmp_path_factory.mktemp("gone-chatmock"), fake)
    yield process
    process.stop()


def counters(fake: Process) -> dict[str, int]:
    with urllib.request.urlopen(f"{fake.url}/__fake__/streams") as reply:
        found: dict[str, int] = json.load(reply)
    return found


def wait_for(fake: Process, key: str, value: int, within: float) -> float:
    """Poll the fake's counters until `key` reaches `value`; the seconds it took."""
    started = time.monotonic()
    while counters(fake)[key] < value:
        elapsed = time.monotonic() - started
        assert elapsed < within, f"{key} stayed below {value}: {counters(fake)}"
        time.sleep(0.01)
    return time.monotonic() - started


def leave(sock: socket.socket, *, reset: bool) -> None:
    if reset:  # SO_LINGER 0: close() sends a RST instead of a FIN
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def access_lines(server: Process, request_line: str) -> list[str]:
    return [line for line in server.log.read_text().splitlines() if f'"{request_line}"' in line]


def request_bytes(path: str, body: dict[str, Any], headers: dict[str, str]) -> bytes:
    data = json.dumps(body).encode()
    head = [f"POST {path} HTTP/1.1", "host: 127.0.0.1", "content-type: application/json",
            f"content-length: {len(data)}", "authorization: Bearer x",
            *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + data


def user_text(stream: bool) -> str:
    # Streamed: the first events come at once, then 10 s of silence between events.
    # Not streamed: silence from the start.
    pacing = f"fake:delay_ms={SILENCE * 1000:g}" if stream else \
        f"fake:first_delay_ms={SILENCE * 1000:g}"
    return f"please wait {pacing}"


def chat(stream: bool) -> dict[str, Any]:
    return {"model": MODEL, "stream": stream,
            "messages": [{"role": "user", "content": user_text(stream)}]}


ROUTES: dict[str, tuple[str, Any, dict[str, str]]] = {
    "chat": ("/v1/chat/completions", chat, {}),
    "completions": ("/v1/completions", lambda stream: {
        "model": MODEL, "stream": stream, "prompt": user_text(stream)}, {}),
    "responses": ("/v1/responses", lambda stream: {
        "model": MODEL, "stream": stream, "input": user_text(stream)}, {}),
    "messages": ("/v1/messages", lambda stream: {
        "model": "claude-sonnet-5", "max_tokens": 1000, "stream": stream,
        "messages": [{"role": "user", "content": user_text(stream)}]},
        {"anthropic-version": "2023-06-01"}),
    "ollama-chat": ("/api/chat", chat, {}),
    "ollama-generate": ("/api/generate", lambda stream: {
        "model": MODEL, "stream": stream, "prompt": user_text(stream)}, {}),
}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("route", list(ROUTES))
def test_leaving_during_a_silence_ends_the_backend_stream(
        server: Process, fake: Process, route: str, stream: bool) -> None:
    path, build, headers = ROUTES[route]
    before = counters(fake)
    logged = len(access_lines(server, f"POST {path}"))
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(request_bytes(path, build(stream), headers))
    wait_for(fake, "open", before["open"] + 1, within=10)
    leave(sock, reset=False)
    assert wait_for(fake, "abandoned", before["abandoned"] + 1, within=SILENCE) < GONE_WITHIN
    assert counters(fake)["open"] == before["open"]
    assert counters(fake)["completed"] == before["completed"]
    time.sleep(0.05)  # the access line is written as the route unwinds
    lines = access_lines(server, f"POST {path}")[logged:]
    assert len(lines) == 1 and lines[0].endswith("(client gone)"), lines


@pytest.mark.parametrize("route", ["chat", "responses"])
def test_a_reset_connection_ends_the_backend_stream(server: Process, fake: Process,
                                                    route: str) -> None:
    path, build, headers = ROUTES[route]
    before = counters(fake)
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(request_bytes(path, build(False), headers))
    wait_for(fake, "open", before["open"] + 1, within=10)
    leave(sock, reset=True)
    assert wait_for(fake, "abandoned", before["abandoned"] + 1, within=SILENCE) < GONE_WITHIN


def test_an_sdk_that_times_out_stops_the_backend(server: Process, fake: Process) -> None:
    before = counters(fake)
    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="x", max_retries=0,
                       timeout=0.5) as client, pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model=MODEL, messages=[
            {"role": "user", "content": user_text(False)}])
    assert wait_for(fake, "abandoned", before["abandoned"] + 1, within=SILENCE) < GONE_WITHIN


def test_an_anthropic_stream_abandoned_mid_silence(server: Process, fake: Process) -> None:
    before = counters(fake)
    client = anthropic.Anthropic(base_url=server.url, api_key="x", max_retries=0)
    with client.messages.stream(model="claude-sonnet-5", max_tokens=100, messages=[
            {"role": "user", "content": user_text(True)}]) as stream:
        next(iter(stream))  # message_start arrived; the fake now stays silent
    # leaving the `with` closes the response mid-stream
    assert wait_for(fake, "abandoned", before["abandoned"] + 1, within=SILENCE) < GONE_WITHIN


@pytest.mark.parametrize("how", ["eof", "reset", "close-frame"])
def test_a_websocket_peer_that_leaves_mid_response_stops_the_backend(
        server: Process, fake: Process, how: str) -> None:
    before = counters(fake)
    logged = len(access_lines(server, "GET /v1/responses"))
    client = WSClient(server.port)
    client.send_json({"type": "response.create", "model": MODEL, "input": user_text(True)})
    assert client.receive_json()["type"] == "response.created"
    wait_for(fake, "open", before["open"] + 1, within=10)
    if how == "close-frame":
        client.close()
    else:
        leave(client.sock, reset=how == "reset")
    assert wait_for(fake, "abandoned", before["abandoned"] + 1, within=SILENCE) < GONE_WITHIN
    time.sleep(0.05)
    lines = access_lines(server, "GET /v1/responses")[logged:]
    assert len(lines) == 1 and lines[0].endswith("(client gone)"), lines
