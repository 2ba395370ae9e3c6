"""Real HTTP/2 clients against `chatmock serve`: curl and httpx with prior knowledge on the
plain port, the openai, anthropic and ollama packages on an HTTP/2 httpx client, httpx by
ALPN behind `--tls-cert`, and the Responses WebSocket over an extended CONNECT (RFC 8441,
h2 and wsproto)."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

import anthropic
import h2.config
import h2.connection
import h2.events
import httpx
import ollama
import openai
import pytest
import trustme
from wsproto import ConnectionType
from wsproto.connection import Connection
from wsproto.events import CloseConnection, TextMessage

from .conftest import Process, start_chatmock

MODEL = "gpt-5.4"
CHAT = {"model": MODEL, "stream": True,
        "messages": [{"role": "user", "content": "over h2 fake:deltas=40"}]}


def h2c_client(**options: Any) -> httpx.Client:
    """httpx speaking HTTP/2 with prior knowledge to a plain-http URL."""
    return httpx.Client(http1=False, http2=True, timeout=20, **options)


def test_curl_with_prior_knowledge_streams_a_chat_completion(chatmock_server: Process) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    done = subprocess.run(
        [curl, "-sS", "-N", "--http2-prior-knowledge", "-w", "\\n%{http_version}",
         "-H", "content-type: application/json", "-d", json.dumps(CHAT),
         f"{chatmock_server.url}/v1/chat/completions"],
        capture_output=True, timeout=30, check=True)
    body, _, version = done.stdout.rpartition(b"\n")
    assert version == b"2"
    chunks = [json.loads(line[6:]) for line in body.splitlines()
              if line.startswith(b"data: {")]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text.count("tok") == 40
    assert body.rstrip().endswith(b"data: [DONE]")


def test_httpx_http2_streams_and_answers_whole(chatmock_server: Process) -> None:
    with h2c_client() as client:
        models = client.get(f"{chatmock_server.url}/v1/models")
        assert models.http_version == "HTTP/2" and models.json()["data"]
        with client.stream("POST", f"{chatmock_server.url}/v1/chat/completions",
                           json=CHAT) as response:
            assert response.http_version == "HTTP/2"
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = list(response.iter_lines())
        assert lines[-1] == "data: [DONE]" or lines[-2] == "data: [DONE]"


def test_openai_sdk_on_an_http2_client_streams_concurrently(chatmock_server: Process) -> None:
    """Eight streams at once on one HTTP/2 connection, each whole and in order."""
    with h2c_client() as http, openai.OpenAI(base_url=f"{chatmock_server.url}/v1",
                                              api_key="x", max_retries=0,
                                              http_client=cast(Any, http)) as client:
        def one(number: int) -> str:
            stream = client.chat.completions.create(
                model=MODEL, stream=True,
                messages=[{"role": "user", "content": f"n{number} fake:deltas=30"}])
            return "".join(chunk.choices[0].delta.content or "" for chunk in stream
                           if chunk.choices)

        with ThreadPoolExecutor(8) as pool:
            texts = list(pool.map(one, range(8)))
        assert all(text.count("tok") == 30 for text in texts)
        events = list(client.responses.create(model=MODEL, input="responses over h2",
                                              stream=True))
        assert events[-1].type == "response.completed"


def test_anthropic_and_ollama_packages_over_http2(chatmock_server: Process) -> None:
    import httpx2  # the anthropic package's own fork of httpx

    with httpx2.Client(http1=False, http2=True, timeout=20) as http:
        claude = anthropic.Anthropic(base_url=chatmock_server.url, api_key="x",
                                     max_retries=0, http_client=cast(Any, http))
        message = claude.messages.create(model="claude-sonnet-5", max_tokens=100,
                                         messages=[{"role": "user", "content": "hi h2"}])
        assert message.content[0].type == "text" and "hi h2" in message.content[0].text
    with ollama.Client(host=chatmock_server.url, http1=False, http2=True) as local:
        parts = [part["message"]["content"] for part in local.chat(
            model=MODEL, messages=[{"role": "user", "content": "ollama h2"}], stream=True)]
    assert "ollama h2" in "".join(parts)


def test_sigterm_lets_an_open_http2_stream_finish(tmp_path: Path,
                                                  fake_upstream: Process) -> None:
    """The drain's GOAWAY refuses new streams but lets the open one run to its end."""
    server = start_chatmock(tmp_path, fake_upstream, "--shutdown-timeout", "20")
    with h2c_client() as http, openai.OpenAI(base_url=f"{server.url}/v1", api_key="x",
                                              max_retries=0, http_client=cast(Any, http)) as client:
        chunks = iter(client.chat.completions.create(
            model=MODEL, stream=True,
            messages=[{"role": "user", "content": "x fake:deltas=12 fake:delay_ms=100"}]))
        assert next(chunks).choices[0].delta.role == "assistant"
        server.popen.send_signal(signal.SIGTERM)
        rest = list(chunks)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in rest if chunk.choices)
    assert text.count("tok") == 12 and rest[-1].choices[0].finish_reason == "stop"
    assert server.popen.wait(10) == 0


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory,
               fake_upstream: Process) -> Iterator[tuple[Process, trustme.CA]]:
    tmp = tmp_path_factory.mktemp("tls-serve")
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    leaf.cert_chain_pems[0].write_to_path(str(tmp / "cert.pem"))
    leaf.private_key_pem.write_to_path(str(tmp / "key.pem"))
    process = start_chatmock(tmp, fake_upstream, "--tls-cert", str(tmp / "cert.pem"),
                             "--tls-key", str(tmp / "key.pem"))
    yield process, ca
    process.stop()


def test_tls_serves_http2_by_alpn_and_http11_beside_it(
        tls_server: tuple[Process, trustme.CA]) -> None:
    server, ca = tls_server
    assert server.url.startswith("https://")
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with httpx.Client(http2=True, verify=context, timeout=20) as client:
        reply = client.post(f"{server.url}/v1/chat/completions", json=CHAT)
        assert reply.http_version == "HTTP/2" and "data: [DONE]" in reply.text
    with httpx.Client(verify=context, timeout=20) as client:
        reply = client.get(f"{server.url}/health")
        assert reply.http_version == "HTTP/1.1" and reply.json()["status"] == "ok"


def test_a_bad_tls_key_is_a_clear_start_up_error(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text("not a certificate")
    done = subprocess.run(
        [sys.executable, "-m", "chatmock", "serve", "--tls-cert", str(tmp_path / "cert.pem"),
         "--tls-key", str(tmp_path / "cert.pem")], capture_output=True, timeout=30)
    assert done.returncode == 2 and b"cannot load --tls-cert/--tls-key" in done.stderr


class H2WebSocket:
    """The Responses WebSocket over an extended CONNECT on a blocking socket."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        self.conn: Any = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None))
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())
        self.framing = Connection(ConnectionType.CLIENT)
        self.stream_id = 1
        self.status = b""
        self.ended = False

    def _pump(self) -> list[Any]:
        events = self.conn.receive_data(self.sock.recv(65536))
        self.sock.sendall(self.conn.data_to_send())
        return list(events)

    def open(self, path: str) -> None:
        while self.conn.remote_settings.enable_connect_protocol != 1:
            self._pump()
        self.conn.send_headers(self.stream_id, [
            (b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"http"),
            (b":path", path.encode()), (b":authority", b"127.0.0.1"),
            (b"sec-websocket-version", b"13")])
        self.sock.sendall(self.conn.data_to_send())
        while not self.status:
            for event in self._pump():
                if isinstance(event, h2.events.ResponseReceived):
                    self.status = dict(event.headers)[b":status"]

    def send(self, message: dict[str, Any]) -> None:
        self.conn.send_data(self.stream_id, self.framing.send(TextMessage(json.dumps(message))))
        self.sock.sendall(self.conn.data_to_send())

    def events(self) -> Iterator[dict[str, Any]]:
        """Event frames up to a terminal one."""
        while True:
            for event in self.framing.events():
                if isinstance(event, TextMessage):
                    data = json.loads(event.data)
                    yield data
                    if data["type"] in ("response.completed", "error", "response.failed"):
                        return
            for event in self._pump():
                if isinstance(event, h2.events.DataReceived):
                    self.framing.receive_data(event.data)
                    self.conn.acknowledge_received_data(event.flow_controlled_length,
                                                        event.stream_id)

    def close(self) -> None:
        self.conn.send_data(self.stream_id, self.framing.send(CloseConnection(code=1000)))
        self.sock.sendall(self.conn.data_to_send())
        while not self.ended:
            for event in self._pump():
                self.ended |= isinstance(event, h2.events.StreamEnded | h2.events.StreamReset)
        self.sock.close()


def test_responses_websocket_over_http2(chatmock_server: Process) -> None:
    socket_ = H2WebSocket(chatmock_server.port)
    socket_.open("/v1/responses")
    assert socket_.status == b"200"
    for turn in ("first", "second"):
        socket_.send({"type": "response.create", "model": MODEL,
                      "input": f"ws over h2 {turn}", "store": False})
        events = list(socket_.events())
        assert events[0]["type"] == "response.created"
        assert events[-1]["type"] == "response.completed"
        text = "".join(e.get("delta", "") for e in events
                       if e["type"] == "response.output_text.delta")
        assert text == f"Hello! You said: ws over h2 {turn}"
    socket_.close()
