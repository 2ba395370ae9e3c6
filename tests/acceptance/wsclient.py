"""A blocking WebSocket client for acceptance tests: wsproto over a plain socket.

It speaks the Responses WebSocket protocol the way the real clients do
(clients.md): `response.create` frames out, one event per frame back.
`CodexDeflate` offers permessage-deflate with exactly the Codex CLI's header.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    RejectData,
    TextMessage,
)
from wsproto.events import Request as Handshake
from wsproto.extensions import Extension, PerMessageDeflate

TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed", "error"})
CODEX_HEADERS = [(b"openai-beta", b"responses_websockets=2026-02-06"),
                 (b"originator", b"codex_exec"), (b"session_id", b"ws-accept-session")]


class CodexDeflate(PerMessageDeflate):
    """Offers `permessage-deflate; client_max_window_bits`, as the Codex CLI does."""

    def offer(self) -> str:
        return "client_max_window_bits"


class Refused(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(status, body)
        self.status = status
        self.body = body


class WSClient:
    def __init__(self, port: int, *, path: str = "/v1/responses",
                 headers: list[tuple[bytes, bytes]] | None = None,
                 extensions: list[Extension] | None = None, token: str = "x",
                 timeout: float = 20.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.sock.sendall(self.ws.send(Handshake(
            host=f"127.0.0.1:{port}", target=path, extensions=extensions or [],
            extra_headers=[(b"authorization", b"Bearer " + token.encode()), *(headers or [])])))
        event = self._next()
        if isinstance(event, RejectConnection):
            raise Refused(event.status_code, self._reject_body(event))
        assert isinstance(event, AcceptConnection), event
        self.accepted = event

    def __enter__(self) -> WSClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send_text(self, text: str) -> None:
        self.sock.sendall(self.ws.send(TextMessage(data=text)))

    def send_json(self, value: Any) -> None:
        self.send_text(json.dumps(value))

    def receive_json(self) -> dict[str, Any]:
        parts: list[str] = []
        while True:
            event = self._next()
            if isinstance(event, Ping):
                self.sock.sendall(self.ws.send(event.response()))
                continue
            assert isinstance(event, TextMessage), event
            parts.append(event.data)
            if event.message_finished:
                value: dict[str, Any] = json.loads("".join(parts))
                return value

    def create(self, **fields: Any) -> list[dict[str, Any]]:
        """Send one `response.create`; the events up to the terminal one."""
        self.send_json({"type": "response.create", **fields})
        events = [self.receive_json()]
        while events[-1]["type"] not in TERMINAL:
            events.append(self.receive_json())
        return events

    def close(self) -> int | None:
        """Closing handshake; the server's close code (None if the socket was gone)."""
        try:
            self.sock.sendall(self.ws.send(CloseConnection(code=1000)))
            while True:
                event = self._next()
                if isinstance(event, CloseConnection):
                    return event.code
        except (OSError, AssertionError):
            return None
        finally:
            self.sock.close()

    def _next(self) -> Event:
        while True:
            for event in self.ws.events():
                return event
            data = self.sock.recv(65536)
            self.ws.receive_data(data or None)

    def _reject_body(self, event: RejectConnection) -> bytes:
        body = b""
        while event.has_body:
            data = self._next()
            assert isinstance(data, RejectData)
            body += data.data
            if data.body_finished:
                break
        self.sock.close()
        return body


def output_text(events: list[dict[str, Any]]) -> str:
    return "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")


def done_items(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e["item"] for e in events if e["type"] == "response.output_item.done"]
